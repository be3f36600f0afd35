"""Beam search drawn as a tree: one column per decoding step, one box per hypothesis (its last token and its score).

What the picture is for: beam search keeps `width` prefixes per step and drops the rest, so most branches die.
Boxes that were pruned, and live boxes none of whose descendants made it to the end, are greyed; hypotheses that
finished have a green edge; the path of the answer (the best finished hypothesis) is outlined in orange, so you can
see where it was *not* the locally best choice (it is not the top box in every column). The legend is a wrapped label
pinned under the drawing, not part of the scene, so it stays readable at any width and does not scroll away."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QHBoxLayout, QLabel, QToolButton, QWidget

COL_W, BOX_W, BOX_H, ROW_H = 84, 66, 32, 38   # compact: about 10 steps and 8 rows in 880 × 330 px at 100%
ZOOMS = (0.5, 0.6, 0.75, 0.9, 1.0, 1.25, 1.5, 2.0)
AUTO_FIT_MIN = 0.75   # a finished tree is shrunk to fit the view, but never below this (smaller is unreadable)
END_PEN = QPen(QColor("#2e9d47"), 4)
ROOT_FILL = QColor("#fff3c4")
TEXT, DEAD_TEXT = QColor("#111111"), QColor("#9a9a9a")
BEST_PEN = QPen(QColor("#ff8c00"), 3)
LEGEND = ('<span style="color:#ff8c00">■</span> the answer\'s path · <span style="color:#7f9fcf">■</span> kept · '
          '<span style="color:#2e9d47">▌</span> finished here (stop string or max tokens) · '
          '<span style="color:#c3cbd6">■</span> kept, its line pruned later · dashed: pruned at that step · '
          'number: score (hover for how it is made) · Ctrl+wheel or −/+ zoom, fit shows all')
LEGEND_TIP = ("Each box is a hypothesis after that step: its last token and its score.\n"
              "score = log-prob / length^(length penalty): the total log-probability of the generated tokens, divided\n"
              "by their count raised to the length penalty (0: plain log-prob, 1: per-token average), so finished\n"
              "hypotheses of different lengths can be compared. Hover a box for its text, log-prob and score.")
# (fill, border, edge) per state: kept and still going / kept but its line died later / pruned at this step
STYLE = {
    "live": (QColor("#dbe8fb"), QPen(QColor("#7f9fcf"), 1), QPen(QColor("#5a7fb5"), 1.5)),
    "finished": (QColor("#dff3e3"), QPen(QColor("#2e9d47"), 2), QPen(QColor("#5a7fb5"), 1.5)),
    "died": (QColor("#eef1f5"), QPen(QColor("#c3cbd6"), 1), QPen(QColor("#c3cbd6"), 1)),
    "pruned": (QColor("#f4f4f4"), QPen(QColor("#d0d0d0"), 1, Qt.DashLine), QPen(QColor("#e0e0e0"), 1, Qt.DashLine)),
}


@dataclass
class TreeNode:
    """One drawn box. `ids` is the whole generated prefix, so it names the node uniquely across steps."""
    ids: tuple[int, ...]
    label: str
    score: float
    logprob: float
    text: str
    kind: str                  # "live" | "finished" | "pruned"
    parent: tuple[int, ...]    # ids of the parent (() = the prompt)
    on_best: bool = False
    dead: bool = False         # pruned, or every descendant was pruned
    finish: str = ""           # finished ones: "stop" (reached a stop string) or "max_tokens"

    @property
    def state(self) -> str:
        if self.kind == "live" and self.dead:
            return "died"
        return self.kind


def build_tree(steps: Sequence[Sequence], best_ids: Sequence[int] | None,
               token_label: Callable[[int], str]) -> list[list[TreeNode]]:
    """steps[t]: the hypotheses reported at step t+1 (objects with token_ids, text, logprob, score, alive, finish,
    as engine.beam.BeamInfo). Returns the columns to draw, with `dead` and `on_best` worked out."""
    columns: list[list[TreeNode]] = []
    for hyps in steps:
        col = []
        for h in hyps:
            ids = tuple(int(i) for i in h.token_ids)
            kind = "live" if h.alive else ("pruned" if h.finish == "pruned" else "finished")
            col.append(TreeNode(ids, token_label(ids[-1]), float(h.score), float(h.logprob), h.text, kind, ids[:-1],
                                finish=h.finish))
        order = {"live": 0, "finished": 1, "pruned": 2}
        col.sort(key=lambda n: (order[n.kind], -n.score))
        columns.append(col)
    # a node stays "alive" in the picture only if it finished or a later node descends from it
    survivors: set[tuple[int, ...]] = set()
    for col in reversed(columns):
        for n in col:
            n.dead = not (n.kind == "finished" or n.ids in survivors)
            if not n.dead:
                survivors.add(n.parent)
    if best_ids is not None:
        best = tuple(int(i) for i in best_ids)
        for col in columns:
            for n in col:
                n.on_best = len(n.ids) <= len(best) and best[:len(n.ids)] == n.ids and n.kind != "pruned"
    return columns


class BeamTree(QGraphicsView):
    """Scrollable drawing of `build_tree`'s columns; `show_tree` redraws from scratch (trees are small)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.Antialiasing)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setBackgroundBrush(QColor("white"))
        self.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.columns: list[list[TreeNode]] = []
        self.legend = QLabel(LEGEND, self)
        self.legend.setWordWrap(True)
        self.legend.setToolTip(LEGEND_TIP)
        self.legend.setStyleSheet("color: #555555; background: white; padding: 2px 6px")
        self.zoom = 1.0
        self._user_zoomed = False   # once the user zooms, a redraw keeps their zoom instead of fitting
        self.zoom_bar = QWidget(self)
        bar = QHBoxLayout(self.zoom_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(2)
        for text, tip, fn in (("−", "zoom out (Ctrl+wheel)", lambda: self.step_zoom(-1)),
                              ("+", "zoom in (Ctrl+wheel)", lambda: self.step_zoom(1)),
                              ("fit", "shrink the whole tree into view", lambda: self.fit(user=True))):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(fn)
            bar.addWidget(b)
        self.show_message("Run beam search to see the hypotheses it keeps and prunes at each step.")

    def show_message(self, text: str) -> None:
        self.columns = []
        self._user_zoomed = False
        self.set_zoom(1.0)
        self.legend.hide()
        self._place_legend()
        self.scene().clear()
        item = self.scene().addText(text)
        item.setDefaultTextColor(QColor("#555555"))
        self.scene().setSceneRect(self.scene().itemsBoundingRect())

    @property
    def node_count(self) -> int:
        return sum(len(c) for c in self.columns)

    def best_path(self) -> list[TreeNode]:
        return [n for col in self.columns for n in col if n.on_best]

    def show_tree(self, columns: list[list[TreeNode]], prompt_label: str) -> None:
        bars = (self.horizontalScrollBar(), self.verticalScrollBar())
        at_start = [bar.value() <= bar.minimum() for bar in bars]  # not scrolled away by the user
        self.columns = columns
        scene = self.scene()
        scene.clear()
        pos: dict[tuple[int, ...], QPointF] = {(): QPointF(0, 0)}  # node ids -> box's top-left
        rows = max((len(c) for c in columns), default=1)
        root_y = (rows - 1) * ROW_H / 2
        pos[()] = QPointF(0, root_y)
        self._box(scene, pos[()], prompt_label, "", ROOT_FILL, TEXT, QPen(QColor("#b08900"), 1.5),
                  "the prompt: every hypothesis starts here")
        for t, col in enumerate(columns, start=1):
            for r, n in enumerate(col):
                pos[n.ids] = QPointF(t * COL_W, r * ROW_H)
        for col in columns:  # edges first, so boxes are drawn over them
            for n in col:
                if n.parent not in pos:
                    continue
                a, b = pos[n.parent], pos[n.ids]
                pen = BEST_PEN if n.on_best else STYLE[n.state][2]
                line = scene.addLine(a.x() + BOX_W, a.y() + BOX_H / 2, b.x(), b.y() + BOX_H / 2, pen)
                line.setZValue(1 if n.on_best else 0)
        for col in columns:
            for n in col:
                fill, border, _ = STYLE[n.state]
                why = "reached a stop string" if n.finish == "stop" else "max tokens"
                what = {"live": "kept", "finished": f"finished here after {len(n.ids)} tokens ({why})",
                        "pruned": "pruned at this step",
                        "died": "kept, but every continuation was pruned later"}[n.state]
                tip = (f"{what}{' — on the answer' if n.on_best else ''}\n"
                       f"text: {n.text!r}\nlog-prob {n.logprob:.3f}, score {n.score:.3f}")
                self._box(scene, pos[n.ids], n.label, f"{n.score:.2f}", fill,
                          DEAD_TEXT if n.dead else TEXT, BEST_PEN if n.on_best else border, tip)
        self.legend.show()
        self._place_legend()
        for col in columns:   # where a hypothesis finished: a green bar on its box's right edge
            for n in col:
                if n.kind == "finished":
                    p = pos[n.ids]
                    end = scene.addLine(p.x() + BOX_W - 2, p.y() + 2, p.x() + BOX_W - 2, p.y() + BOX_H - 2, END_PEN)
                    end.setZValue(4)
        for t in range(len(columns) + 1):
            head = scene.addText("prompt" if t == 0 else f"step {t}")
            head.setDefaultTextColor(QColor("#777777"))
            head.setPos(t * COL_W, -26)
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-8, -8, 8, 8))
        if not self._user_zoomed:
            self.fit(AUTO_FIT_MIN)
        for bar, start in zip(bars, at_start):
            if start:   # the column headers sit above y = 0: keep the new top edge in view, not the old one
                bar.setValue(bar.minimum())

    def _place_legend(self) -> None:
        """Reserve the legend's wrapped height below the viewport (above the horizontal scroll bar) and put it there.
        The height is worked out as if the vertical scroll bar were shown, so it does not change when that bar comes
        and goes (which resizes the viewport and calls this again)."""
        fw = self.frameWidth()
        width = self.width() - 2 * fw - self.verticalScrollBar().sizeHint().width()
        height = self.legend.heightForWidth(width) if self.legend.isVisibleTo(self) else 0
        self.setViewportMargins(0, 0, 0, height)
        # placed from the widget's own size: the viewport's geometry is only updated by the next layout pass, and
        # reading it here put the legend over the drawing's bottom row when the scroll bars had just changed
        bar = self.horizontalScrollBar()
        bottom = self.height() - fw - (bar.sizeHint().height() if bar.isVisibleTo(self) else 0)
        self.legend.setGeometry(fw, bottom - height, width, height)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_legend()
        self.zoom_bar.adjustSize()
        self.zoom_bar.move(self.width() - self.frameWidth() - self.verticalScrollBar().sizeHint().width()
                           - self.zoom_bar.width() - 4, self.frameWidth() + 4)

    # -- zoom ----------------------------------------------------------------------------------------------------
    def set_zoom(self, z: float) -> None:
        self.zoom = min(max(z, ZOOMS[0] * 0.5), ZOOMS[-1])
        self.resetTransform()
        self.scale(self.zoom, self.zoom)

    def step_zoom(self, direction: int) -> None:
        self._user_zoomed = True
        bigger = [z for z in ZOOMS if z > self.zoom + 1e-6]
        smaller = [z for z in ZOOMS if z < self.zoom - 1e-6]
        self.set_zoom((bigger[0] if bigger else ZOOMS[-1]) if direction > 0 else (smaller[-1] if smaller else ZOOMS[0]))

    def fit(self, floor: float = ZOOMS[0] * 0.5, user: bool = False) -> None:
        """Scale so the whole tree is in view (at most 100%, at least `floor`); a fit the user asked for also lets
        later redraws fit again."""
        if user:
            self._user_zoomed = False
        rect = self.scene().sceneRect()
        vp = self.viewport().rect()
        if rect.width() <= 0 or rect.height() <= 0:
            return
        self.set_zoom(max(floor, min(1.0, vp.width() / rect.width(), vp.height() / rect.height())))

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.ControlModifier:
            self.step_zoom(1 if event.angleDelta().y() > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)

    @staticmethod
    def _box(scene, at: QPointF, label: str, sub: str, fill: QColor, color: QColor, pen: QPen, tip: str) -> None:
        rect = scene.addRect(QRectF(at.x(), at.y(), BOX_W, BOX_H), pen, QBrush(fill))
        rect.setZValue(2)
        rect.setToolTip(tip)
        for text, dy, bold in ((label, 0, True), (sub, 16, False)):
            item = scene.addSimpleText(text)
            font = QFont("DejaVu Sans Mono", 9)
            font.setBold(bold)
            item.setFont(font)
            item.setBrush(color)
            w = item.boundingRect().width()
            item.setPos(at.x() + max((BOX_W - w) / 2, 2), at.y() + 2 + dy)
            item.setZValue(3)
            item.setToolTip(tip)
