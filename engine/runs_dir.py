"""Where the window keeps runs: a default runs location in the user's data folder (never the working directory,
never inside the installed program), one folder per run holding its autosaved `checkpoint/`, its `snapshots/`
and `run.json`, a small record of its state that tells a crashed run (state "running", its process gone) from
one that ended.

The location is $LM_PLAYGROUND_RUNS when set, else $XDG_DATA_HOME/lm-playground/runs (default
~/.local/share/lm-playground/runs) on Linux, ~/Library/Application Support/LM Playground/runs on macOS, and
%LOCALAPPDATA%\\LM Playground\\runs on Windows."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

__all__ = ["runs_root", "new_run_folder", "mark", "unfinished_runs"]

RECORD = "run.json"


def runs_root() -> Path:
    """The default runs location (not created here)."""
    env = os.environ.get("LM_PLAYGROUND_RUNS")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "LM Playground" / "runs"
    if sys.platform.startswith("win"):
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "LM Playground" / "runs"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "lm-playground" / "runs"


def new_run_folder(family: str, root: Path | None = None) -> Path:
    """A new, empty folder for one run, `FAMILY-YYYYmmdd-HHMMSS[-N]`, marked running by this process. OSError
    when the location cannot be written."""
    root = Path(root) if root is not None else runs_root()
    root.mkdir(parents=True, exist_ok=True)
    base = f"{family}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        folder = root / (base if n == 0 else f"{base}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        mark(folder, "running")
        return folder
    raise OSError(f"no free run folder name under {root}")


def mark(folder: Path, state: str, **extra) -> None:
    """Record the run's state ("running", "ended", "recovered", "dismissed") with this process's id."""
    record = {"state": state, "pid": os.getpid(), "updated": time.time(), **extra}
    tmp = Path(folder) / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, Path(folder) / RECORD)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def unfinished_runs(root: Path | None = None) -> list[Path]:
    """Run folders left "running" by a process that is gone (a crash or a kill) that hold an autosaved
    checkpoint, newest first: what the window offers to recover."""
    root = Path(root) if root is not None else runs_root()
    found = []
    try:
        folders = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []
    for folder in folders:
        try:
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or record.get("state") != "running":
            continue
        pid = record.get("pid")
        if isinstance(pid, int) and not _alive(pid) and (folder / "checkpoint" / "meta.json").is_file():
            found.append((record.get("updated", 0), folder))
    return [f for _, f in sorted(found, key=lambda t: t[0] if isinstance(t[0], (int, float)) else 0,
                                 reverse=True)]
