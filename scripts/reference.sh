#!/usr/bin/env bash
# Regenerates the committed reference results (results/reference/*), the
# runs every figure in the README and docs/ comes from. Run it on a quiet
# machine after a change that moves figures, then update the tables from the
# new reports (each table names its folder).
#
#   scripts/reference.sh            # everything (≈ 75 min on 2 cores, the two capacity searches ≈ 40)
#   scripts/reference.sh --quick    # the short ones only (≈ 8 min): default,
#                                   # ci-smoke, cpu-4s, real-clients, chat, mixed, browser-clients(-3)
#   scripts/reference.sh --links    # the default workload over emulated links, and reconnects (≈ 22 min)
#   scripts/reference.sh --scale    # servers behind Redis and fleet agents (≈ 25 min)
#   scripts/reference.sh NAME…      # only these folders
#
# Each run writes results/reference/NAME/ (run.json, report.md, report.html,
# SVGs); empty server logs are removed. Capacity searches keep each probe's
# run.json and report.md (the charts re-render with `pushbench report`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p servers -p harness
pb=target/release/pushbench
ref=results/reference

# The default workload over emulated links (docs/links.md).
links=(link-sweep link-4g link-lossy-4g link-3g-1k link-reconnect-4g link-reconnect-10000-sse-4g)
# Beyond one process (docs/scale-out.md).
scale=(broker-hop-direct broker-hop-redis broker-hop-pubsub scale-60000 scale-60000-pinned broker-fanout-streams-1000 broker-fanout-pubsub-1000
  broker-fanout-streams-10 broker-fanout-pubsub-10 scale-restart-server scale-restart-broker)
quick=(default ci-smoke cpu-4s real-clients real-clients-polite chat mixed browser-clients browser-clients-3)
all=("${quick[@]}" clients-1000 notifications-5000 clients-10000 clients-10000-tasks
  clients-19000 django-eventstream reconnect-10000-ws reconnect-10000-sse
  reconnect-fast-10000-sse capacity capacity-ws-rerun "${links[@]}")

case "${1:-}" in
  --quick) names=("${quick[@]}") ;;
  --links) names=("${links[@]}") ;;
  --scale) names=("${scale[@]}") ;;
  "") names=("${all[@]}") ;;
  *) names=("$@") ;;
esac

run() { # NAME ARGS…: one run into results/reference/NAME
  local name=$1
  shift
  echo "reference: $name" >&2
  rm -rf "${ref:?}/$name"
  "$pb" run --out "$ref/$name" "$@" || echo "reference: $name did not pass (kept: see its report)" >&2
}

