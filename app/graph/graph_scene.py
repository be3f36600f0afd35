"""The tape drawn as a QGraphicsScene: one item per visible unit (a node, or a collapsed group's box), one item
per edge, and a translucent box behind each expanded group. Items keep their own drawing state, and the scene
keeps node id -> item maps, so a step repaints only the handful of items whose state it changed."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsRectItem, QGraphicsScene, QGraphicsSimpleTextItem, QGraphicsView,
                               QStyleOptionGraphicsItem, QWidget)

from app.graph.graph_layout import FIT_MIN, NODE_H, NODE_W, READABLE, GraphSpec, Layout
from app.graph.rule_text import readable

# node fill by state: not yet computed, value computed, some gradient arrived, gradient complete
PENDING, COMPUTED, GRAD_PARTIAL, GRAD_DONE = range(4)
FILL = {PENDING: QColor("#eceff1"), COMPUTED: QColor("#bbdefb"), GRAD_PARTIAL: QColor("#ffe0b2"),
        GRAD_DONE: QColor("#c8e6c9")}
STATE_NAMES = {PENDING: "not computed", COMPUTED: "value computed", GRAD_PARTIAL: "gradient arriving",
               GRAD_DONE: "gradient complete"}
BORDER = {"op": QColor("#455a64"), "param": QColor("#6a1b9a"), "input": QColor("#00796b"), "group": QColor("#37474f")}
CURRENT = QColor("#d50000")
SELECTED = QColor("#212121")     # the halo around the node shown in the inspector
# edge modes: idle, carried this step's forward inputs, carried this step's gradient increments
IDLE, FORWARD, GRADIENT = range(3)
EDGE_PEN = {IDLE: QPen(QColor("#90a4ae"), 1.2), FORWARD: QPen(QColor("#1565c0"), 3.0),
            GRADIENT: QPen(QColor("#ef6c00"), 3.0, Qt.DashLine)}
GROUP_FILL = QColor(120, 144, 156, 28)
MINIMAP_REFRESH_MS = 300  # the overview's picture is re-rendered at most this often while nodes change
LOD_TEXT = 0.35       # below this zoom (the overview, a fitted big graph) nodes are drawn without text


def _shape(rect: QRectF, kind: str) -> QPainterPath:
    """Ops are rounded boxes, parameters pills, inputs parallelograms, collapsed groups square boxes."""
    path = QPainterPath()
    if kind == "param":
        path.addRoundedRect(rect, rect.height() / 2, rect.height() / 2)
    elif kind == "input":
        s = 10.0
        path.addPolygon(QPolygonF([rect.topLeft() + QPointF(s, 0), rect.topRight(),
                                   rect.bottomRight() - QPointF(s, 0), rect.bottomLeft(), rect.topLeft() + QPointF(s, 0)]))
    elif kind == "group":
        path.addRect(rect)
    else:
        path.addRoundedRect(rect, 7, 7)
    return path


class UnitItem(QGraphicsItem):
    """A node, or a collapsed group (kind "group") whose fill shows its members' state and whose bottom bar shows
    how far the forward (blue) or backward (green) pass has got through it."""

    fonts = None

    def __init__(self, unit: int, kind: str, title: str, subtitle: str, tooltip: str):
        super().__init__()
        self.unit, self.kind = unit, kind
        self.rect = QRectF(-NODE_W / 2, -NODE_H / 2, NODE_W, NODE_H)
        self.path = _shape(self.rect, kind)
        if UnitItem.fonts is None:    # shared: made once, after the QApplication exists
            bold, small = QFont(), QFont()
            bold.setPointSizeF(9.0)
            bold.setBold(True)
            small.setPointSizeF(8.0)
            UnitItem.fonts = (bold, small, QFontMetricsF(bold), QFontMetricsF(small))
        self.font_bold, self.font_small, bold_metrics, small_metrics = UnitItem.fonts
        inner = NODE_W - 22
        self.title = bold_metrics.elidedText(title, Qt.ElideRight, inner)
        self.subtitle = small_metrics.elidedText(subtitle, Qt.ElideMiddle, inner)
        self.state, self.current, self.progress = PENDING, False, (0.0, 0.0)
        self.inspected = False
        self.setToolTip(tooltip)
        self.setZValue(2)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-9, -9, 9, 9)    # room for the inspected halo

    def set_inspected(self, inspected: bool) -> None:
        if inspected != self.inspected:
            self.inspected = inspected
            self.update()

    def set_state(self, state: int, current: bool, progress: tuple[float, float] = (0.0, 0.0)) -> bool:
        if (state, current, progress) == (self.state, self.current, self.progress):
            return False
        self.state, self.current, self.progress = state, current, progress
        self.update()
        return True

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.Antialiasing, lod >= LOD_TEXT)
        pen = QPen(CURRENT, 3.5) if self.current else QPen(BORDER[self.kind], 2.2 if self.kind == "group" else 1.3)
        if self.inspected:     # a dark halo outside the border, so it shows next to the red current-step border
            painter.setPen(QPen(SELECTED, 3.0, Qt.DashLine))
            painter.setBrush(Qt.NoBrush)
            painter.drawRoundedRect(self.rect.adjusted(-6, -6, 6, 6), 10, 10)
        painter.setPen(pen)
        painter.setBrush(FILL[self.state])
        painter.drawPath(self.path)
        if self.kind == "group":
            fwd, bwd = self.progress
            bar = QRectF(self.rect.left() + 3, self.rect.bottom() - 6, (NODE_W - 6) * fwd, 3)
            painter.fillRect(bar, QColor("#1e88e5"))
            painter.fillRect(bar.adjusted(0, 0, (NODE_W - 6) * (bwd - fwd), 0), QColor("#43a047"))
        if lod < LOD_TEXT:
            return
        painter.setPen(QColor("#212121"))
        painter.setFont(self.font_bold)
        painter.drawText(self.rect.adjusted(6, 3, -6, -NODE_H / 2), Qt.AlignCenter, self.title)
        painter.setFont(self.font_small)
        painter.setPen(QColor("#455a64"))
        painter.drawText(self.rect.adjusted(6, NODE_H / 2 - 2, -6, -4), Qt.AlignCenter, self.subtitle)


class EdgeItem(QGraphicsItem):
    """A data-flow curve from a producer's right side to a consumer's left side. In GRADIENT mode the arrowhead
    sits at the producer's end: the increment flows back against the data."""

    def __init__(self, a: QPointF, b: QPointF):
        super().__init__()
        self.mode = IDLE
        start, end = a + QPointF(NODE_W / 2, 0), b - QPointF(NODE_W / 2, 0)
        self.ends = (start, end)      # the overview draws the edge as a straight line between them
        dx = max(40.0, (end.x() - start.x()) / 2)
        self.path = QPainterPath(start)
        self.path.cubicTo(start + QPointF(dx, 0), end - QPointF(dx, 0), end)
        self.heads = {IDLE: self._head(end, 1), FORWARD: self._head(end, 1), GRADIENT: self._head(start, -1)}
        self.bounds = self.path.boundingRect().adjusted(-12, -12, 12, 12)
        self.setZValue(1)
        # a long edge's bounding box covers much of the graph, so every small repaint nearby reaches its paint();
        # with the exposed rect in the style option it can skip the drawing when the curve is not in that rect
        self.setFlag(QGraphicsItem.ItemUsesExtendedStyleOption)

    @staticmethod
    def _head(tip: QPointF, direction: int) -> QPolygonF:
        d = 9.0 * direction
        return QPolygonF([tip, tip - QPointF(d, 4.5), tip - QPointF(d, -4.5)])

    def boundingRect(self) -> QRectF:
        return self.bounds

    def set_mode(self, mode: int) -> None:
        if mode != self.mode:
            self.mode = mode
            self.setZValue(3 if mode != IDLE else 1)   # a highlighted edge is drawn over idle ones and nodes
            self.update()

    def paint(self, painter: QPainter, option, widget=None) -> None:
        exposed = option.exposedRect
        if not self.path.intersects(exposed.adjusted(-6, -6, 6, 6)) and not exposed.contains(self.heads[self.mode][0]):
            return
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.Antialiasing, lod >= LOD_TEXT)
        pen = EDGE_PEN[self.mode]
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self.path)
        painter.setPen(Qt.NoPen)
        painter.setBrush(pen.color())
        painter.drawPolygon(self.heads[self.mode])


