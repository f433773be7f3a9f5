#!/usr/bin/env bash
# The consumer check: packs both packages, installs the tarballs and the effect peers into a fresh
# project outside the workspace (no tsx, no TypeScript sources), and uses them as a user would.
# Every step must pass. Run after `npm run build`, from anywhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/effect-koyeb-consumer-XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
version() { node -p "require('$root/node_modules/$1/package.json').version"; }

step "pack"
(cd "$root" && npm pack --silent --pack-destination "$work" --workspace=packages/core --workspace=packages/platform-node >/dev/null)
ls "$work"

step "install into $work/app"
mkdir "$work/app"
cp "$here"/app.mjs "$here"/app.cjs "$here"/effect-app.mjs "$here"/check.ts "$here"/check-cjs.cts \
  "$here"/tsconfig.nodenext.json "$here"/tsconfig.bundler.json "$work/app/"
cd "$work/app"
echo '{ "name": "consumer", "private": true, "type": "module" }' > package.json
npm install --no-audit --no-fund --prefer-offline --loglevel=error \
  "$work"/effect-koyeb-core-*.tgz "$work"/effect-koyeb-platform-node-*.tgz \
  "effect@$(version effect)" "@effect/platform@$(version @effect/platform)" \
  "@effect/platform-node@$(version @effect/platform-node)" \
  "typescript@$(version typescript)" "@types/node@$(version @types/node)"
test ! -e node_modules/tsx && test ! -e node_modules/esbuild
# node_modules may be read-only: nothing may be written there (checked at the end).
sleep 1 && touch installed.marker

export KOYEB_API_TOKEN= KOYEB_API_HOST=
step "node app.mjs (Promise facade, ESM)"
node app.mjs
step "node app.cjs (Promise facade, require)"
node app.cjs
step "node effect-app.mjs (NodeSandbox.layerLocal + Sandbox.layer)"
node effect-app.mjs

step "tsc --noEmit (nodenext, ESM and CJS views)"
npx tsc -p tsconfig.nodenext.json
step "tsc --noEmit (moduleResolution bundler)"
npx tsc -p tsconfig.bundler.json

step "npx effect-koyeb --help / --version"
npx effect-koyeb --help | head -5
test "$(npx effect-koyeb --version | head -1)" = "$(node -p 'require("@effect-koyeb/platform-node/package.json").version')"

step "effect-koyeb create / exec / delete against effect-koyeb emulator"
bin="$work/app/node_modules/.bin/effect-koyeb"
"$bin" emulator --port 0 --isolation none > emulator.out 2> emulator.err &
emulator=$!
pids+=("$emulator")
for _ in $(seq 100); do [ -s emulator.out ] && break; sleep 0.1; done
url="$(node -p 'JSON.parse(require("fs").readFileSync("emulator.out","utf8").split("\n")[0]).url')"
token="$(node -p 'JSON.parse(require("fs").readFileSync("emulator.out","utf8").split("\n")[0]).token')"
export KOYEB_API_HOST="$url" KOYEB_API_TOKEN="$token"
id="$("$bin" create --name consumer-cli)"
out="$("$bin" exec "$id" -- 'echo "exec works: $((6 * 7))"')"
test "$out" = "exec works: 42"
echo "$out"
"$bin" delete "$id"
"$bin" list --json | node -e 'const l = JSON.parse(require("fs").readFileSync(0, "utf8")); if (l.length) throw new Error("left: " + JSON.stringify(l))'
echo "created, ran and deleted $id"

step "SIGTERM to the bin stops the emulator and frees its port"
port="${url##*:}"
kill -TERM "$emulator"
for _ in $(seq 20); do kill -0 "$emulator" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$emulator" 2>/dev/null; then echo "emulator still running 2 s after SIGTERM"; exit 1; fi
if node -e 'require("net").connect(+process.argv[1], "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))' "$port"; then
  echo "port $port still open after SIGTERM"; exit 1
fi
echo "stopped; port $port closed"

step "nothing was written into node_modules"
written="$(find node_modules -newer installed.marker | head -5)"
if [ -n "$written" ]; then echo "written after install: $written"; exit 1; fi

step "consumer check passed"