for name in "${names[@]}"; do
  case "$name" in
    default) run default ;;
    link-sweep) run link-sweep --scenario scenarios/link-sweep.toml ;;
    link-reconnect-4g) run link-reconnect-4g --scenario scenarios/reconnect.toml --link 4g ;;
    link-reconnect-10000-sse-4g)
      run link-reconnect-10000-sse-4g --scenario scenarios/reconnect.toml --clients 10000 --topics 1 --rate 2 \
        --transports sse --link 4g ;;
    link-4g) run link-4g --link 4g ;;
    link-lossy-4g) run link-lossy-4g --link lossy-4g ;;
    link-3g-1k) run link-3g-1k --link 3g --payload-bytes 1024 ;;
    ci-smoke) run ci-smoke --scenario scenarios/ci.toml ;;
    scale-60000) run scale-60000 --scenario scenarios/scale-60000.toml ;;
    scale-60000-pinned) run "$name" --scenario scenarios/scale-60000.toml --pin auto ;;
    broker-hop-direct) run "$name" --transports long-poll,sse,ws,tcp ;;
    broker-hop-redis) run "$name" --transports long-poll,sse,ws,tcp --servers 1 --broker redis ;;
    broker-hop-pubsub) run "$name" --transports long-poll,sse,ws,tcp --servers 1 --broker redis-pubsub ;;
    broker-fanout-streams-1000) run "$name" --scenario scenarios/broker-fanout.toml --broker redis ;;
    broker-fanout-pubsub-1000) run "$name" --scenario scenarios/broker-fanout.toml --broker redis-pubsub ;;
    broker-fanout-streams-10)
      run "$name" --scenario scenarios/broker-fanout.toml --broker redis --topics 10 --rate 100 --clients 40 ;;
    broker-fanout-pubsub-10)
      run "$name" --scenario scenarios/broker-fanout.toml --broker redis-pubsub --topics 10 --rate 100 --clients 40 ;;
    scale-restart-server)
      run "$name" --scenario scenarios/scale-faults.toml --fault restart@5s:2s ;;
    scale-restart-broker)
      run "$name" --scenario scenarios/scale-faults.toml --fault broker-restart@5s:2s ;;
    browser-clients) run browser-clients --browser-clients 10 ;;
    browser-clients-3) run browser-clients-3 --browser-clients 3 ;;
    cpu-4s) run cpu-4s --clients 50 --rate 20 --duration 4s --warmup 1s --transports sse,ws,tcp ;;
    real-clients) run real-clients --scenario scenarios/real-clients.toml ;;
    real-clients-polite)
      run real-clients-polite --scenario scenarios/real-clients.toml --behaviour polite
      # The two side by side (exit 1: the pauses are "regressions" by design).
      if [ -f "$ref/real-clients/run.json" ]; then
        "$pb" compare --allow-different-workload --all "$ref/real-clients-polite" "$ref/real-clients" \
          --out "$ref/real-clients/compare-with-polite.md" >/dev/null || true
      fi
      ;;
    chat) run chat --scenario scenarios/chat.toml ;;
    mixed) run mixed --scenario scenarios/mixed.toml ;;
    clients-1000) run clients-1000 --clients 1000 --rate 10 --transports sse,ws,tcp --repeat 3 ;;
    notifications-5000)
      run notifications-5000 --scenario scenarios/notifications.toml --clients 5000 --transports sse,ws,tcp ;;
    clients-10000)
      run clients-10000 --clients 10000 --rate 10 --duration 10s --warmup 5s --transports sse,ws,tcp --repeat 3 ;;
    clients-10000-tasks)
      run clients-10000-tasks --clients 10000 --rate 10 --duration 10s --warmup 5s --transports sse,ws,tcp --fanout tasks ;;
    clients-19000) run clients-19000 --clients 19000 --rate 1 --duration 10s --transports sse,ws ;;
    django-eventstream) run django-eventstream --scenario scenarios/django-eventstream.toml ;;
    reconnect-10000-ws)
      run reconnect-10000-ws --scenario scenarios/reconnect.toml --clients 10000 --topics 1 --rate 2 --transports ws ;;
    reconnect-10000-sse)
      run reconnect-10000-sse --scenario scenarios/reconnect.toml --clients 10000 --topics 1 --rate 2 --transports sse ;;
    reconnect-fast-10000-sse)
      run reconnect-fast-10000-sse --scenario scenarios/reconnect-fast.toml --clients 10000 --topics 1 --rate 2 --transports sse ;;
    capacity | capacity-ws-rerun)
      echo "reference: $name" >&2
      rm -rf "${ref:?}/$name"
      only=()
      [ "$name" = capacity-ws-rerun ] && only=(--transports ws)
      "$pb" capacity --scenario scenarios/capacity.toml "${only[@]}" --out "$ref/$name" || true
      # Keep each probe's run.json, report.md and its charts (the capacity
      # report links to them); report.html re-renders with `pushbench report`.
      find "$ref/$name/probes" -type f -name report.html -delete 2>/dev/null || true
      ;;
    *) echo "reference: unknown folder $name" >&2; exit 2 ;;
  esac
done
find "$ref" -name '*.log' -size 0 -delete
echo "reference: done; update the tables that name these folders" >&2
