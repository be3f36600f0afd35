"""Throw every hostile checkpoint of tests/engine/hostile.py at `sample`, `tape`, `train --resume` and the window's
Load (the api-level load it calls), and print what each did and the counts: the figures behind issue 14.

    .venv/bin/python tools/hostile_checkpoints.py [-v]

Exit status 1 when any loader crashed, hung or accepted a case it should refuse."""
from __future__ import annotations

import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.engine import hostile  # noqa: E402


def main(argv: list[str]) -> int:
    logging.disable(logging.WARNING)
    verbose = "-v" in argv
    counts, wrong = Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        good = hostile.build_good(base)
        for i, (name, mutate, expect) in enumerate(hostile.CASES):
            case = hostile.make_case(good, base / f"case{i}", mutate)
            for loader_name, loader in hostile.LOADERS.items():
                work = base / f"work{i}-{loader_name.split()[-1]}"
                work.mkdir()
                outcome, message = hostile.run_loader(loader, case, work, timeout=30)
                right = hostile.judge(expect, loader_name, outcome, message)
                counts[outcome] += 1
                counts["right" if right else "wrong"] += 1
                if not right:
                    wrong.append((name, loader_name, outcome, message))
                if verbose or not right:
                    shown = message.strip().splitlines()[-1] if message.strip() else ""
                    print(f"{'ok ' if right else 'BAD'} {name:45} {loader_name:15} {outcome:6} {shown[:150]}")
    n_cases = len(hostile.CASES)
    kinds = Counter(e for _, _, e in hostile.CASES)
    print(f"\n{n_cases} hostile checkpoints x {len(hostile.LOADERS)} loaders = {n_cases * len(hostile.LOADERS)} "
          f"attempts ({kinds['error']} refused by every loader, {kinds['resume']} refused by resume only, "
          f"{kinds['warn']} resumed with fresh optimizer/RNG state and a warning, {kinds['ok']} odd but harmless)")
    print(f"outcomes: {counts['error']} clear errors, {counts['ok']} loaded/ran as they should, "
          f"{counts['crash']} crashes (tracebacks), {counts['hang']} hangs; "
          f"{counts['right']} right, {counts['wrong']} wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
