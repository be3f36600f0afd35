"""The loss plot: peak-keeping downsampling, the bias-corrected EMA, what the curves show, exports."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.training.loss_plot import LossPlot
from app.training.plot_axes import compact_number
from app.training.loss_series import Series, ema_debiased, minmax_downsample
from engine.train import StepReport


def report(step: int, loss: float, *, val: float | None = None, event: str = "step") -> StepReport:
    return StepReport(step=step, max_steps=100_000, tokens=step * 64, train_loss=loss, lr=1e-3 * (1 + step % 3),
                      grad_norm=0.5 + step % 5, tokens_per_s=1000.0, elapsed_s=step * 0.01, eta_s=1.0,
                      val_loss=val, event="eval" if val is not None else event)


@pytest.fixture
def plot(qtbot):
    w = LossPlot()
    w.resize(900, 600)
    qtbot.addWidget(w)
    w.show()
    return w


def test_minmax_downsample_keeps_a_single_spike_at_100k_points():
    rng = np.random.default_rng(0)
    x = np.arange(100_000, dtype=float)
    y = 2.0 + 0.01 * rng.standard_normal(100_000)
    y[54_321] = 9.0      # one loss spike
    y[77_777] = -1.0     # and one dip
    xd, yd = minmax_downsample(x, y, 2000)
    assert len(xd) <= 2000
    assert yd.max() == 9.0 and yd.min() == -1.0
    assert xd[np.argmax(yd)] == 54_321
    assert np.all(np.diff(xd) >= 0)              # still in x order, so the line is drawn left to right
    assert minmax_downsample(x[:500], y[:500], 2000)[0].size == 500   # short series are untouched


def test_ema_is_bias_corrected_and_extends_incrementally():
    y = np.array([4.0, 4.0, 4.0, 2.0, 1.0, 3.0])
    full, _ = ema_debiased(y, 0.9)
    assert full[0] == pytest.approx(4.0)          # no pull towards zero at the start
    assert full[2] == pytest.approx(4.0)
    assert 2.0 < full[4] < 4.0
    head, state = ema_debiased(y[:3], 0.9)
    tail, _ = ema_debiased(y[3:], 0.9, state)
    np.testing.assert_allclose(np.concatenate([head, tail]), full)
    np.testing.assert_allclose(ema_debiased(y, 0.0)[0], y)


def test_ema_counts_steps_so_a_curve_logged_every_10_steps_lags_no_more():
    """A command-line run's history has a point every 10 steps. Averaged per point, its smoothed curve at 0.8 lagged
    about 40 steps behind the raw loss (3.05 against 2.74 raw at step 50), where a run logged at every step lags 4."""
    steps = np.arange(1, 301, dtype=float)
    y = 2 + 2 * np.exp(-steps / 50)
    every_step, _ = ema_debiased(y, 0.8)
    sparse, _ = ema_debiased(y[9::10], 0.8, steps=steps[9::10])
    for k in (4, 9, 19):   # steps 50, 100, 200
        step = int(steps[9::10][k])
        assert abs(sparse[k] - y[step - 1]) <= abs(every_step[step - 1] - y[step - 1])
    assert abs(ema_debiased(y[9::10], 0.8)[0][4] - y[49]) > 0.3    # the old per-point average, for scale
    head, st = ema_debiased(y[9:100:10], 0.8, steps=steps[9:100:10])
    tail, _ = ema_debiased(y[109::10], 0.8, st, steps=steps[109::10])
    np.testing.assert_allclose(np.concatenate([head, tail]), sparse)


def test_series_grows_past_its_capacity():
    s = Series(("a", "b"), capacity=2)
    for i in range(5):
        s.append(a=i, b=2 * i)
    np.testing.assert_array_equal(s["b"], [0, 2, 4, 6, 8])
    s.clear()
    assert s.n == 0 and s["a"].size == 0


def test_plot_keeps_spike_visible_at_100k_reports(plot):
    losses = 2.0 + 0.001 * np.sin(np.arange(100_000))
    losses[61_234] = 12.0
    plot.add_reports([report(i + 1, float(v)) for i, v in enumerate(losses)])
    assert plot.train.n == 100_000
    plot.redraw()
    x, y = plot.displayed_points()
    assert len(x) <= 2 * max(plot.loss_plot.vb.width(), 200) + 2
    assert y.max() == 12.0 and x[np.argmax(y)] == 61_235
    sx, sy = plot.smooth_curve.getOriginalDataset()
    assert sy.max() < 12.0                       # the smoothed line damps it; the raw line still shows it


def test_curves_follow_reports_axis_and_smoothing(plot):
    plot.add_reports([report(s, 3.0 - s / 100) for s in range(1, 51)] + [report(50, 2.5, val=2.6)])
    plot.add_reports([report(s, 2.5 - s / 1000) for s in range(51, 101)])
    assert plot.train.n == 100 and plot.val.n == 1
    plot.redraw()
    x, raw = plot.displayed_points()
    np.testing.assert_array_equal(x, np.arange(1, 101))
    vx, vy = plot.val_curve.getOriginalDataset()
    assert list(vx) == [50] and list(vy) == [2.6]
    gx, gy = plot.grad_curve.getOriginalDataset()
    assert len(gy) == 100 and gy.max() == 4.5
    plot.smoothing.setValue(0)
    plot.redraw()
    np.testing.assert_allclose(plot.smooth_curve.getOriginalDataset()[1], raw)   # no smoothing: same line
    np.testing.assert_array_equal(plot.displayed_points()[1], raw)               # raw is never hidden
    plot.x_axis.setCurrentText("tokens")
    plot.redraw()
    np.testing.assert_array_equal(plot.displayed_points()[0], np.arange(1, 101) * 64)
    assert "step 50" in plot.describe_at(50 * 64) and "val 2.6000" in plot.describe_at(50 * 64)
    plot.log_y.setChecked(True)
    assert plot.loss_plot.ctrl.logYCheck.isChecked()


def test_nan_train_loss_is_not_a_point_but_its_eval_is(plot):
    plot.add_reports([report(1, float("nan")), report(2, float("nan"), val=3.1, event="done")])
    assert plot.train.n == 0 and plot.val.n == 1


def test_exports_png_svg_and_csv(plot, tmp_path):
    plot.add_reports([report(s, 3.0 - s / 100) for s in range(1, 21)] + [report(20, 2.8, val=2.9)])
    png, svg, csv = (plot.export(tmp_path / f"loss.{ext}") for ext in ("png", "svg", "csv"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text(encoding="utf-8")
    rows = csv.read_text(encoding="utf-8").splitlines()
    assert rows[0] == ("step,tokens,elapsed_s,train_loss_nats_per_token,smoothed_train_loss_nats_per_token,lr,"
                       "grad_norm,val_loss_nats_per_token,val_bits_per_char,val_scope")
    assert len(rows) == 21 and rows[20].endswith(",2.9,,")   # no bits/char, nor scope, known for that evaluation
    plot.add_reports([_with_bpc(21, 2.7, 2.123456789012345, 3.1)])
    last = plot.export(tmp_path / "more.csv").read_text(encoding="utf-8").splitlines()[-1]
    assert last.endswith(",2.12346,3.1,")                    # 6 significant digits, like the other columns
    plain = plot.export(tmp_path / "plain.png").read_bytes()
    plot._on_mouse(plot.loss_plot.vb.mapViewToScene(plot.loss_plot.vb.viewRect().center()))
    assert plot.crosshair[0].isVisible()
    assert plot.export(tmp_path / "hover.png").read_bytes() == plain   # the hover line is left out...
    assert plot.crosshair[0].isVisible()                                # ...and back afterwards
    with pytest.raises(ValueError):
        plot.export(tmp_path / "loss.bmp")


def tick_labels(axis, lo: float, hi: float) -> list[str]:
    values = [v for _, level in axis.tickValues(lo, hi, 400) for v in level]
    return axis.tickStrings(values, 1.0, 1.0)


def test_log_axis_labels_a_narrow_range_and_tokens_read_compactly(plot):
    """A 2.1-4.6 loss range on a log axis gets several labelled ticks (pyqtgraph alone labels 2), and the tokens
    axis says 140k rather than 140000."""
    plot.log_y.setChecked(True)
    left = plot.loss_plot.getAxis("left")
    labels = tick_labels(left, np.log10(2.1), np.log10(4.6))
    assert len(labels) >= 4 and {"3", "4"} <= set(labels)
    assert len(tick_labels(left, -1.0, 1.5)) >= 3               # several decades: pyqtgraph's own ticks
    plot.x_axis.setCurrentText("tokens")
    assert plot.aux_plot.getAxis("bottom").tickStrings([140000.0, 2_500_000.0], 1.0, 1.0) == ["140k", "2.5M"]
    assert compact_number(950) == "950" and compact_number(1_000_000_000) == "1G"
    plot.x_axis.setCurrentText("step")
    assert plot.aux_plot.getAxis("bottom").tickStrings([140000.0], 1.0, 1.0) == ["140000"]


LSTM = {"family": "lstm", "preset": "tiny-cpu-lstm", "tokenizer": "char", "overrides": {}}


def _legend_names(plot: LossPlot) -> list[str]:
    return [label.text for _, label in plot.loss_plot.legend.items]


def _rows(plot: LossPlot) -> list[tuple[str, bool]]:
    lst = plot.run_list.list
    return [(lst.item(i).text(), lst.item(i).checkState() == Qt.Checked) for i in range(lst.count())]


def test_earlier_runs_stay_on_the_plot_to_compare_against(plot):
    plot.add_reports([report(s, 3.0 - s / 100, val=2.9 - s / 100 if s % 10 == 0 else None) for s in range(1, 51)])
    plot.keep_as_earlier_run(LSTM)
    plot.clear()
    plot.add_reports([report(s, 2.0) for s in range(1, 6)])
    plot.redraw()
    assert plot.train.n == 5                                     # the new run alone is the current one
    [run] = plot.history.runs
    assert run.label == "#1 lstm · tiny-cpu-lstm" and _rows(plot) == [(run.label, True)]
    assert run.label not in _legend_names(plot)                  # listed beside the plot, not over the curves
    x, y = run.curve.getData()
    np.testing.assert_array_equal(x, np.arange(1, 51))          # every step of the kept run, smoothed
    np.testing.assert_allclose(y, ema_debiased(3.0 - np.arange(1, 51) / 100, plot._beta())[0])
    np.testing.assert_array_equal(run.points.getData()[0], [10, 20, 30, 40, 50])
    assert "#1 val 2.6000" in plot.describe_at(31)               # the readout names the earlier run's val loss
    assert plot.compare.text() == "Earlier runs (1)" and plot.compare.isEnabled()

    plot.x_axis.setCurrentText("tokens")                         # earlier runs follow the axis...
    plot.smoothing.setValue(0)                                   # ...and the smoothing
    plot.redraw()
    x, y = run.curve.getData()
    np.testing.assert_array_equal(x, np.arange(1, 51) * 64)
    np.testing.assert_allclose(y, 3.0 - np.arange(1, 51) / 100)

    plot.show_earlier.setChecked(False)
    assert not run.curve.isVisible()
    assert "#1" not in plot.describe_at(31)
    plot.show_earlier.setChecked(True)
    assert run.curve.isVisible()
    plot.run_list.list.item(0).setCheckState(Qt.Unchecked)       # one run hidden from the list
    assert not run.curve.isVisible() and not run.points.isVisible() and "#1" not in plot.describe_at(31)
    plot.run_list.list.item(0).setCheckState(Qt.Checked)
    assert run.curve.isVisible()

    plot.forget_earlier_runs()
    assert not plot.history.runs and run.curve not in plot.loss_plot.items
    assert _legend_names(plot) == ["this run: train (raw)", "this run: train (smoothed)",
                                   "this run: validation, whole split"]
    assert not plot.compare.isEnabled() and plot.run_list.list.count() == 0 and plot.run_list.isHidden()


def test_earlier_runs_are_thinned_never_dropped_and_empty_runs_not_kept(plot):
    from app.training.run_history import KEEP_POINTS
    plot.keep_as_earlier_run(LSTM)
    assert not plot.history.runs
    losses = np.full(50_000, 2.0)
    losses[31_337] = 8.0                                         # a spike survives the thinning
    plot.add_reports([report(s + 1, float(v)) for s, v in enumerate(losses)])
    plot.keep_as_earlier_run(LSTM, "long")
    kept = plot.history.runs[0].train
    assert len(kept["loss"]) <= KEEP_POINTS and kept["loss"].max() == 8.0
    assert kept["step"][np.argmax(kept["loss"])] == 31_338
    for i in range(10):
        plot.clear()
        plot.add_reports([report(1, 1.0 + i)])
        plot.keep_as_earlier_run(dict(LSTM, overrides={"lr": str(0.001 * (i + 1))}))
    assert len(plot.history.runs) == 11 and plot.run_list.list.count() == 11   # none dropped, all listed
    assert plot.history.runs[2].label == "#3 lstm · tiny-cpu-lstm · as #2 but lr=0.002"
    assert len({r.color for r in plot.history.runs}) == 10         # ten colours before one repeats
    plot.run_list.list.item(0).setSelected(True)
    plot.run_list.list.item(2).setSelected(True)
    first, third = plot.history.runs[0], plot.history.runs[2]
    plot.run_list.remove_button.click()
    assert first not in plot.history.runs and third not in plot.history.runs
    assert first.curve not in plot.loss_plot.items and plot.run_list.list.count() == 9
    assert plot.compare.text() == "Earlier runs (9)"


def test_step_axis_reads_plain_numbers_after_a_sub_second_time_axis(plot, qtbot):
    """pyqtgraph kept the 'milli' prefix it computed on a 0-0.5 s time axis, so step ticks read 1000x too big."""
    plot.add_reports([report(s, 2.0) for s in range(1, 61)])      # elapsed 0.01..0.6 s
    for name in ("time", "step"):
        plot.x_axis.setCurrentText(name)
        plot.redraw()
        qtbot.wait(50)
    for p in (plot.loss_plot, plot.aux_plot):
        axis = p.getAxis("bottom")
        assert axis.autoSIPrefixScale == 1.0 and axis.labelUnitPrefix == ""
        assert axis.tickStrings([20, 40], axis.autoSIPrefixScale, 20) == ["20", "40"]


def test_a_long_readout_wraps_instead_of_widening_the_window(plot):
    narrow = plot.minimumSizeHint().width()
    plot.readout.setText(" · ".join(f"#{i} val 1.2345" for i in range(40)))
    assert plot.minimumSizeHint().width() <= narrow


def test_the_legend_over_the_curves_names_this_run_only(plot, qtbot):
    narrow = plot.loss_plot.legend.boundingRect().width()
    plot.add_reports([report(s, 2.0) for s in range(1, 6)])
    plot.keep_as_earlier_run(dict(LSTM, overrides={"n_embd": "32", "n_hidden": "64", "dropout": "0.1"}))
    qtbot.wait(20)
    assert plot.loss_plot.legend.boundingRect().width() == pytest.approx(narrow)
    assert plot.run_list.isVisible() and "n_embd=32" in plot.run_list.list.item(0).text()


def test_run_names_tell_apart_corpus_seed_and_tokenizer_options():
    from app.training.run_history import describe_run
    a = {"family": "transformer", "preset": "tiny-cpu-transformer", "tokenizer": "bpe", "overrides": {},
         "corpus": "builtin:python-docs", "tokenizer_options": {"vocab_size": 512}, "seed": 1337, "val_fraction": 0.1}
    assert describe_run(dict(a, corpus="/data/my corpus.txt"), a, "#1").endswith("as #1 but corpus=my corpus.txt")
    assert describe_run(dict(a, seed=7), a, "#1").endswith("as #1 but seed=7")
    assert describe_run(dict(a, tokenizer_options={"vocab_size": 2000}), a, "#1").endswith("as #1 but vocab_size=2000")
    assert describe_run(dict(a), a, "#1").endswith("· as #1")
    assert describe_run(dict(a, tokenizer="char"), a, "#1") == "transformer · tiny-cpu-transformer"   # vs preset


def test_run_names_say_what_an_unset_setting_means():
    from app.training.run_history import describe_run
    a = {"family": "transformer", "preset": "tiny-cpu-transformer", "tokenizer": "char", "overrides": {}}
    gqa = dict(a, overrides={"n_kv_head": "2"})
    assert describe_run(gqa).endswith("n_kv_head=2")
    assert describe_run(a, gqa, "#1") == "transformer · tiny-cpu-transformer · as #1 but n_kv_head=n_head"
    kn = {"family": "ngram", "tokenizer": "char", "overrides": {"order": "2"}}
    assert describe_run(dict(kn, overrides={"order": "2", "lambdas": "0.3,0.7"}), kn, "#1").endswith(
        "as #1 but lambdas=0.3,0.7")
    assert describe_run(kn, dict(kn, overrides={"order": "2", "lambdas": "0.3,0.7"}), "#1").endswith(
        "as #1 but lambdas=default")


def _with_bpc(step, loss, val, bpc):
    return StepReport(step=step, max_steps=100, tokens=step * 64, train_loss=loss, lr=1e-3, grad_norm=0.5,
                      tokens_per_s=1.0, elapsed_s=step / 10, eta_s=None, val_loss=val, val_bpc=bpc, event="eval")


def test_bits_per_character_put_runs_of_different_tokenizers_on_one_scale(plot):
    """A word model's loss per token (about 5 nats) and a char model's (about 1.5) do not compare; in bits per
    character each run is scaled by its own validation split's bits/char over nats/token."""
    plot.add_reports([report(s, 5.0) for s in range(1, 10)] + [_with_bpc(10, 5.0, 4.8, 1.6)])
    plot.keep_as_earlier_run(dict(LSTM, tokenizer="word"))
    plot.clear()
    plot.add_reports([report(s, 1.5) for s in range(1, 5)])
    plot.y_unit.setCurrentText("bits/char")
    plot.redraw()
    assert plot.displayed_points()[0].size == 0                    # no evaluation yet: no factor, nothing drawn
    assert "bits/char" in plot.loss_plot.getAxis("left").labelText
    plot.add_reports([_with_bpc(5, 1.5, 1.4, 2.1)])
    plot.redraw()
    x, y = plot.displayed_points()
    np.testing.assert_allclose(y, 1.5 * 2.1 / 1.4)                 # train loss x this run's bits per nat
    np.testing.assert_allclose(plot.val_curve.getData()[1], [2.1])
    run = plot.history.runs[0]
    np.testing.assert_allclose(run.points.getData()[1], [1.6])     # the word run, in its own bits/char
    np.testing.assert_allclose(run.curve.getData()[1], 5.0 * 1.6 / 4.8)
    readout = plot.describe_at(5)                                  # the readout speaks the plot's unit
    assert f"smoothed {1.5 * 2.1 / 1.4:.4f} bits/char" in readout and "#1 val 1.6000 bits/char" in readout
    plot.y_unit.setCurrentText("nats/token")
    plot.redraw()
    assert "#1 val 4.8000 nats/token" in plot.describe_at(5)
    np.testing.assert_allclose(plot.displayed_points()[1], 1.5)
    np.testing.assert_allclose(run.points.getData()[1], [4.8])


