"""File → Open run… on a long run: the window opens a metrics.jsonl of N step reports (written here, ~316 bytes a
line, as `main.py train` writes them) and catches up. A 5 ms QTimer probe on the GUI thread records the gaps
between its ticks meanwhile. Prints the file size, the time to draw every report, and the longest and p99 gaps
(the machine's load average too: on a shared machine other processes show up as gaps).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/follow_backlog.py [--records 100000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def write_backlog(folder: Path, n: int) -> Path:
    from engine.metrics_log import MetricsLog
    from engine.train import StepReport
    log = MetricsLog(folder, fresh=True)
    log.write("start", model="transformer", params=102784, device="CPU (1 thread)", step=0, max_steps=n,
              batch_size=16, grad_accum=1, world_size=1, global_batch=16, eval_scope="whole split")
    with open(log.path, "a", encoding="utf-8") as f:   # one open for the whole file; the lines are MetricsLog's
        for i in range(1, n + 1):
            r = StepReport(step=i, max_steps=n, tokens=i * 1024, train_loss=2.0 + 1.0 / i, lr=1e-3,
                           grad_norm=0.8, tokens_per_s=20000.0, elapsed_s=i * 0.05, eta_s=(n - i) * 0.05,
                           message="", mfu=None)
            f.write(json.dumps({"event": "step", "time": time.time(), **{k: v for k, v in r.__dict__.items()
                                                                          if not k.startswith("val") and k != "event"}},
                               separators=(",", ":")) + "\n")
    return log.path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000)
    args = p.parse_args()
    app = QApplication.instance() or QApplication([])
    from app.main_window import MainWindow
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        folder.mkdir()
        path = write_backlog(folder, args.records)
        w = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.IniFormat))
        w.show()
        w.resize(1600, 1000)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 2:   # the first corpus loads
            app.processEvents()
            time.sleep(0.005)
        gaps, last = [], [time.perf_counter()]

        def tick():
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now
        probe = QTimer()
        probe.setInterval(5)
        probe.timeout.connect(tick)
        probe.start()
        start = time.perf_counter()
        w.open_run(str(folder))
        while w.loss_plot.train.n < args.records and time.perf_counter() - start < 300:
            app.processEvents()
            time.sleep(0.001)
        caught = time.perf_counter() - start
        probe.stop()
        g = sorted(gaps)
        print(f"{args.records:,} reports, {path.stat().st_size / 1e6:.1f} MB: all drawn after {caught:.2f} s; "
              f"GUI gaps max {g[-1] * 1000:.0f} ms, p99 {g[int(len(g) * 0.99)] * 1000:.0f} ms "
              f"(load average {os.getloadavg()[0]:.1f})")
        w.stop_following()
        w.close()


if __name__ == "__main__":
    main()
