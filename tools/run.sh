#!/usr/bin/env bash
# `make run`: set up if needed, then open the playground window (extra arguments go to main.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python=$("$root/tools/bootstrap.sh")
cd "$root"
exec "$python" main.py "$@"