def test_small_grad_norms_read_as_they_are(plot, qtbot):
    """pyqtgraph scaled a 0.2-0.8 grad-norm axis to '(x0.001)' with ticks 200-800, which a learner misreads."""
    plot.add_reports([StepReport(step=s, max_steps=100, tokens=s, train_loss=0.5, lr=1e-3, grad_norm=0.2 + s / 100,
                                 tokens_per_s=1.0, elapsed_s=s, eta_s=None) for s in range(1, 61)])
    plot.redraw()
    qtbot.wait(50)
    for p in (plot.loss_plot, plot.aux_plot):
        axis = p.getAxis("left")
        assert axis.autoSIPrefixScale == 1.0 and "x0.001" not in axis.labelString()


def test_an_ngram_is_kept_as_a_baseline_level_across_the_plot(plot):
    """An n-gram is counted, not trained: one evaluation at 'step' = its order. Kept as an earlier run it is a
    horizontal line at its validation loss, the level later neural curves are compared with."""
    plot.add_reports([_with_bpc(3, math.nan, 2.04, 2.95)])
    plot.keep_as_earlier_run({"family": "ngram", "preset": None, "tokenizer": "char",
                              "overrides": {"order": "3", "smoothing": "kneser-ney"}})
    plot.clear()
    plot.add_reports([report(s, 3.0 - s / 100) for s in range(1, 50)])
    plot.redraw()
    [run] = plot.history.runs
    assert run.baseline is not None and run.baseline in plot.loss_plot.items
    assert run.baseline.value() == pytest.approx(2.04) and run.baseline.isVisible()
    plot.loss_plot.vb.updateAutoRange()
    assert plot.loss_plot.vb.viewRange()[1][0] <= 2.04                 # the level is inside the view
    assert run.label.startswith("#1 ngram · order 3, kneser-ney") and _rows(plot) == [(run.label, True)]
    plot.y_unit.setCurrentText("bits/char")
    plot.redraw()
    assert run.baseline.value() == pytest.approx(2.95)
    plot.show_earlier.setChecked(False)
    plot.redraw()
    assert not run.baseline.isVisible()
    plot.show_earlier.setChecked(True)
    plot.forget_earlier_runs()
    assert run.baseline not in plot.loss_plot.items