class GroupBox(QGraphicsRectItem):
    """The translucent box behind an expanded group; double-click collapses it."""

    def __init__(self, key: str, rect: tuple[float, float, float, float]):
        super().__init__(*rect)
        self.key = key
        self.setBrush(GROUP_FILL)
        self.setPen(QPen(QColor(96, 125, 139, 140), 1.0, Qt.DashLine))
        self.setZValue(0)
        title = QGraphicsSimpleTextItem(key, self)
        title.setBrush(QColor("#546e7a"))
        title.setPos(rect[0] + 6, rect[1] + 3)
        self.setToolTip(f"{key}: double-click to collapse")


class GraphScene(QGraphicsScene):
    """Builds items from a Layout and applies node states. Signals carry node ids / group keys, not items."""

    node_clicked = Signal(int)          # a node id (a collapsed group only reacts to double-clicks)
    group_toggled = Signal(str)         # double-click on a group box or a collapsed unit

    def __init__(self, parent=None):
        super().__init__(parent)
        self.units: list[UnitItem] = []
        self.inspected: UnitItem | None = None
        self.edge_items: dict[tuple[int, int], EdgeItem] = {}
        self.layout: Layout | None = None
        self._lit: list[EdgeItem] = []

    def build(self, nodes, spec: GraphSpec, layout: Layout, titles: dict[int, str] | None = None) -> None:
        """Replace every item. `nodes` gives labels, ops and shapes for text and tooltips; `titles` replaces the
        label on the nodes it names (the lecture's "a = Linear(α)")."""
        titles = titles or {}
        self.clear()
        self.layout, self.units, self.edge_items, self._lit, self.inspected = layout, [], {}, [], None
        self.members = [np.flatnonzero(layout.unit_of == u) for u in range(len(layout.unit_node))]
        for u, (node_id, key) in enumerate(zip(layout.unit_node, layout.unit_group)):
            if node_id >= 0:
                n = nodes[node_id]
                shape = "scalar" if not n.shape else "×".join(map(str, n.shape))
                sub = f"{n.op} · {shape}" if n.kind == "op" else f"{n.kind} · {shape}"
                tip = readable(f"{n.label}  [{n.op}, {shape}]\n{n.group}\nforward: {n.fwd_rule}\n"
                               f"backward: {n.bwd_rule}")
                item = UnitItem(u, n.kind, titles.get(node_id, n.label), sub, tip)
            else:
                k = len(self.members[u])
                item = UnitItem(u, "group", key.split(" / ")[-1], f"{key.split(' / ')[0]} · {k} nodes",
                                f"{key} ({k} nodes): double-click to expand")
            item.setPos(*layout.pos[u])
            self.addItem(item)
            self.units.append(item)
        for su, du in layout.edges:
            edge = EdgeItem(QPointF(*layout.pos[su]), QPointF(*layout.pos[du]))
            self.addItem(edge)
            self.edge_items[(int(su), int(du))] = edge
        collapsed = set(layout.unit_group)
        for key in spec.boxed_groups():
            if key not in collapsed:
                members = np.flatnonzero(np.array(spec.groups) == key)
                self.addItem(GroupBox(key, layout.group_rect(members)))
        self.setSceneRect(self.itemsBoundingRect().adjusted(-40, -40, 40, 40))

    def clear_graph(self) -> None:
        """No graph at all (a build failed)."""
        self.clear()
        self.layout, self.units, self.edge_items, self._lit, self.members = None, [], {}, [], []
        self.inspected = None
        self.setSceneRect(QRectF())

    def unit_item(self, node_id: int) -> UnitItem:
        return self.units[self.layout.unit_of[node_id]]

    def mark_inspected(self, node_id: int | None) -> None:
        """Put the halo on the unit showing `node_id` (its collapsed group if it is in one), off the previous."""
        if self.inspected is not None:
            self.inspected.set_inspected(False)
        self.inspected = None if node_id is None or self.layout is None else self.unit_item(node_id)
        if self.inspected is not None:
            self.inspected.set_inspected(True)

    def light_edges(self, pairs, mode: int) -> None:
        """Highlight the edges carrying this step's flow (node id pairs), returning the previous ones to idle."""
        for edge in self._lit:
            edge.set_mode(IDLE)
        unit_of = self.layout.unit_of
        self._lit = [e for e in (self.edge_items.get((int(unit_of[a]), int(unit_of[b]))) for a, b in pairs) if e]
        for edge in self._lit:
            edge.set_mode(mode)

    def mousePressEvent(self, event) -> None:
        item = self._unit_at(event.scenePos())
        if item is not None and item.kind != "group" and event.button() == Qt.LeftButton:
            self.node_clicked.emit(self.layout.unit_node[item.unit])
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        item = self._unit_at(event.scenePos())
        if item is not None and item.kind == "group":
            self.group_toggled.emit(self.layout.unit_group[item.unit])
            return
        for it in self.items(event.scenePos()):
            if isinstance(it, GroupBox):
                self.group_toggled.emit(it.key)
                return
        super().mouseDoubleClickEvent(event)

    def _unit_at(self, pos: QPointF) -> UnitItem | None:
        return next((it for it in self.items(pos) if isinstance(it, UnitItem)), None)


