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
#     test (harness/tests/workflow.rs);
#   - Python 3 with venv, for the django-eventstream target test.
# As root on Debian, missing system packages are installed with apt-get;
# otherwise this script names the command to run and stops. The npm packages
# (browser/, .github/linters/) and the django-eventstream environment
# (targets/django-eventstream/.venv) are installed here, pinned, once.
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1
if [ "${1:-}" = "--no-setup" ]; then setup=0; shift; fi

say() { printf 'test.sh: %s\n' "$*" >&2; }

need_apt=()
if [ "$setup" = 1 ]; then
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    need_apt+=(nodejs npm)
  fi
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
  node_major=$(node --version | sed 's/^v//; s/\..*//')
  if [ "$node_major" -lt 20 ]; then
    say "Node.js $(node --version) is too old: the browser test needs Node.js >= 20"
    exit 2
  fi
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
