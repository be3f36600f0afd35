"""Layered left-to-right layout of a tape, Qt-free so it can run on the worker thread and in benchmarks.

Columns are longest-path depths (the tape's list order is already topological, so one pass over it suffices; no
recursion, so a 64-step RNN is no harder than a 2-step one), with one more rule: every expanded group gets a
contiguous range of columns of its own, started past everything placed before it, so the boxes drawn behind groups
never overlap each other or hold a node of another group. Leaves (parameters, inputs) belong to the group of their
first consumer and sit one column before it instead of all in column 0, otherwise every weight of block 5 would
draw an edge across the whole picture. Rows come from barycenter sweeps (each node moves towards the mean height of its neighbours) and a
vectorised spacing pass that keeps chains straight while keeping nodes a row apart.

Collapsed module groups are contracted to one unit before layout, so a collapsed 1,000-node model lays out as the
residual stream with a box per attention/MLP rather than as a huge sparse grid."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NODE_W, NODE_H = 150.0, 40.0      # every unit is drawn in a box this size (scene units)
COL_STEP, ROW_STEP = 215.0, 62.0  # distance between column centres / minimum distance between rows
COLLAPSE_OVER = 100               # graphs with more nodes open with every group collapsed (a 3-layer GPT does)
MIN_BOXED = 3                     # groups with fewer nodes get no box (nothing worth collapsing)
SWEEPS = 3                        # barycenter down-and-up passes; more barely changes crossings on tapes
READABLE = 0.7                    # the smallest zoom a freshly built graph opens at (node text stays legible)
FIT_MIN = 0.45                    # Fit zooms out no further: node titles are still just legible
FOLD_MAX_UNITS = 40               # only graphs this small fold into bands (a model tape is a strip to scroll)
BAND_GAP = 70.0                   # vertical room between folded bands (group titles sit above their boxes)


def group_key(path: str) -> str:
    """The collapsible unit a node belongs to: the first two levels of its group path ("block 1 / attention"
    for "block 1 / attention / q projection"), "" when the node is in no group."""
    return " / ".join(path.split(" / ")[:2]) if path else ""


@dataclass(frozen=True)
class GraphSpec:
    """The structure of a tape as plain data, copied so the layout thread never touches live nodes."""
    inputs: tuple[tuple[int, ...], ...]   # producer ids per node
    leaf: tuple[bool, ...]                # parameter or input node
    groups: tuple[str, ...]               # group_key per node; a leaf takes its first consumer's

    @classmethod
    def from_nodes(cls, nodes) -> GraphSpec:
        """A leaf is drawn in its first consumer's group: "ln_1 γ" recorded in "block 1" goes into the attention
        box that uses it, the RoPE tables and h₀ into the boxes that read them, so no box has to stretch back
        to a leaf drawn beside another group's box."""
        groups = [group_key(n.group) for n in nodes]
        moved = [False] * len(nodes)
        for n in nodes:
            for i in n.inputs:
                if nodes[i].kind != "op" and not moved[i]:
                    groups[i], moved[i] = groups[n.id], True
        return cls(tuple(tuple(n.inputs) for n in nodes), tuple(n.kind != "op" for n in nodes), tuple(groups))

    def boxed_groups(self) -> list[str]:
        """Groups that get a box and can collapse: every named key except a parent whose sub-groups are boxed
        themselves ("block 1" holding only the residual adds next to "block 1 / attention"), so boxes never nest,
        and except tiny groups (the lecture's one-quantity groups), whose boxes would only overlap their
        neighbours'."""
        sizes: dict[str, int] = {}
        for g in self.groups:
            if g:
                sizes[g] = sizes.get(g, 0) + 1
        parents = {k.split(" / ")[0] for k in sizes if " / " in k}
        return [k for k, n in sizes.items() if k not in parents and n >= MIN_BOXED]


