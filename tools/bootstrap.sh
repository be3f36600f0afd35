#!/usr/bin/env bash
# Creates .venv and installs the project's Python packages on first use, then re-installs only when
# pyproject.toml or constraints.txt change (a stamp file records their hash). Sourced-free: prints the venv python.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"
stamp="$venv/.lmp-installed"
want=$(cat "$root/pyproject.toml" "$root/constraints.txt" "$root/tools/bootstrap.sh" | sha256sum | cut -d' ' -f1)

if ! command -v "$py" >/dev/null 2>&1; then
    echo "LM Playground needs Python 3.11+ ($py not found). On Debian/Ubuntu: apt-get install -y python3 python3-venv" >&2
    exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating virtual environment in .venv" >&2
    if ! "$py" -m venv "$venv" >&2; then
        echo "Could not create a virtual environment. On Debian/Ubuntu: apt-get install -y python3-venv" >&2
        exit 1
    fi
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing Python packages into .venv (first run takes a few minutes)" >&2
    # -c adds our torch pin on top of whatever constraints the machine's pip config already sets.
    deps=$("$venv/bin/python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["test"]))
PY
)
    mapfile -t deplist <<<"$deps"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -c "$root/constraints.txt" "${deplist[@]}" >&2
    echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
