#!/usr/bin/env bash
# A long property-based fuzzing pass (stable Rust, proptest): the SSE parser,
# every route's query and header parsing, WebSocket message handling and
# scenario parsing, with many more cases than `cargo test` runs (CI runs the
# short pass: 256, 128 and 32 cases). A failure prints the minimal input
# proptest shrank it to; proptest also saves it under the test's
# proptest-regressions/ file so the next run tries it first (commit it).
#
# scripts/fuzz.sh [CASES]    # default 20000
#
# cargo fuzz (libFuzzer) needs a nightly toolchain, which this project does
# not rely on; where one exists, these same properties are the ones to port.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-20000}"
echo "fuzz: $cases cases per property (PROPTEST_CASES)"
PROPTEST_CASES="$cases" cargo test --release --locked -p protocol --test fuzz_sse
PROPTEST_CASES="$cases" cargo test --release --locked -p harness --test it fuzz_scenario
# Each route case is a real request: a tenth as many; each WebSocket case
# waits for 30 events (0.3 s): a hundredth.
PROPTEST_CASES="$((cases / 10))" cargo test --release --locked -p servers --test fuzz_routes -- \
  any_query the_seed
PROPTEST_CASES="$((cases / 100 + 1))" cargo test --release --locked -p servers --test fuzz_routes -- \
  any_websocket
echo "fuzz: done"
