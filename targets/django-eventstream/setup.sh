#!/usr/bin/env bash
# Creates targets/django-eventstream/.venv with the pinned requirements.
# Idempotent: an existing venv is reused and pip only installs what differs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "setup.sh: $python not found; install Python 3.10 or newer (Debian: apt-get install -y python3 python3-venv)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup.sh: $("$python" --version 2>&1) is too old; Django 5.2 needs Python 3.10 or newer" >&2
  exit 1
fi
if [ ! -x "$here/.venv/bin/python" ]; then
  if ! "$python" -m venv "$here/.venv"; then
    rm -rf "$here/.venv"
    echo "setup.sh: '$python -m venv' failed; on Debian install the venv module: apt-get install -y python3-venv" >&2
    exit 1
  fi
fi
"$here/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "setup.sh: ready ($("$here/.venv/bin/python" -m django --version 2>/dev/null | sed 's/^/Django /'), $here/.venv)"
