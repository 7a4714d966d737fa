#!/usr/bin/env bash
# A short smoke comparison for CI: every transport, a small fleet, a few seconds.
# Fails (non-zero) unless every transport delivered every expected event.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results/ci-smoke}"
cargo build --release --locked -p servers -p harness
target/release/pushbench run \
  --scenario scenarios/ci.toml \
  --out "$out"
echo "ci smoke: report at $out/report.md"
