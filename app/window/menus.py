"""The window's menu bar and keyboard shortcuts: File, Run, View, Help.

A menu item that does what a button does mirrors that button: triggering it clicks the button, it is enabled exactly
when the button is, and the button's tooltip ends with the shortcut. So the panels stay the one place that decides
what is possible now (Start greys out while the form is invalid, Save while nothing can be saved), and a shortcut
can never do what the button would refuse. Shortcuts are Qt's standard key sequences where one exists (Ctrl+O,
Ctrl+S, Ctrl+W, Ctrl+Q, F1), so they follow the platform's conventions."""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractButton, QDialog, QDialogButtonBox, QLabel, QMenu, QMessageBox, QVBoxLayout

if TYPE_CHECKING:
    from app.main_window import MainWindow

START_KEY = QKeySequence("F5")
PAUSE_KEY = QKeySequence("F6")
STOP_KEY = QKeySequence("Shift+F5")
LOAD_KEY = QKeySequence("Ctrl+L")
OPEN_FOLDER_KEY = QKeySequence("Ctrl+Shift+O")


def key_text(key: QKeySequence) -> str:
    return key.toString(QKeySequence.NativeText)


class ButtonMirror(QObject):
    """Keeps `action` in step with `buttons`: enabled when one of them is, triggering clicks the first enabled one,
    its text is that button's (Pause or Resume), and each button's tooltip names the action's shortcut."""

    def __init__(self, action: QAction, buttons: list[QAbstractButton], texts: list[str]):
        super().__init__(action)
        self.action, self.buttons, self.texts = action, buttons, texts
        action.triggered.connect(self._click)
        for b in buttons:
            b.installEventFilter(self)
            self._name_shortcut(b)
        self._sync()

    def _click(self) -> None:
        for b in self.buttons:
            if b.isEnabled():
                b.click()
                return

    def _sync(self) -> None:
        enabled = [b.isEnabled() for b in self.buttons]
        self.action.setEnabled(any(enabled))
        self.action.setText(self.texts[enabled.index(True)] if any(enabled) else self.texts[0])

    def _name_shortcut(self, button: QAbstractButton) -> None:
        key = self.action.shortcut()
        suffix = f" ({key_text(key)})" if not key.isEmpty() else ""
        if suffix and not button.toolTip().endswith(suffix):
            button.setToolTip(button.toolTip() + suffix)   # a panel that rewrites the tooltip gets it back

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.EnabledChange:
            self._sync()
        elif event.type() == QEvent.ToolTipChange:
            self._name_shortcut(watched)
        return False


