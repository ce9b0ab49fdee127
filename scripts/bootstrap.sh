#!/usr/bin/env bash
# Installs everything argus-relay needs to build, test and run its demo, from the package
# registries only. Idempotent: each step checks first and skips what is already there at the
# right version. Called by `make demo`, `make worker`, `make bench`, `make fuzz`; `make test`
# calls it with `--browser`, which adds Chromium (apt) for the admin-page browser tests: nothing
# else needs a browser.
set -euo pipefail

browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;
    *) echo "usage: bootstrap.sh [--browser]" >&2; exit 2 ;;
  esac
done
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130
# The self-hosted relay's tunnel (docs/selfhost.md, tests/tests/selfhost.rs).
RATHOLE_VERSION=0.5.0

step() { printf '\033[1mbootstrap:\033[0m %s\n' "$*"; }

# 1. Rust target for the Worker and for checking shared/ builds as wasm.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 2. worker-build (its own lockfile works with the registry).
if ! worker-build --version 2>/dev/null | grep -qE "(^| )${WORKER_BUILD_VERSION}\$"; then
  step "installing worker-build ${WORKER_BUILD_VERSION} (~3.5 min, once per machine)"
  cargo install worker-build --version "=${WORKER_BUILD_VERSION}" --locked
fi

# 3. wasm-bindgen CLI, equal to the wasm-bindgen in Cargo.lock. Not --locked: its lockfile
#    wants a crate version the registry does not have.
if ! wasm-bindgen --version 2>/dev/null | grep -q " ${WASM_BINDGEN_VERSION}\$"; then
  step "installing wasm-bindgen-cli ${WASM_BINDGEN_VERSION} (~4.5 min, once per machine)"
  cargo install wasm-bindgen-cli --version "=${WASM_BINDGEN_VERSION}"
fi
lock_version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if [ "$lock_version" != "$WASM_BINDGEN_VERSION" ]; then
  echo "bootstrap: Cargo.lock has wasm-bindgen $lock_version, the CLI is $WASM_BINDGEN_VERSION" >&2
  exit 1
fi

# 3b. rathole, the self-hosted relay's tunnel. Not --locked: its lockfile pins a `time` crate
#     that no longer builds.
if ! rathole --version 2>/dev/null | grep -q "Build Version: *${RATHOLE_VERSION}\$"; then
  step "installing rathole ${RATHOLE_VERSION} (~4 min, once per machine)"
  cargo install rathole --version "=${RATHOLE_VERSION}"
fi

# 4. npm tools: wrangler (with workerd), binaryen (wasm-opt), Node 22 (wrangler 4 needs >= 22.12),
#    playwright-core (drives the system Chromium in the browser tests).
stamp="node_modules/.argus-bootstrap-stamp"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  step "installing npm packages (wrangler, binaryen, node 22)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# apt-get that waits for another apt or dpkg run to finish (up to 10 minutes) instead of failing
# (exit 100). `DPkg::Lock::Timeout` makes dpkg's frontend lock wait, but apt 2.6 (Debian 12) fails
# at once on the lists and archive locks, so those are retried here.
apt_get() {
  local sudo="" deadline out rc
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  deadline=$(( $(date +%s) + 600 ))
  while :; do
    rc=0
    out=$(DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 "$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
      return 0
    fi
    if grep -q "Could not get lock" <<<"$out" && [ "$(date +%s)" -lt "$deadline" ]; then
      step "apt is busy (another apt or dpkg run holds its lock); waiting"
      sleep 5
      continue
    fi
    printf '%s\n' "$out" >&2
    return "$rc"
  done
}

# 5a. Caddy (TLS in front of workerd) and curl for the self-hosted relay's tests
#     (tests/tests/selfhost.rs), from Debian's packages.
if ! command -v caddy >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  step "installing caddy and curl (apt) for the self-hosted relay tests"
  apt_get update -qq
  apt_get install -y -qq caddy curl
fi

# 5. Chromium for the browser tests (tests/tests/admin_page.rs), from Debian's packages, with
#    `--browser` only. playwright-core (npm, above) drives it through `executablePath`: no
#    browser download.
if [ "$browser" -eq 1 ] && [ -z "${CHROMIUM_BIN:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  step "installing chromium (apt) for the browser tests"
  apt_get update -qq
  apt_get install -y -qq chromium
fi

# 5b. libfaketime (Debian package `faketime`) for the clock steps of the chaos suite (`make chaos`,
#     tests/tests/chaos.rs): the agent runs under it and its clock is stepped at run time. Without
#     it those faults are reported as not injected.
if ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  step "installing faketime (apt) for the chaos suite's clock steps"
  if ! apt_get install -y -qq faketime; then
    apt_get update -qq
    apt_get install -y -qq faketime
  fi
fi

# 6. Check the result, so a broken install fails here and not in the middle of a test.
node_version=$(node --version)
case "$node_version" in
  v22.*) ;;
  *) echo "bootstrap: expected Node 22 first on PATH, got $node_version" >&2; exit 1 ;;
esac
for bin in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN" node_modules/.bin/workerd; do
  [ -x "$bin" ] || { echo "bootstrap: missing $bin" >&2; exit 1; }
done
"$WASM_OPT_BIN" --version | grep -q "version 132" || { echo "bootstrap: wasm-opt is not binaryen 132" >&2; exit 1; }
[ -f node_modules/playwright-core/package.json ] || { echo "bootstrap: missing node_modules/playwright-core" >&2; exit 1; }
browser_version="no browser (make test adds it)"
if [ "$browser" -eq 1 ]; then
  chromium_bin="${CHROMIUM_BIN:-$(command -v chromium || true)}"
  browser_version=$("$chromium_bin" --version 2>/dev/null | grep -o 'Chromium [0-9.]*' || true)
  [ -n "$browser_version" ] || { echo "bootstrap: chromium ($chromium_bin) does not run" >&2; exit 1; }
fi
step "ok (node $node_version, worker-build $(worker-build --version), $(wasm-bindgen --version), wasm-opt 132, rathole $RATHOLE_VERSION, caddy $(caddy version | cut -d' ' -f1), $browser_version)"