@dataclass
class Layout:
    """Where each visible unit goes. A unit is one node, or one collapsed group standing for all its members."""
    unit_of: np.ndarray               # (N,) unit index of every node
    unit_node: list[int]              # per unit: its node id, or -1 for a collapsed group
    unit_group: list[str]             # per unit: the collapsed group's key, "" for a single node
    pos: np.ndarray                   # (U, 2) unit centres in scene coordinates
    edges: np.ndarray                 # (E, 2) distinct unit-level edges (src, dst), no self-loops
    n_columns: int

    def group_rect(self, members: np.ndarray, pad: float = 14.0) -> tuple[float, float, float, float]:
        """x, y, w, h around the given nodes' units (for the box drawn behind an expanded group)."""
        p = self.pos[self.unit_of[members]]
        x0, y0 = p.min(axis=0) - (NODE_W / 2 + pad, NODE_H / 2 + pad + 16)  # room for the group's title above
        x1, y1 = p.max(axis=0) + (NODE_W / 2 + pad, NODE_H / 2 + pad)
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def _units(spec: GraphSpec, collapsed: set[str]) -> tuple[np.ndarray, list[int], list[str]]:
    """Contract each collapsed group to one unit; units are numbered in order of their first member, which keeps
    the numbering a topological order whenever groups are contiguous stretches of the tape (they are)."""
    unit_of = np.empty(len(spec.groups), dtype=np.int64)
    unit_node: list[int] = []
    unit_group: list[str] = []
    group_unit: dict[str, int] = {}
    for i, g in enumerate(spec.groups):
        if g in collapsed:
            if g not in group_unit:
                group_unit[g] = len(unit_node)
                unit_node.append(-1)
                unit_group.append(g)
            unit_of[i] = group_unit[g]
        else:
            unit_of[i] = len(unit_node)
            unit_node.append(i)
            unit_group.append("")
    return unit_of, unit_node, unit_group