def test_train_curve_in_bits_per_char_uses_the_train_splits_characters_per_token(plot):
    """A BPE run whose train split has 3.0 characters per token and validation 2.9: the train loss in bits/char
    is loss / (3.0 ln 2), not the validation split's factor; kept as an earlier run it keeps its own factor."""
    from app.training.plot_axes import chars_per_token
    plot.set_train_chars_per_token(chars_per_token({"train_chars": 3000, "train_tokens": 1000}))
    val_bpc = 4.0 / (2.9 * math.log(2))
    plot.add_reports([report(s, 4.0) for s in range(1, 10)] + [_with_bpc(10, 4.0, 4.0, val_bpc)])
    plot.y_unit.setCurrentText("bits/char")
    plot.redraw()
    np.testing.assert_allclose(plot.displayed_points()[1], 4.0 / (3.0 * math.log(2)))
    np.testing.assert_allclose(plot.val_curve.getData()[1], [val_bpc])
    plot.smoothing.setValue(0)
    plot.keep_as_earlier_run(LSTM)
    plot.clear()
    plot.redraw()
    np.testing.assert_allclose(plot.history.runs[0].curve.getData()[1], 4.0 / (3.0 * math.log(2)))
    assert chars_per_token({"train_tokens": 5}) is None          # an older checkpoint: the val factor is used
    assert plot.train_chars_per_token is None                     # cleared with the run


def test_the_scrub_marker_label_names_the_step_it_sits_on(plot):
    """A run's kept steps place the marker on the newest one; its label must say that step, not the 0 it was
    created at (the label follows sigPositionChanged, so the value must be set with signals on)."""
    plot.set_kept_steps([1, 5, 60], 1000)
    assert plot.marker.value() == 60
    assert plot.marker.label.textItem.toPlainText() == "model at step 60"
    plot.choose_step(5)
    assert plot.marker.label.textItem.toPlainText() == "model at step 5"
    plot.back_to_newest()
    assert plot.marker.label.textItem.toPlainText() == "model at step 60"
