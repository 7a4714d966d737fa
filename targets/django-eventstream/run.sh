#!/usr/bin/env bash
# Starts the django-eventstream target for pushbench: uvicorn (one worker,
# one process) on $PUSHBENCH_LISTEN, publishing on pushbench's schedule
# (PUSHBENCH_* variables, see pbtarget/publisher.py). `exec`, so the pid
# pushbench started is the server and its SIGTERM reaches uvicorn directly.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/python" ]; then
  echo "run.sh: $here/.venv is missing; run targets/django-eventstream/setup.sh first" >&2
  exit 1
fi
listen="${PUSHBENCH_LISTEN:?PUSHBENCH_LISTEN (host:port) must be set}"
host="${listen%:*}"
port="${listen##*:}"
cd "$here"
export DJANGO_SETTINGS_MODULE=pbtarget.settings
exec "$here/.venv/bin/python" -m uvicorn pbtarget.asgi:application \
  --host "$host" --port "$port" --workers 1 --no-access-log --log-level warning
