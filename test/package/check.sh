#!/usr/bin/env bash
# The package as a user gets it (CI runs this after the build):
#   1. npm pack; a fresh project; the README's core install line (the tarball for `chronicle`), and
#      nothing else but the user's own TypeScript;
#   2. one copy of effect; none of pg, NATS, TOON or the CLI's packages; the README's first program
#      type-checked (strict, NodeNext) and run, in memory and on disk; the optional entries fail
#      naming the packages to install; `chronicle` says which packages it needs;
#   3. the README's CLI, PostgreSQL and NATS lines; node_modules made read-only; the installed
#      `chronicle --help` (plain text when piped), `streams` and `export` on the store the program
#      wrote; chronicle/postgres and chronicle/nats load.
# Usage: bash test/package/check.sh [--no-build]   (--no-build: pack the dist/ there is)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
started=$(date +%s)
say() { printf '  %s\n' "$*"; }
fail() { printf 'package check FAILED: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/chronicle-package.XXXXXX")"
cleanup() { chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ "${1:-}" != "--no-build" ]; then npm run build >/dev/null; fi
[ -f dist/index.js ] && [ -f dist/cli/main.js ] || fail "dist/ is missing: npm run build"
tarball="$work/$(npm pack --ignore-scripts --silent --pack-destination "$work" | tail -n 1)"
[ -f "$tarball" ] || fail "npm pack wrote no tarball"
if tar -tzf "$tarball" | grep -q '^package/src/'; then fail "the tarball ships src/"; fi
say "packed $(basename "$tarball"): $(tar -tzf "$tarball" | wc -l) files, $(du -h "$tarball" | cut -f1)"

# a README block marked <!-- tested: NAME -->: the fenced block right after the marker
block() {
  awk -v marker="<!-- tested: $1 -->" '
    $0 == marker { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 2 && /^```/ { exit }
    found == 2 { print }
  ' "$root/README.md"
}
install_line() {
  local line
  line="$(block "$1" | grep '^npm i ')" || fail "README has no install line marked $1"
  # the tarball stands for the registry's `chronicle`
  line="$(printf '%s' "$line" | sed "s#^npm i chronicle #npm i $tarball #")"
  say "$line"
  (cd "$work/app" && eval "$line --no-audit --no-fund --loglevel=error") >/dev/null
}

mkdir -p "$work/app"
block tour.ts > "$work/app/tour.ts"
[ -s "$work/app/tour.ts" ] || fail "README has no block marked tour.ts"
cd "$work/app"
cat > package.json <<'JSON'
{ "name": "app", "version": "1.0.0", "private": true, "type": "module" }
JSON
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2022"], "types": ["node"],
    "module": "NodeNext", "moduleResolution": "NodeNext",
    "strict": true, "exactOptionalPropertyTypes": true, "noUncheckedIndexedAccess": true,
    "verbatimModuleSyntax": true, "skipLibCheck": true, "outDir": "out"
  },
  "include": ["*.ts"]
}
JSON
# the user's own tooling, before chronicle
npm i -D typescript@~5.9.3 @types/node@^20 --no-audit --no-fund --loglevel=error >/dev/null

# --- 1 and 2: the core alone -------------------------------------------------------------------
install_line install
copies="$(npm ls effect --all --parseable 2>/dev/null | sort -u)"
[ "$(printf '%s\n' "$copies" | grep -c .)" = "1" ] || fail "more than one effect installed: $copies"
say "one effect: $(node -p 'require("effect/package.json").version')"
for absent in pg @effect/sql-pg @nats-io/transport-node @toon-format/toon @effect/cli @effect/printer; do
  [ ! -e "node_modules/$absent" ] || fail "the core install brought $absent"
done
say "core install (with typescript and @types/node): $(du -sh node_modules | cut -f1), $(npm ls --all --parseable 2>/dev/null | tail -n +2 | sort -u | wc -l) packages"

npx tsc -p tsconfig.json || fail "the README's first program does not type-check"
node out/tour.js > tour.log 2>&1 || { cat tour.log; fail "the README's first program failed"; }
[ "$(grep -c 'balance 100' tour.log)" = "2" ] || { cat tour.log; fail "the first program did not run in memory and on disk"; }
[ -f .chronicle/events.jsonl ] || fail "the first program wrote no filesystem store"
say "first program: type-checked and ran (memory, filesystem)"

cat > entries.mjs <<'JS'
// The main entry loads without pg, NATS, TOON or the CLI; the optional entries say what to install.
import assert from "node:assert/strict"
import { existsSync } from "node:fs"
const core = await import("chronicle")
for (const name of ["CommandHandler", "Decider", "EventStore", "FileEventStore", "MemoryEventStore", "Projection"]) assert.ok(name in core, name)
for (const name of ["PostgresEventStore", "Toon", "DeciderSpec"]) assert.ok(!(name in core), `${name} is in the main entry`)
const testing = await import("chronicle/testing")
assert.deepEqual(Object.keys(testing).sort(), ["DeciderSpec", "DecisionSpec", "ProjectionSpec"])
const expected = {
  "chronicle/postgres": ["@effect/sql", "@effect/sql-pg", "pg"],
  "chronicle/nats": ["@nats-io/jetstream", "@nats-io/transport-node"],
  "chronicle/toon": ["@toon-format/toon"]
}
for (const [entry, peers] of Object.entries(expected)) {
  // the message names the packages of the entry that are missing (@effect/sql may be there already)
  const absent = peers.filter((peer) => !existsSync(`node_modules/${peer}`))
  assert.ok(absent.length > 0, `${entry}: all of ${peers} are installed`)
  await assert.rejects(import(entry), (error) => {
    assert.match(error.message, new RegExp(`^${entry} needs `))
    assert.ok(error.message.endsWith(`npm i ${absent.join(" ")}`), error.message)
    return true
  })
}
JS
node entries.mjs || fail "the entries do not behave as documented without their optional packages"
say "main entry without pg/NATS/TOON/CLI; optional entries name their packages"
if out="$(npx --no-install chronicle --help 2>&1)"; then fail "chronicle ran without its packages"; fi
printf '%s' "$out" | grep -q "npm i @effect/cli @effect/printer @effect/printer-ansi @toon-format/toon" ||
  fail "chronicle without its packages did not name them: $out"
say "chronicle without its packages: names them"

# --- 3: the optional parts, then a read-only node_modules --------------------------------------
install_line install-cli
install_line install-postgres
nats="$(cd "$root" && grep -o 'npm i @nats-io/jetstream@[^ `]* @nats-io/transport-node@[^ `]*' README.md | head -n 1)"
[ -n "$nats" ] || fail "README has no NATS install line"
say "$nats"
eval "$nats --no-audit --no-fund --loglevel=error" >/dev/null
copies="$(npm ls effect --all --parseable 2>/dev/null | sort -u)"
[ "$(printf '%s\n' "$copies" | grep -c .)" = "1" ] || fail "more than one effect installed after the optional parts: $copies"

# read-only for a user; root ignores the mode bits, so compare against a marker too
chmod -R a-w node_modules
touch "$work/marker"
node --input-type=module -e '
  const pg = await import("chronicle/postgres")
  const nats = await import("chronicle/nats")
  const toon = await import("chronicle/toon")
  const http = await import("chronicle/http")
  if (typeof pg.PostgresEventStore.layer !== "function" || typeof nats.NatsForwarder.start !== "function" || typeof toon.Toon.toToon !== "function" || typeof http.CommandHttp.handle !== "function") process.exit(1)
' || fail "chronicle/postgres, chronicle/nats, chronicle/toon or chronicle/http did not load with their packages"
say "chronicle/postgres, chronicle/nats, chronicle/toon, chronicle/http load"
help="$(npx --no-install chronicle --help)" || fail "chronicle --help failed"
printf '%s' "$help" | grep -qE '^\s+- streams ' || fail "chronicle --help lists no commands"
if printf '%s' "$help" | grep -q $'\033\['; then fail "chronicle --help, piped, prints ANSI escapes"; fi
streams="$(npx --no-install chronicle streams --store file:./.chronicle)" || fail "chronicle streams failed"
[ "$(printf '%s\n' "$streams" | grep -c '^account-')" = "1" ] || fail "chronicle streams: $streams"
exported="$(npx --no-install chronicle export --store file:./.chronicle --format toon)" || fail "chronicle export failed"
printf '%s' "$exported" | grep -q 'type: MoneyDeposited' || fail "chronicle export: $exported"
written="$(find node_modules -newer "$work/marker")"
[ -z "$written" ] || fail "written into node_modules: $written"
say "installed chronicle (dist/, read-only node_modules): --help plain, streams, export --format toon"

starts=()
for _ in 1 2 3 4 5 6 7 8 9 10; do
  t0=$(date +%s%N); node node_modules/chronicle/bin/chronicle.js --help >/dev/null; t1=$(date +%s%N)
  starts+=($(( (t1 - t0) / 1000000 )))
done
median="$(printf '%s\n' "${starts[@]}" | sort -n | sed -n 5,6p | awk '{ s += $1 } END { printf "%d", s / NR }')"
say "chronicle --help cold start: median ${median} ms of 10 (${starts[*]})"
printf 'package check passed in %ss\n' "$(( $(date +%s) - started ))"
