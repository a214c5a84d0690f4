import { appendManyContract } from "../contract/AppendManyContract.js"
import { fileStoreLayer } from "../support/filesystem.js"

appendManyContract("filesystem", fileStoreLayer("appendmany"))
