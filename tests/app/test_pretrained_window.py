"""The window with models trained elsewhere: File → Open model… reads a Hugging Face GPT-2 folder (picked as its
config.json) and nanoGPT's ckpt.pt, asks for a tokenizer when a ckpt brings none, and the Sample, Graph and
Inside tabs then work on the loaded model. LM_SCREENSHOTS=DIR saves the Sample and Inside tabs at 1600x1000 and
1280x800."""
from __future__ import annotations

import os
from pathlib import Path

from app.graph.graph_controls import MODEL
from tests.app.conftest import RUN_TIMEOUT_MS
from tests.engine.pretrained_files import bpe_files, hf_gpt2, nanogpt_ckpt


def _open(qtbot, w, path) -> bool:
    with qtbot.waitSignal(w.load_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert w.open_model(str(path))
    return blocker.args[0]


def _shots(w, name: str) -> None:
    folder = os.environ.get("LM_SCREENSHOTS")
    if not folder:
        return
    for size in ((1600, 1000), (1280, 800)):
        w.resize(*size)
        w.repaint()
        w.grab().save(str(Path(folder) / f"{name}-{size[0]}.png"))


def test_a_gpt2_folder_samples_steps_its_tape_and_shows_inside(qtbot, window, tmp_path):
    hf_gpt2(tmp_path / "gpt2")
    assert _open(qtbot, window, tmp_path / "gpt2" / "config.json")
    assert "pretrained" in window.loaded[1] and window.state == "loaded"
    assert "transformer" in window.source.describe()

    sample = window.sample_panel
    window.tabs.setCurrentWidget(sample)
    sample.prompt.setPlainText("It is a truth")
    sample.max_tokens.setValue(24)
    sample.seed.setText("3")
    sample.generate()
    qtbot.waitUntil(lambda: not sample.running and sample.view.token_count > 0, timeout=RUN_TIMEOUT_MS)
    assert sample.view.token_count == 24
    _shots(window, "gpt2-sample")

    inside = window.inside_panel
    inside.text.setPlainText("It is a truth universally acknowledged")
    window.tabs.setCurrentWidget(inside)
    inside.refresh()
    qtbot.waitUntil(lambda: inside.inside is not None and inside.inside.lens is not None, timeout=RUN_TIMEOUT_MS)
    assert inside.inside.attention.shape[:2] == (2, 4)
    _shots(window, "gpt2-inside")

    graph = window.graph_panel
    window.tabs.setCurrentWidget(graph)
    graph.what.setCurrentText(MODEL)
    graph.text.setText("It is a truth")
    graph.build()
    qtbot.waitUntil(lambda: graph.program is not None and graph.program_from_model, timeout=RUN_TIMEOUT_MS)
    assert any(n.kind == "op" and n.module.op == "GELU(tanh)" for n in graph.program.nodes)


def test_a_ckpt_without_vocabulary_asks_for_the_tokenizer(qtbot, window, tmp_path):
    nanogpt_ckpt(tmp_path / "out", vocab_size=320, meta=False)
    bpe_files(tmp_path / "tok")
    asked = []
    window.ask_tokenizer_path = lambda message: asked.append(message) or str(tmp_path / "tok" / "tokenizer.json")
    with qtbot.waitSignal(window.load_finished, timeout=2 * RUN_TIMEOUT_MS) as blocker:
        assert window.open_model(str(tmp_path / "out" / "ckpt.pt"))
    assert blocker.args[0] and "--tokenizer-file" in asked[0]
    assert window.loaded[1]["model"]["vocab_size"] == 300

    window.ask_tokenizer_path = lambda message: ""   # cancelled: refused, with the reason shown
    with qtbot.waitSignal(window.load_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert window.open_model(str(tmp_path / "out" / "ckpt.pt"))
    assert blocker.args[0] is False and "no character vocabulary" in window._notes["error"]


def test_fine_tune_and_export_a_model_trained_elsewhere_from_the_window(qtbot, window, tmp_path):
    from tests.app.test_main_window import load_and_wait
    nanogpt_ckpt(tmp_path / "out")   # char vocabulary "\n !abcdehst" in meta.pkl beside it
    assert _open(qtbot, window, tmp_path / "out" / "ckpt.pt")
    assert not window.panel.resume_button.isEnabled()   # no run of its own to resume: fine-tuning trains a copy
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat at the hat\n" * 80, encoding="utf-8")
    assert load_and_wait(qtbot, window.panel.corpus_box, str(corpus))
    window.panel.fields["train"]["max_steps"].setValue(3)
    assert window.finetune_checkpoint(), window.panel.message.text()
    qtbot.waitUntil(lambda: window.state == "done", timeout=RUN_TIMEOUT_MS)
    child = window.save_checkpoint(str(tmp_path / "child"))
    from engine import checkpoint
    meta = checkpoint.load_meta(child)
    assert meta["parent"]["step"] == 250 and meta["model"]["block_size"] == 32 and meta["step"] == 3
    # the form shows the from-scratch preset's lr 3e-3; a trained model fine-tunes at a tenth, as the CLI does
    assert meta["train"]["lr"] == 3e-4 and meta["train"]["min_lr"] == 3e-5, meta["train"]
    assert _open(qtbot, window, tmp_path / "out" / "ckpt.pt")
    with qtbot.waitSignal(window.exported, timeout=RUN_TIMEOUT_MS) as blocker:
        assert window.export_checkpoint(str(tmp_path / "run.py"))
    assert blocker.args == [str(tmp_path / "run.py")] and (tmp_path / "run.weights.pt").is_file()
