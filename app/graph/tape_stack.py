"""The tape as the seed lecture draws it: a stack. Each forward step is a module's apply_fwd, which computes its
out_tensor and pushes the module; each backward step is tape_bwd popping the top module and calling its apply_bwd,
which adds in_gradients into its inputs' out_gradient (Version B: a value read by several modules collects one
increment from each). The list shows the stack top first; the sentence under it says what the last step did, in
those words.

A list model that grows and shrinks by one row per step, so a 4,000-node RNN tape costs no more per step than
the lecture's six modules."""
from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QListView, QVBoxLayout, QWidget

TOP = QColor("#fff3c4")


def module_title(node) -> str:
    return node.label if node.label.startswith(node.op) else f"{node.op} ({node.label})"


def stack_depth(stepper) -> int:
    """Modules on the tape: pushed by the forward steps done, minus those popped by backward steps."""
    p = stepper.position
    return p if p <= stepper.n_forward else stepper.n_steps - p


def lecture_sentence(stepper, consumers: list[list[int]], titles: dict[int, str] | None = None) -> str:
    """The last step in the lecture's words (module, apply_fwd, tape.push, tape_bwd, tape.pop, apply_bwd,
    out_gradient, in_gradients), naming every input whose out_gradient it added into and, for a value read by
    several modules, how many of their increments it now holds. `titles` gives the lecture's value names
    ("z = Sigmoid"): z.out_gradient rather than Sigmoid.out_gradient."""
    nodes = stepper.nodes
    titles = titles or {}
    depth = stack_depth(stepper)
    if not stepper.history:
        return ("The tape is an empty stack. Each forward step is a module's apply_fwd: it computes out_tensor = "
                "forward(in_tensors) and pushes the module (tape.push).")
    info = stepper.history[-1]
    node = nodes[info.node_id]
    title = module_title(node)
    ins = [nodes[i] for i in dict.fromkeys(node.inputs)]
    name = {n.id: titles[n.id].split(" = ")[0] if n.id in titles else n.label for n in ins}
    if info.phase == "forward":
        made = f" (the lecture's {titles[node.id].split(' = ')[0]})" if node.id in titles else ""
        return (f"{title}.apply_fwd: out_tensor{made} = forward(in_tensors) with in_tensors = "
                f"[{', '.join(name[n.id] for n in ins)}]; tape.push({title}). The stack holds {depth} "
                f"module{'s' if depth != 1 else ''}.")
    done = set(stepper.ops[depth:])                      # the modules popped so far, this one included
    parts = []
    for k, src in enumerate(ins):
        if src.id not in info.grads:
            parts.append(f"{name[src.id]} is data (no out_gradient)")
            continue
        readers = [c for c in consumers[src.id] if c in stepper.ops]
        got = sum(c in done for c in readers)
        acc = (f" — increment {got} of {len(readers)}: {name[src.id]} is read by {len(readers)} modules, so its "
               f"out_gradient accumulates (Version B)" if len(readers) > 1 else "")
        parts.append(f"{name[src.id]}.out_gradient += in_gradients[{node.inputs.index(src.id)}]{acc}")
    seed = "out_gradient = 1 (dJ/dJ, the base case); " if stepper.position == stepper.n_forward + 1 else ""
    adds = "; ".join(parts) if parts else "nothing to add into"
    return (f"tape_bwd: tape.pop() → {title}; {seed}{title}.apply_bwd: in_gradients = backward(in_tensors, "
            f"out_tensor, out_gradient); {adds}. {depth} module{'s' if depth != 1 else ''} left on the stack.")


class StackModel(QAbstractListModel):
    """Rows = the modules on the tape, top of the stack first."""

    def __init__(self):
        super().__init__()
        self.ops: list[int] = []
        self.titles: list[str] = []
        self.depth = 0

    def set_program(self, stepper) -> None:
        self.beginResetModel()
        self.ops = list(stepper.ops) if stepper is not None else []
        self.titles = [f"{k + 1}. {module_title(stepper.nodes[i])}" for k, i in enumerate(self.ops)]
        self.depth = stack_depth(stepper) if stepper is not None else 0
        self.endResetModel()

    def set_depth(self, depth: int) -> None:
        """One push or pop (rows inserted or removed at the top), or a reset for a jump."""
        if depth == self.depth + 1:
            self.beginInsertRows(QModelIndex(), 0, 0)
            self.depth = depth
            self.endInsertRows()
        elif depth == self.depth - 1:
            self.beginRemoveRows(QModelIndex(), 0, 0)
            self.depth = depth
            self.endRemoveRows()
        elif depth != self.depth:
            self.beginResetModel()
            self.depth = depth
            self.endResetModel()
        if self.depth:
            top = self.index(0)
            self.dataChanged.emit(top, self.index(min(1, self.depth - 1)))

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.depth

    def node_at(self, row: int) -> int:
        return self.ops[self.depth - 1 - row]

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        k = self.depth - 1 - index.row()
        if role == Qt.DisplayRole:
            return self.titles[k] + ("   ← top" if index.row() == 0 else "")
        if role == Qt.BackgroundRole and index.row() == 0:
            return QBrush(TOP)
        if role == Qt.ToolTipRole:
            return "pushed by forward step {}; popped by backward step {}".format(k + 1, len(self.ops) - k)
        return None


class TapeStack(QWidget):
    """The stack list and the lecture-words sentence; the panel calls `set_program` after a build and `update`
    after every step or jump."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = StackModel()
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setUniformItemSizes(True)
        self.list.setToolTip("The tape (global tape = stack() in the lecture): modules pushed by apply_fwd, popped "
                             "by tape_bwd. Top of the stack first; click one to inspect it")
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold")
        self.sentence = QLabel()
        self.sentence.setWordWrap(True)
        self.sentence.setStyleSheet("color: #37474f")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.sentence)
        self.stepper = None
        self.consumers: list[list[int]] = []
        self.titles: dict[int, str] = {}

    def set_program(self, stepper, titles: dict[int, str] | None = None) -> None:
        self.stepper, self.titles = stepper, titles or {}
        self.consumers = stepper.tape.consumers() if stepper is not None else []
        self.model.set_program(stepper)
        self.update_state()

    def update_state(self) -> None:
        s = self.stepper
        if s is None:
            self.title.setText("Tape (a stack)")
            self.sentence.setText("")
            return
        self.model.set_depth(stack_depth(s))
        self.title.setText(f"Tape (a stack): {self.model.depth} of {s.n_forward} modules")
        self.sentence.setText(lecture_sentence(s, self.consumers, self.titles))
