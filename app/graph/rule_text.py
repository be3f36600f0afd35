"""How the Graph tab writes rules and names: the engine's rule strings ("g_a = g_b ω", written once per op with
generic symbols) made safe for Qt labels and tied to the nodes of the step at hand.

- A combining accent (U+0302, the hat of LayerNorm's x̂) is laid out by Qt above the wrong glyph once a label
  wraps — over the "L" of "LayerNorm", with every x̂ left a plain x — so every place that shows a rule spells the
  hat out as a following ^ (x^).
- The rules' a, b, ω are the op's own names for its inputs and output; the lecture calls its values a and b too,
  so "Linear(β) backward: g_a = g_b ω" would read as the lecture's g_a where it means g_z. `symbol_key` says which
  node each symbol is, in the lecture's names on the lecture example.
- Vectors are rows, as in torch (b = a ωᵀ); on a 1-D example g_ω = g_bᵀ a is then an outer product (the
  lecture's g_b aᵀ with column vectors), not an inner product, and `convention` says so."""
from __future__ import annotations


def readable(rule: str) -> str:
    return rule.replace("\u0302", "^")


def lecture_titles(program) -> dict[int, str]:
    """Node id -> "a = Linear(α)" for each op of a lecture example (its groups are the lecture's names for the
    values: a, z, b, ŷ, J), so the lecture's names are on the nodes; empty for a model's tape (tokens given)."""
    if program.tokens:
        return {}
    return {n.id: f"{n.group} = {n.label}" for n in program.nodes
            if n.kind == "op" and n.group and " / " not in n.group and len(n.group) <= 2}


def node_name(nodes, node_id: int, titles: dict[int, str]) -> str:
    """The lecture's name for a value when it has one ("z"), else the node's label."""
    title = titles.get(node_id)
    return title.split(" = ")[0] if title else nodes[node_id].label


def symbol_key(node, nodes, titles: dict[int, str]) -> str:
    """"in this rule: a = z, ω = β, b = this node (b)" for an op node; "" when the op has no fixed symbols."""
    symbols = node.module.rule_symbols() if node.kind == "op" and node.module is not None else None
    if symbols is None:
        return ""
    ins = [f"{sym} = {node_name(nodes, i, titles)}" for sym, i in zip(symbols[0], node.inputs)]
    own = titles.get(node.id)
    this = f"this node ({own.split(' = ')[0]})" if own else "this node"
    return f"in this rule {', '.join(ins)}, {symbols[1]} = {this}"


def convention(node, nodes) -> str:
    """The row-vector note for a Linear whose input is a single vector (where a transpose reads ambiguously)."""
    if node.op == "Linear" and node.inputs and len(nodes[node.inputs[0]].shape) == 1:
        return ("vectors are rows, as in torch (b = a ωᵀ): g_ω = g_bᵀ a is an outer product (m×1 · 1×n), the "
                "lecture's g_b aᵀ for column vectors")
    return ""
