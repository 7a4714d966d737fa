#!/usr/bin/env bash
# A short smoke comparison for CI: every transport and the raw-TCP floor, a
# small fleet, a few seconds each. Fails (non-zero) unless every transport
# delivered every expected event, and then unless no transport regressed
# against the committed reference run of the same profile
# (results/reference/ci-smoke), judged on ratios to the floor measured in the
# same run, so a slower or busier machine does not fail it while a real
# regression of one transport relative to the others does.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results/ci-smoke}"
reference="results/reference/ci-smoke"
cargo build --release --locked -p servers -p harness
target/release/pushbench run --scenario scenarios/ci.toml --out "$out"
echo "ci smoke: report at $out/report.md"

if [ -f "$reference/run.json" ]; then
  # Bytes and requests per event hardly vary between runs: a tight bound.
  target/release/pushbench compare --relative-to tcp --tolerance 0.25 \
    --metrics bytes_down_per_event,bytes_up_per_event,requests_per_event \
    --out "$out/compare-bytes.md" "$reference" "$out"
  # Median latency as a multiple of the floor's: loose, because a 3-second run
  # on a shared 2-core machine is noisy; it catches a transport getting 2× worse.
  target/release/pushbench compare --relative-to tcp --tolerance 1.0 \
    --metrics latency_p50 \
    --out "$out/compare-latency.md" "$reference" "$out"
else
  echo "ci smoke: no $reference/run.json: comparison skipped"
fi