class GraphView(QGraphicsView):
    """The main view: wheel zooms about the cursor, dragging pans, and a minimap sits in the bottom-right corner
    once the graph no longer fits. `opening_resized` fires when the view is resized before the user has moved it
    (the owner may lay a small graph out again for the new width: see graph_layout._fold)."""

    opening_resized = Signal()

    def __init__(self, scene: GraphScene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHint(QPainter.Antialiasing)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.MinimalViewportUpdate)
        self.setBackgroundBrush(QColor("#fafafa"))
        self.minimap = Minimap(self)
        # True from start_view until the user or a step moves the view: a graph built while the tab was hidden
        # (the window opening on another tab) was fitted to a stand-in viewport, so a resize redoes the
        # opening view instead of leaving the lecture example cut off at the right until Fit
        self._opening = False

    def wheelEvent(self, event) -> None:
        self._opening = False
        factor = 1.0015 ** event.angleDelta().y()
        scale = self.transform().m11() * factor
        if 0.03 < scale < 4.0:
            self.scale(factor, factor)
            self.update_minimap()

    def fit(self, focus: QPointF | None = None) -> None:
        """The whole graph in view if that keeps it readable (and never magnified past 1:1, a five-node graph
        should not fill the screen); otherwise as much as fits at FIT_MIN zoom (the whole height, for all but
        very deep graphs), centred on `focus` (the current node) or on the graph's beginning, so a long tape
        becomes a strip to scroll rather than a line of specks."""
        self._opening = False
        rect = self.scene().sceneRect()
        if not rect.isEmpty():
            k = min(self.viewport().width() / rect.width(), self.viewport().height() / rect.height(), 1.0)
            self._zoom(max(k, FIT_MIN), focus)

    def start_view(self) -> None:
        """Fit the graph if it stays legible that way (down to FIT_MIN: the lecture example in a 1280-px window
        needs about 0.6, and cutting CrossEntropy off at READABLE hid the loss the example is about); otherwise
        show its beginning at a readable zoom (the minimap shows the whole, and stepping scrolls along)."""
        rect = self.scene().sceneRect()
        if rect.isEmpty():
            return
        k = min(self.viewport().width() / rect.width(), self.viewport().height() / rect.height(), 1.0)
        self._zoom(0.97 * k if k >= FIT_MIN else READABLE, None)   # 3% margin: no edge cut by rounding
        self._opening = True

    def _zoom(self, k: float, focus: QPointF | None) -> None:
        """Scale by k; centre on the whole graph if it fits, else on `focus`, else on the graph's left end."""
        rect = self.scene().sceneRect()
        self.resetTransform()
        self.scale(k, k)
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        if visible.width() >= rect.width() and visible.height() >= rect.height():
            self.centerOn(rect.center())
        elif focus is not None:
            self.centerOn(focus)
        else:
            self.centerOn(rect.left() + visible.width() / 2, rect.center().y() if visible.height() >= rect.height()
                          else 0.0)
        self.update_minimap(refit=True)

    def follow(self, item: QGraphicsItem) -> None:
        """Keep the current node in view: once it leaves the middle part, centre on it. One jump every few steps
        repaints far less than scrolling a little on every step."""
        inner = self.viewport().rect().adjusted(60, 40, -60, -40)
        if not inner.contains(self.mapFromScene(item.pos())):
            self._opening = False
            self.centerOn(item)

    def update_minimap(self, refit: bool = False) -> None:
        """Show the overview only while part of the graph is out of view; `refit` re-renders its picture (the
        scene or the widget changed size)."""
        if self.scene() is None:      # the panel is being torn down
            return
        rect = self.scene().sceneRect()
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        big = not rect.isEmpty() and not visible.contains(rect.adjusted(30, 30, -30, -30))
        self.minimap.setVisible(big)
        self.minimap.visible_rect = visible
        if big and (refit or self.minimap.picture.isNull()):
            self._place_minimap()
            self.minimap.render_scene()
        elif big:
            self.minimap.update()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.update_minimap()

    def mousePressEvent(self, event) -> None:
        self._opening = False      # a drag or a click: the user has taken the view over
        super().mousePressEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._opening:
            self.opening_resized.emit()
            self.start_view()
        else:
            self.update_minimap(refit=True)

    def _place_minimap(self) -> None:
        """Bottom-right corner, a quarter of the width, as tall as the graph's proportions need (a long thin
        tape gets a thin strip, not a box of white)."""
        rect = self.scene().sceneRect()
        w = max(160, self.width() // 4)
        h = int(min(max(36, w * rect.height() / max(rect.width(), 1.0) + 6), max(60, self.height() // 3)))
        self.minimap.setGeometry(self.width() - w - 22, self.height() - h - 22, w, h)


class Minimap(QWidget):
    """The whole scene in small, with the main view's visible area outlined; click or drag in it to move there.

    It draws a picture of the scene, re-rendered at most a few times a second after items change, rather than
    being a second live QGraphicsView: a live view repaints all ~2,500 items of a big tape each time the main
    view scrolls, which is what stepping with the view following the current node does."""

    def __init__(self, main: GraphView):
        super().__init__(main)
        self.main = main
        self.visible_rect = QRectF()
        self.picture = QPixmap()
        self.target = QRectF()        # where the scene rect lands in this widget
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(MINIMAP_REFRESH_MS)
        self.timer.timeout.connect(self.render_scene)
        main.scene().changed.connect(lambda _: self.isVisible() and not self.timer.isActive() and self.timer.start())
        self.setToolTip("Overview: click or drag to move the view")
        self.hide()

    def render_scene(self) -> None:
        scene = self.main.scene()
        rect = scene.sceneRect() if scene is not None else QRectF()
        if rect.isEmpty() or self.width() < 8 or self.height() < 8:   # no graph (a build failed) or no room
            self.picture, self.target = QPixmap(), QRectF()
            self.update()
            return
        k = min((self.width() - 4) / rect.width(), (self.height() - 4) / rect.height())
        w, h = rect.width() * k, rect.height() * k
        self.target = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
        self.picture = QPixmap(self.size())
        self.picture.fill(QColor(255, 255, 255, 235))
        painter = QPainter(self.picture)
        painter.translate(self.target.topLeft())
        painter.scale(k, k)
        painter.translate(-rect.topLeft())
        # Drawn from the items' geometry and state, not with scene.render(): rendering ~2,500 items this small
        # took ~40 ms, a visible hitch every refresh while stepping; boxes and straight lines take a few ms.
        for item in scene.items():
            if isinstance(item, GroupBox):
                painter.fillRect(item.rect(), GROUP_FILL)
        painter.setPen(QPen(EDGE_PEN[IDLE].color(), 0))      # cosmetic: one pixel wide at any scale
        for edge in scene.edge_items.values():
            painter.drawLine(*edge.ends)
        for unit in scene.units:
            painter.fillRect(unit.rect.translated(unit.pos()), FILL[unit.state])
        current = [u for u in scene.units if u.current]
        painter.setPen(QPen(CURRENT, 0))
        for unit in current:
            painter.drawRect(unit.rect.translated(unit.pos()).adjusted(-6, -6, 6, 6))
        painter.end()
        self.update()

    def _to_widget(self, r: QRectF) -> QRectF:
        src = self.main.scene().sceneRect()
        k = self.target.width() / src.width()
        return QRectF(self.target.left() + (r.left() - src.left()) * k, self.target.top() + (r.top() - src.top()) * k,
                      r.width() * k, r.height() * k)

    def _to_scene(self, p: QPointF) -> QPointF:
        src = self.main.scene().sceneRect()
        k = src.width() / self.target.width()
        return QPointF(src.left() + (p.x() - self.target.left()) * k, src.top() + (p.y() - self.target.top()) * k)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self.picture)
        painter.setPen(QPen(QColor("#78909c"), 1))
        painter.setBrush(Qt.NoBrush)
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        if not self.target.isEmpty():
            painter.setPen(QPen(CURRENT, 1.5))
            painter.setBrush(QColor(213, 0, 0, 30))
            painter.drawRect(self._to_widget(self.visible_rect).intersected(QRectF(self.rect())))
        painter.end()

    def mousePressEvent(self, event) -> None:
        if not self.target.isEmpty():
            self.main._opening = False
            self.main.centerOn(self._to_scene(event.position()))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.LeftButton and not self.target.isEmpty():
            self.main.centerOn(self._to_scene(event.position()))
