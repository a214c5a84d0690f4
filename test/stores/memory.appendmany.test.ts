import { MemoryEventStore } from "chronicle"
import { appendManyContract } from "../contract/AppendManyContract.js"

appendManyContract("memory", MemoryEventStore.layer())
