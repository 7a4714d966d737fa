#!/usr/bin/env bash
# Runs the default comparison (all four transports) in release mode and writes
# results/<scenario name>/ (run.json, report.md, latency.svg).
# Extra arguments go to `pushbench run`, e.g. scripts/bench.sh --clients 500.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p servers -p harness
exec target/release/pushbench run "$@"
