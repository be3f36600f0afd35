"""The loss plot's SVG export draws what its PNG export draws: rendered back with Qt's SVG renderer the two
pictures agree pixel for pixel up to antialiasing, and no curve is left under a data-scale transform that
renderers without vector-effect support would use to fatten its pen."""
from __future__ import annotations

import math
import re

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from app.training.svg_fix import bake_transforms
from tests.app.test_loss_plot import plot, report  # noqa: F401  (the fixture)


def _gray(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format_Grayscale8)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    return np.frombuffer(img.constBits(), dtype=np.uint8).reshape(h, stride)[:, :w].astype(float)


def _blocks(a: np.ndarray, k: int = 8) -> np.ndarray:
    """Mean darkness per k×k block: small offsets of antialiased edges average out, misplaced axes do not."""
    h, w = (a.shape[0] // k) * k, (a.shape[1] // k) * k
    return (255 - a[:h, :w]).reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def test_svg_export_renders_like_the_png(qtbot, plot, tmp_path):
    plot.resize(900, 600)
    plot.show()
    qtbot.waitExposed(plot)
    plot.add_reports([report(s, 3 * math.exp(-s / 100) + 1, val=2.0 if s % 50 == 0 else None,
                             event="eval" if s % 50 == 0 else "step") for s in range(1, 301)])
    plot.redraw()
    png = QImage(str(plot.export(tmp_path / "p.png")))
    svg_path = plot.export(tmp_path / "p.svg")
    renderer = QSvgRenderer(str(svg_path))
    assert renderer.isValid()
    drawn = QImage(png.size(), QImage.Format_ARGB32)
    drawn.fill(Qt.white)
    painter = QPainter(drawn)
    renderer.render(painter)
    painter.end()
    a, b = _blocks(_gray(png)), _blocks(_gray(drawn))
    # measured on this plot: mean 0.18, max 7.4 (grey levels per 8×8 block); with the axes drawn at 0.75 scale
    # and pixmap markers, as before the fix: mean 1.09, max 49
    assert np.abs(a - b).mean() < 0.5
    assert np.abs(a - b).max() < 25
    # every curve in page coordinates: no shape with a non-scaling pen left under a scaling transform
    checked = 0
    for m in re.finditer(r'transform="matrix\(([^)]*)\)"[^>]*>(.*?)</g>', svg_path.read_text(), re.S):
        a_, b_, c_, d_ = (float(v) for v in m.group(1).split(",")[:4])
        if "non-scaling-stroke" in m.group(2):
            assert (abs(a_), abs(d_), b_, c_) == (1, 1, 0, 0), m.group(1)
            checked += 1
    assert checked > 0   # the curves were found, so the loop checked something


def test_bake_transforms_moves_a_groups_matrix_into_its_points():
    svg = ('<g stroke="red" transform="matrix(2,0,0,-10,5,100)">\n'
           '<polyline fill="none" vector-effect="non-scaling-stroke" points="1,3 2,4 " />\n'
           '<path vector-effect="non-scaling-stroke" fill-rule="evenodd" d="M0,0 L1,1 Z"/>\n'
           '<rect vector-effect="non-scaling-stroke" x="0" y="0" width="3" height="2"/>\n</g>'
           '<g transform="matrix(2,0,0,2,0,0)"><text>kept</text></g>')
    out = bake_transforms(svg)
    assert 'points="7.000,70.000 9.000,60.000"' in out
    assert 'd="M 5.000,100.000 L 7.000,90.000 Z"' in out
    assert 'x="5.000" y="80.000" width="6.000" height="20.000"' in out
    assert out.count('matrix(1,0,0,1,0,0)') == 1 and '<g transform="matrix(2,0,0,2,0,0)"><text>kept' in out


def test_earlier_longer_runs_stay_in_view_during_a_shorter_run(qtbot, plot):
    """The x range covers a 1000-step earlier run while a 100-step run is drawn, and View All keeps it."""
    plot.add_reports([report(s, 3 * math.exp(-s / 300) + 1, val=2.0 if s % 250 == 0 else None)
                      for s in range(1, 1001)])
    plot.redraw()
    plot.keep_as_earlier_run({"family": "transformer"}, "long")
    plot.clear()
    plot.add_reports([report(s, 3 * math.exp(-s / 300) + 1.2) for s in range(1, 101)])
    for _ in range(3):
        plot.redraw()
        qtbot.wait(10)
    lo, hi = plot.loss_plot.vb.viewRange()[0]
    assert lo <= 1 and hi >= 1000
    assert plot.loss_plot.vb.autoRangeEnabled()[0]
    plot.loss_plot.vb.autoRange()            # View All
    assert plot.loss_plot.vb.viewRange()[0][1] >= 1000
    assert plot.aux_plot.vb.viewRange()[0][1] >= 1000   # the aux plot follows the shared x range


def test_a_diverged_run_does_not_squash_the_others(qtbot, plot):
    """An lr-10 run climbing to 1400 is cut off above 1.25 × its start; the healthy runs keep the axis. After the
    user zooms, their range stays; the autorange button brings the fitting back."""
    from app.training.loss_series import robust_y_range
    plot.add_reports([report(s, 4.6 + (1400 - 4.6) * (s / 100) ** 2) for s in range(1, 101)])
    plot.keep_as_earlier_run({"family": "transformer", "overrides": {"lr": "10"}}, "diverged")
    plot.clear()
    plot.add_reports([report(s, 3 * math.exp(-s / 30) + 1.5) for s in range(1, 101)])
    for _ in range(3):
        plot.redraw()
        qtbot.wait(10)
    lo, hi = plot.loss_plot.vb.viewRange()[1]
    assert hi < 10 and lo < 1.6 and plot.y_clipped
    assert "cut off" in plot.loss_plot.getAxis("left").labelText
    plot.log_y.setChecked(True)                      # in log scale too (the range is in log10 units)
    plot.redraw()
    lo, hi = plot.loss_plot.vb.viewRange()[1]
    assert hi < 1.0 and plot.y_clipped
    plot.log_y.setChecked(False)
    plot.loss_plot.vb.sigRangeChangedManually.emit([False, True])   # what a mouse zoom emits
    plot.loss_plot.setYRange(0, 2000)
    plot.redraw()
    assert plot.loss_plot.vb.viewRange()[1][1] >= 2000
    assert robust_y_range([np.array([4.0, 3.0, 2.0]), np.array([np.nan, 2.5, 2.2])]) == (2.0, 4.0, False)
    assert robust_y_range([np.array([4.0, 9.0])]) == (4.0, 5.0, True)
    assert robust_y_range([np.array([np.nan])]) is None


def test_axis_unit_and_log_choices_persist(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from app.training.loss_plot import LossPlot
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    first = LossPlot()
    qtbot.addWidget(first)
    first.remember_in(settings)
    first.x_axis.setCurrentText("tokens")
    first.y_unit.setCurrentText("bits/char")
    first.log_y.setChecked(True)
    settings.sync()
    second = LossPlot()
    qtbot.addWidget(second)
    second.remember_in(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    assert (second.x_axis.currentText(), second.y_unit.currentText(), second.log_y.isChecked()) == \
        ("tokens", "bits/char", True)
    damaged = QSettings(str(tmp_path / "d.ini"), QSettings.IniFormat)
    damaged.setValue("loss_plot/x_axis", "furlongs")
    third = LossPlot()
    qtbot.addWidget(third)
    third.remember_in(damaged)
    assert third.x_axis.currentText() == "step"
