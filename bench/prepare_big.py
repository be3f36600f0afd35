"""Prepare a large corpus once and train from its token files: speed of `main.py prepare` and peak memory.

    .venv/bin/python bench/prepare_big.py                 # a ~2 GB text (a few minutes)
    .venv/bin/python bench/prepare_big.py --size-mb 200   # quicker

Writes a text of --size-mb MB in a temporary folder (tinyshakespeare, when ../shared/corpora has it, and the
built-in python-docs corpus, concatenated and repeated; each copy numbered so no two are the same), then runs, as
child processes,
    main.py prepare --corpus BIG --tokenizer char --out DIR --val-fraction F
    main.py train --data DIR --preset tiny-cpu-transformer --max-steps 100
and prints prepare's MB/s (the corpus's bytes over the whole process's wall time, start-up included) and each
process's peak resident memory, polled from /proc every 50 ms and checked against getrusage's ru_maxrss of the
waited child. Goals (issue 18, on the project's 2-core machine): >= 20 MB/s, peak RSS < 1.5 GB throughout.

The validation share defaults to 0.001 (2 MB of a 2 GB text): the run ends with an evaluation over the whole
validation split, which for the default 10% (200 MB of tokens) would take the tiny model about an hour on a CPU.
Memory does not depend on it: evaluation reads the memory-mapped split a batch at a time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"


def make_text(path: Path, size_bytes: int) -> int:
    sys.path.insert(0, str(ROOT))
    from engine.corpus import load_corpus
    base = load_corpus("builtin:python-docs").text
    if SHAKESPEARE.is_file():
        base = SHAKESPEARE.read_text(encoding="utf-8") + base
    block = base.encode("utf-8")
    written, copy = 0, 0
    with open(path, "wb") as f:
        while written < size_bytes:
            piece = f"\n=== copy {copy} ===\n".encode() + block
            piece = piece[:size_bytes - written]
            f.write(piece)
            written += len(piece)
            copy += 1
    return written


def run_watched(cmd: list[str], label: str) -> tuple[float, float, str, str, int]:
    """Run `cmd`; returns (wall seconds, peak RSS in MB polled from /proc, stdout, stderr tail, exit status)."""
    t0 = time.perf_counter()
    err_path = Path(tempfile.mkstemp(prefix="bench-err-")[1])
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        peak_kb = 0
        status = Path(f"/proc/{proc.pid}/status")
        out_chunks = []
        import threading
        reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)
        reader.start()
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        peak_kb = max(peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        reader.join()
    wall = time.perf_counter() - t0
    tail = err_path.read_text()[-2000:]
    err_path.unlink()
    print(f"{label}: {wall:.1f} s, peak RSS {peak_kb / 1024:.0f} MB (polled)", flush=True)
    return wall, peak_kb / 1024, "".join(out_chunks), tail, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=2000.0, help="size of the generated text in MB (default 2000)")
    ap.add_argument("--val-fraction", type=float, default=0.001)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--tmp", default=None, help="folder for the text and token files (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="lmp-prepare-big-", dir=args.tmp))
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        print(f"load average at start: {' '.join(load)}; {os.cpu_count()} CPUs (shared machine)", flush=True)
        big = work / "big.txt"
        t0 = time.perf_counter()
        size = make_text(big, int(args.size_mb * 1e6))
        print(f"generated {size / 1e6:,.0f} MB in {time.perf_counter() - t0:.1f} s: {big}", flush=True)
        wall, rss_prep, out, err, rc = run_watched(
            [py, "main.py", "prepare", "--corpus", str(big), "--tokenizer", "char", "--out", str(work / "prep"),
             "--val-fraction", str(args.val_fraction), "--quiet"], "prepare")
        if rc:
            print(err, file=sys.stderr)
            return 1
        meta = json.loads(out.strip().splitlines()[-1])
        print(f"prepare: {size / 1e6 / wall:.1f} MB/s whole process ({meta['mb_per_s']:.1f} MB/s inside), "
              f"{meta['train']['tokens']:,} train / {meta['val']['tokens']:,} val tokens, {meta['dtype']}, "
              f"train.bin {(work / 'prep' / 'train.bin').stat().st_size / 1e6:,.0f} MB", flush=True)
        wall_t, rss_train, out, err, rc = run_watched(
            [py, "main.py", "train", "--data", str(work / "prep"), "--model", "transformer", "--preset",
             "tiny-cpu-transformer", "--max-steps", str(args.steps), "--set", f"eval_interval={args.steps}",
             "--device", "cpu", "--out", str(work / "run"), "--quiet"], "train")
        if rc:
            print(err, file=sys.stderr)
            return 1
        result = json.loads(out.strip().splitlines()[-1])
        children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"train: {args.steps} steps, val {result['val_loss']:.4f} over the whole validation split, "
              f"{result['tokens_per_s']:,.0f} tok/s", flush=True)
        peak = max(rss_prep, rss_train, children_mb)
        print(f"peak RSS: prepare {rss_prep:.0f} MB, train {rss_train:.0f} MB, largest child by getrusage "
              f"{children_mb:.0f} MB", flush=True)
        print(f"goals: prepare >= 20 MB/s: {'met' if size / 1e6 / wall >= 20 else 'MISSED'}; peak RSS < 1.5 GB: "
              f"{'met' if peak < 1536 else 'MISSED'}", flush=True)
        with open("/proc/loadavg") as f:
            print(f"load average at end: {' '.join(f.read().split()[:3])}", flush=True)
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
