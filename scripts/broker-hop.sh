#!/usr/bin/env bash
# The broker's cost (issue 17, before the harness starts brokers itself):
# the same fleet against one push-server generating its own events, and
# against a push-server fed through Redis Streams by a publisher
# (push-server --broker … --broker-publish), everything server-side pinned
# to core 0, the fleet to core 1. Writes results/reference/broker-hop-direct/
# and results/reference/broker-hop-redis/ (with broker.json: the CPU of
# Redis and of the publisher over the run, per event).
#
#   scripts/broker-hop.sh      # ≈ 2 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p servers -p harness
pb=target/release/pushbench
ps=target/release/push-server
ref=results/reference
rate=${RATE:-10}
clients=${CLIENTS:-100}
command -v redis-server >/dev/null || { echo "broker-hop: needs redis-server (apt-get install redis-server)" >&2; exit 2; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { # URL: wait (bounded) until /healthz answers
  for _ in $(seq 100); do curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "broker-hop: $1 did not come up" >&2; exit 1
}
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$1/stat"; }
measure() { # NAME URL
  rm -rf "${ref:?}/$1"
  "$pb" run --target "$2" --clients "$clients" --transports long-poll,sse,ws --pin server:0,fleet:1 \
    --out "$ref/$1" || echo "broker-hop: $1 did not pass (kept: see its report)" >&2
}

# 1. One push-server, its own generator.
port=$(free_port)
taskset -c 0 "$ps" --listen "127.0.0.1:$port" --rate "$rate" >/dev/null 2>&1 &
pids+=($!)
ready "http://127.0.0.1:$port"
measure broker-hop-direct "http://127.0.0.1:$port"
kill "${pids[-1]}"

# 2. Redis, a publisher, and the measured server fed through Redis.
rport=$(free_port)
taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
redis=$!
pids+=($redis)
sleep 0.5
epoch=$(( ($(date +%s) + 1) * 1000000 ))
pport=$(free_port)
taskset -c 0 "$ps" --listen "127.0.0.1:$pport" --rate "$rate" --start-epoch-us "$epoch" \
  --broker "redis://127.0.0.1:$rport" --broker-publish >/dev/null 2>&1 &
publisher=$!
pids+=($publisher)
port=$(free_port)
taskset -c 0 "$ps" --listen "127.0.0.1:$port" --rate "$rate" --start-epoch-us "$epoch" \
  --broker "redis://127.0.0.1:$rport" >/dev/null 2>&1 &
pids+=($!)
ready "http://127.0.0.1:$pport"
ready "http://127.0.0.1:$port"
r0=$(cpu_s "$redis"); p0=$(cpu_s "$publisher"); t0=$(date +%s.%N)
measure broker-hop-redis "http://127.0.0.1:$port"
r1=$(cpu_s "$redis"); p1=$(cpu_s "$publisher"); t1=$(date +%s.%N)
python3 - "$ref/broker-hop-redis/broker.json" "$r0" "$r1" "$p0" "$p1" "$t0" "$t1" "$rate" <<'PY'
import json, sys
out, r0, r1, p0, p1, t0, t1, rate = sys.argv[1], *map(float, sys.argv[2:])
wall = t1 - t0
events = rate * wall  # one topic: events published over the measured span
json.dump({
    "what": "CPU of redis-server and of the publishing push-server over the whole measured span "
            "(every transport's run, warm-ups and drains included), per event published",
    "wall_s": round(wall, 2), "events_published": round(events),
    "redis_cpu_s": round(r1 - r0, 3), "publisher_cpu_s": round(p1 - p0, 3),
    "redis_cpu_us_per_event": round((r1 - r0) / events * 1e6, 1),
    "publisher_cpu_us_per_event": round((p1 - p0) / events * 1e6, 1),
}, open(out, "w"), indent=2)
print(open(out).read())
PY