def _columns(n_units: int, edges: np.ndarray, leaf: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Longest-path depth over forward edges, where a change of box (`box`: expanded group index per unit, -1
    for none) starts a new segment of columns past every column used so far; then leaves pulled right to just
    before their first consumer, but never out of their segment. Leaves are visited just before their first
    consumer (moving a leaf later keeps the order topological), so a leaf recorded early joins its box's
    segment rather than splitting another group's."""
    col = np.zeros(n_units, dtype=np.int64)
    fwd = edges[edges[:, 0] < edges[:, 1]]          # an edge against unit order would only come from a cycle
    fwd = fwd[np.argsort(fwd[:, 1], kind="stable")]
    starts = np.searchsorted(fwd[:, 1], np.arange(n_units + 1))
    src = fwd[:, 0]
    none = np.iinfo(np.int64).max
    first_consumer = np.full(n_units, none)
    np.minimum.at(first_consumer, fwd[:, 0], fwd[:, 1])
    visit = np.where(leaf & (first_consumer != none), first_consumer - 0.5, np.arange(n_units))
    seg = np.zeros(n_units, dtype=np.int64)
    floor, frontier, open_box, n_seg = 0, -1, -1, 0
    for u in np.argsort(visit, kind="stable"):      # topological: producers are final already
        if box[u] != open_box:                      # entering or leaving a box: a fresh range of columns
            floor, open_box, n_seg = frontier + 1, box[u], n_seg + 1
        a, b = starts[u], starts[u + 1]
        col[u] = max(floor, col[src[a:b]].max() + 1) if a < b else floor
        seg[u] = n_seg
        frontier = max(frontier, col[u])
    seg_end = np.zeros(n_seg + 1, dtype=np.int64)
    np.maximum.at(seg_end, seg, col)
    first_use = np.full(n_units, none)
    np.minimum.at(first_use, fwd[:, 0], col[fwd[:, 1]])
    pull = leaf & (first_use != none)
    col[pull] = np.maximum(col[pull], np.minimum(first_use[pull] - 1, seg_end[seg[pull]]))
    return col


def _place(col: np.ndarray, order: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Row heights per unit: start in tape order, then barycenter sweeps right and left, one column at a time
    (each column sees its neighbours' fresh heights), each followed by the spacing pass."""
    n_cols = int(col.max()) + 1 if len(col) else 0
    members = [np.flatnonzero(col == c) for c in range(n_cols)]
    y = np.zeros(len(col))
    for m in members:
        m = m[np.argsort(order[m], kind="stable")]
        y[m] = (np.arange(len(m)) - (len(m) - 1) / 2) * ROW_STEP
    local = np.empty(len(col), dtype=np.int64)
    for m in members:
        local[m] = np.arange(len(m))
    # for each unit, edges to units in other columns, as (this, other)
    both = np.concatenate([edges, edges[:, ::-1]])
    both = both[col[both[:, 0]] != col[both[:, 1]]]
    by_col = [both[col[both[:, 0]] == c] for c in range(n_cols)]
    sweep_cols = list(range(1, n_cols)) + list(range(n_cols - 2, -1, -1))
    for _ in range(SWEEPS):
        for c in sweep_cols:
            m, e = members[c], by_col[c]
            if len(m) < 2 or not len(e):
                continue
            total = np.bincount(local[e[:, 0]], weights=y[e[:, 1]], minlength=len(m))
            count = np.bincount(local[e[:, 0]], minlength=len(m))
            want = np.where(count > 0, total / np.maximum(count, 1), y[m])
            rank = np.argsort(want, kind="stable")
            y[m[rank]] = _spread(want[rank])
    return y


def _spread(want: np.ndarray) -> np.ndarray:
    """Sorted desired heights -> heights at least ROW_STEP apart, as close to the wishes as one sweep allows,
    recentred on the wishes' mean so columns do not drift downwards."""
    steps = np.arange(len(want)) * ROW_STEP
    got = np.maximum.accumulate(want - steps) + steps
    return got - (got.mean() - want.mean())


def _fold_width(n_cols: int, view_width: float | None) -> int | None:
    """Columns per band when a graph of n_cols columns is too wide for a view `view_width` pixels wide even at
    FIT_MIN zoom: as many as fit at READABLE zoom, spread evenly over the bands (6 columns into 3 + 3, not
    5 + 1). None when it fits as it is."""
    width = (n_cols - 1) * COL_STEP + NODE_W + 60.0      # the scene's margin around the nodes
    if not view_width or view_width / width >= FIT_MIN:
        return None
    fit = max(2, int((view_width / READABLE - NODE_W - 60.0) // COL_STEP) + 1)
    bands = -(-n_cols // fit)
    return -(-n_cols // bands)


def _fold(col: np.ndarray, y: np.ndarray, box: np.ndarray, max_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Wrap a wide, small layout into bands of at most `max_columns` columns stacked top to bottom, the way a
    line of text wraps, so the lecture example is whole and legible in a narrow view. A band may only end
    between columns that no expanded box spans (a box split over two bands would be drawn across both); if no
    such break exists within `max_columns`, the layout is returned unchanged."""
    n_cols = int(col.max()) + 1
    span = np.zeros(n_cols + 1, dtype=bool)       # span[c]: some box has columns both before and from c
    for b in np.unique(box[box >= 0]):
        c = col[box == b]
        span[c.min() + 1:c.max() + 1] = True
    starts, at = [0], 0
    while n_cols - at > max_columns:
        cut = next((c for c in range(at + max_columns, at, -1) if not span[c]), None)
        if cut is None:
            return col, y
        starts.append(cut)
        at = cut
    band = np.searchsorted(np.array(starts), col, side="right") - 1
    new_col = col - np.array(starts)[band]
    new_y = y.copy()
    top = 0.0
    for b in range(len(starts)):
        m = band == b
        new_y[m] += top - y[m].min()
        top = new_y[m].max() + ROW_STEP + BAND_GAP
    return new_col, new_y


def layout(spec: GraphSpec, collapsed: set[str] | frozenset[str] = frozenset(),
           view_width: float | None = None) -> Layout:
    """Lay out the tape with the given groups collapsed. With `view_width` (pixels), a graph of at most
    FOLD_MAX_UNITS units too wide to read whole in that view is folded into bands (see _fold); n_columns then
    counts a band's columns."""
    unit_of, unit_node, unit_group = _units(spec, set(collapsed))
    n_units = len(unit_node)
    src = np.fromiter((i for ins in spec.inputs for i in ins), dtype=np.int64)
    dst = np.repeat(np.arange(len(spec.inputs)), [len(ins) for ins in spec.inputs])
    edges = np.stack([unit_of[src], unit_of[dst]], axis=1) if len(src) else np.zeros((0, 2), dtype=np.int64)
    edges = np.unique(edges[edges[:, 0] != edges[:, 1]], axis=0)
    leaf = np.array([spec.leaf[n] if n >= 0 else False for n in unit_node], dtype=bool)
    boxed = {k: b for b, k in enumerate(spec.boxed_groups()) if k not in collapsed}
    box = np.array([boxed.get(spec.groups[n], -1) if n >= 0 else -1 for n in unit_node], dtype=np.int64)
    col = _columns(n_units, edges, leaf, box)
    y = _place(col, np.arange(n_units), edges)
    fold = _fold_width(int(col.max()) + 1, view_width) if 0 < n_units <= FOLD_MAX_UNITS else None
    if fold:
        col, y = _fold(col, y, box, fold)
    pos = np.stack([col * COL_STEP, y], axis=1).astype(np.float64)
    return Layout(unit_of, unit_node, unit_group, pos, edges, int(col.max()) + 1 if n_units else 0)


def default_collapsed(spec: GraphSpec, limit: int = COLLAPSE_OVER) -> set[str]:
    """Large graphs open with every box collapsed so the first picture is the model's outline."""
    return set(spec.boxed_groups()) if len(spec.inputs) > limit else set()