def build_menus(w: MainWindow) -> dict[str, QAction]:
    """Fill the window's menu bar; returns the actions by name (tests and the shortcuts list read them)."""
    actions: dict[str, QAction] = {}
    bar = w.menuBar()
    p, box = w.panel, w.panel.corpus_box

    def add(menu: QMenu, name: str, text: str, key: QKeySequence | QKeySequence.StandardKey | None = None,
            slot=None, mirror: list[QAbstractButton] | None = None, texts: list[str] | None = None) -> QAction:
        action = menu.addAction(text)
        if key is not None:
            action.setShortcut(QKeySequence(key))
        if slot is not None:
            action.triggered.connect(slot)
        if mirror is not None:
            ButtonMirror(action, mirror, texts or [text])
        actions[name] = action
        return action

    file = bar.addMenu("&File")
    add(file, "open_file", "Open corpus &file…", QKeySequence.Open, mirror=[box.open_file_button])
    add(file, "open_folder", "Open corpus f&older…", OPEN_FOLDER_KEY, mirror=[box.open_folder_button])
    recent = file.addMenu("&Recent corpora")
    recent.aboutToShow.connect(lambda: _fill_recent(w, recent))
    file.addSeparator()
    add(file, "load", "&Load checkpoint…", LOAD_KEY, mirror=[p.load_button])
    open_model = add(file, "open_model", "Open &model… (GPT-2 folder, nanoGPT ckpt.pt)", slot=lambda: w.open_model())
    file.aboutToShow.connect(lambda: open_model.setEnabled(p.load_button.isEnabled()))   # as Load: not mid-run
    open_run = add(file, "open_run", "Open &run…", slot=lambda: w.open_run())
    open_run.setToolTip("Follow a run that main.py train (or torchrun) writes to a folder: its loss curve grows "
                        "live from metrics.jsonl, and each checkpoint it writes loads into the tabs.")
    add(file, "save", "&Save checkpoint…", QKeySequence.Save, mirror=[p.save_button])
    file.addMenu(w.loss_plot.export_menu)
    file.addSeparator()
    add(file, "close", "&Close window", QKeySequence.Close, slot=w.close)
    quit_action = add(file, "quit", "&Quit", QKeySequence.Quit, slot=w.close)   # one window: closing it quits
    quit_action.setMenuRole(QAction.QuitRole)

    run = bar.addMenu("&Run")
    add(run, "start", "&Start training", START_KEY, mirror=[p.start_button])
    pause = add(run, "pause", "&Pause", PAUSE_KEY, mirror=[p.pause_button, p.resume_button],
                texts=["&Pause", "&Resume"])
    pause.setData("Pause / resume")   # its text follows the state; the shortcuts list names both
    add(run, "stop", "S&top", STOP_KEY, mirror=[p.stop_button])

    view = bar.addMenu("&View")
    for i in range(w.tabs.count()):
        add(view, f"tab_{i}", f"&{w.tabs.tabText(i)} tab", QKeySequence(f"Ctrl+{i + 1}"),
            slot=lambda _=False, i=i: w.tabs.setCurrentIndex(i))

    help_menu = bar.addMenu("&Help")
    add(help_menu, "shortcuts", "&Keyboard shortcuts", QKeySequence.HelpContents,
        slot=lambda: show_shortcuts(w, actions))
    about = add(help_menu, "about", "&About LM Playground", slot=lambda: show_about(w))
    about.setMenuRole(QAction.AboutRole)
    return actions


def _fill_recent(w: MainWindow, menu: QMenu) -> None:
    """Rebuilt each time it opens, from the corpus box's list (which drops folders that are gone)."""
    menu.clear()
    box = w.panel.corpus_box
    paths = box.recent()
    if not paths:
        menu.addAction("(none yet: open a file or folder)").setEnabled(False)
    for path in paths:
        action = menu.addAction(Path(path).name or path)
        action.setToolTip(path)
        action.setEnabled(box.isEnabled())   # no corpus change while a run trains on this one
        action.triggered.connect(lambda _=False, path=path: box.load(path))


def shortcuts_text(actions: dict[str, QAction]) -> str:
    """An HTML table of every action with a shortcut, in menu order (ampersands are mnemonics, not text)."""
    rows = [f"<tr><td>{escape(a.data() or a.text().replace('&', ''))}</td>"
            f"<td><b>{escape(key_text(a.shortcut()))}</b></td></tr>"
            for a in actions.values() if not a.shortcut().isEmpty()]
    graph = ("<tr><td colspan='2'><br><i>Graph tab</i>: ← step back, → step, space play/pause, Home reset, "
             "End run to the end</td></tr>")
    return f"<table cellspacing='4'>{''.join(rows)}{graph}</table>"


def show_shortcuts(w: MainWindow, actions: dict[str, QAction]) -> QDialog:
    """A non-modal list, so it can stay open next to the window while the keys are tried."""
    dialog = getattr(w, "_shortcuts_dialog", None)
    if dialog is None:
        dialog = QDialog(w)
        dialog.setWindowTitle("Keyboard shortcuts")
        label = QLabel(shortcuts_text(actions))
        label.setTextFormat(Qt.RichText)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(dialog.close)
        layout = QVBoxLayout(dialog)
        layout.addWidget(label)
        layout.addWidget(buttons)
        w._shortcuts_dialog = dialog
    dialog.show()
    dialog.raise_()
    return dialog


def show_about(w: MainWindow) -> None:
    QMessageBox.about(w, "About LM Playground",
                      "<b>LM Playground</b><p>Load a corpus, tokenize it, train an n-gram, RNN or Transformer "
                      "language model and watch it learn, step through its forward and backward pass, and sample "
                      "from it.</p><p>Built with PySide6, pyqtgraph and PyTorch.</p>")
