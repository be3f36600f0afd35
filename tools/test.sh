#!/usr/bin/env bash
# `make test`: set up if needed, then run the whole suite headless. pytest's exit 5 ("no tests collected")
# is a failure here: a suite that ran nothing proves nothing.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python=$("$root/tools/bootstrap.sh") || exit 1
cd "$root"
export QT_QPA_PLATFORM=offscreen
"$python" -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
