"""Exporting the Loss tab's plots: PNG and SVG pictures of both plots (without the hover line and the scrub
marker) and a CSV of every recorded point. A mixin of LossPlot (loss_plot.py)."""
from __future__ import annotations

import math
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (registers pg.exporters)
from PySide6.QtCore import QRect
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog

from app.training.plot_axes import scope_label
from app.training.svg_fix import bake_transforms

# the exported columns; losses are natural-log cross-entropies, so the unit is in the name
CSV_HEADER = ("step,tokens,elapsed_s,train_loss_nats_per_token,smoothed_train_loss_nats_per_token,lr,grad_norm,"
              "val_loss_nats_per_token,val_bits_per_char,val_scope")


class PlotExport:
    """Expects of its LossPlot: graphics, crosshair, marker, train, val, _smooth and redraw()."""

    def _export_dialog(self, kind: str) -> None:
        filters = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)", "csv": "CSV (*.csv)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export", f"loss.{kind}", filters[kind])
        if path:
            self.export(path)

    def export(self, path: str | Path) -> Path:
        """By suffix: .png/.svg draw both plots; .csv writes every recorded point."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            self._export_csv(path)
        elif suffix in (".png", ".svg"):
            self.redraw()
            lines = self.crosshair + [self.marker]
            shown = [line.isVisible() for line in lines]
            for line in lines:   # the hover line and the scrub marker are not part of the picture
                line.hide()
            if suffix == ".png":
                pg.exporters.ImageExporter(self.graphics.scene()).export(str(path))
            else:
                self._export_svg(path)
            for line, was in zip(lines, shown):
                line.setVisible(was)
        else:
            raise ValueError(f"export to .png, .svg or .csv, not {path.suffix!r}")
        return path

    def _export_svg(self, path: Path) -> None:
        """Vector output through Qt's own SVG painter: pyqtgraph 0.14's SVGExporter cannot parse the path data
        PySide6 6.11/6.12 write (it fails even on an empty plot), so the scene is rendered into a QSvgGenerator."""
        size = self.graphics.size()
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(size)
        generator.setViewBox(QRect(0, 0, size.width(), size.height()))
        # the generator's default 72 dpi would make Qt scale every cached QPicture (the axes' ticks and labels are
        # drawn through one) by 72/96: axes at 0.75 of the data's scale. Paint at the screen's resolution instead.
        generator.setResolution(self.graphics.logicalDpiX())
        generator.setTitle("LM Playground loss curves")
        painter = QPainter(generator)
        # export mode: scatter symbols are drawn as paths, not as fragments of a cached pixmap, which SVG viewers
        # show garbled; pyqtgraph's own exporters switch items the same way
        items = [i for i in self.graphics.scene().items() if hasattr(i, "setExportMode")]
        opts = {"antialias": True, "background": self.graphics.backgroundBrush().color(), "painter": painter,
                "resolutionScale": 1.0}
        for item in items:
            item.setExportMode(True, opts)
        try:
            self.graphics.render(painter)
        finally:
            for item in items:
                item.setExportMode(False)
            painter.end()
        path.write_text(bake_transforms(path.read_text(encoding="utf-8")), encoding="utf-8")

    def _export_csv(self, path: Path) -> None:
        """One row per train point; the validation columns filled on the steps that had an evaluation. Losses are
        natural-log cross-entropies, in nats per token (the header says so); val_bits_per_char is the validation
        loss in bits per character of text, comparable across tokenizers."""
        val_at = {step: f"{v:.6g}" for step, v in zip(self.val["step"].astype(int).tolist(),
                                                       self.val["loss"].tolist())}
        bpc_at = {int(step): f"{v:.6g}" for step, v in zip(self.val["step"], self.val["bpc"]) if math.isfinite(v)}
        scope_at = {int(step): scope_label(w) for step, w in zip(self.val["step"], self.val["windows"])}
        lines = [CSV_HEADER]
        t = self.train
        for i in range(t.n):
            step = int(t["step"][i])
            val = val_at.pop(step, "")
            lines.append(f"{step},{int(t['tokens'][i])},{t['elapsed'][i]:.3f},{t['loss'][i]:.6g},"
                         f"{self._smooth[i]:.6g},{t['lr'][i]:.6g},{t['grad_norm'][i]:.6g},{val},"
                         f"{bpc_at.get(step, '') if val else ''},{scope_at.get(step, '') if val else ''}")
        for step, val in val_at.items():  # evals without a train point (an n-gram model's single evaluation)
            lines.append(f"{step},,,,,,,{val},{bpc_at.get(step, '')},{scope_at.get(step, '')}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
