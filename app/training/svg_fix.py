"""Qt's SVG generator writes a curve in its data coordinates under the view's `transform="matrix(...)"`, with
`vector-effect="non-scaling-stroke"` to keep the pen thin. Renderers that ignore vector-effect (librsvg,
ImageMagick, some editors) then scale the pen with the data: a loss curve whose y axis maps 1 nat to 117 pixels is
drawn 117 pixels thick, a solid block. `bake_transforms` moves such a group's transform into its paths' points, so
every renderer draws the same thin line."""
from __future__ import annotations

import re

_GROUP = re.compile(r'(<g\b[^>]*?)\stransform="matrix\(([^)]*)\)"([^>]*>)(.*?)(</g>)', re.S)
_ELEMENT = re.compile(r"<(path|polyline|polygon|rect)\b([^>]*)/?>(?:\s*</\1>)?", re.S)
_TOKEN = re.compile(r"[A-Za-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def bake_transforms(svg: str) -> str:
    """The SVG text with each transformed group of non-scaling-stroke shapes (path with absolute M/L/C/Z,
    polyline, polygon, axis-aligned rect: what Qt writes) rewritten in page coordinates. A group holding anything
    else is left as it was."""
    return _GROUP.sub(_bake_group, svg)


class _Unsupported(Exception):
    pass


def _bake_group(m: re.Match) -> str:
    head, matrix, rest, body, end = m.groups()
    if 'vector-effect="non-scaling-stroke"' not in body:
        return m.group(0)
    try:
        a, b, c, d, e, f = (float(v) for v in matrix.split(","))
    except ValueError:
        return m.group(0)
    if (a, b, c, d, e, f) == (1, 0, 0, 1, 0, 0):
        return m.group(0)

    def point(x: float, y: float) -> str:
        return f"{a * x + c * y + e:.3f},{b * x + d * y + f:.3f}"

    def numbers(text: str, letters: str) -> str:
        out, nums = [], []
        for tok in _TOKEN.findall(text):
            if tok.isalpha():
                if tok not in letters or nums:
                    raise _Unsupported(tok)
                out.append(tok)
            else:
                nums.append(float(tok))
                if len(nums) == 2:
                    out.append(point(*nums))
                    nums = []
        if nums:
            raise _Unsupported("odd coordinate count")
        return " ".join(out)

    def element(em: re.Match) -> str:
        kind, attrs = em.group(1), em.group(2).rstrip("/")
        if kind == "path":
            attrs = re.sub(r'\sd="([^"]*)"', lambda q: f' d="{numbers(q.group(1), "MLCZ")}"', attrs)
        elif kind in ("polyline", "polygon"):
            attrs = re.sub(r'\spoints="([^"]*)"', lambda q: f' points="{numbers(q.group(1), "")}"', attrs)
        else:   # rect: only under a transform without rotation or shear
            if b or c:
                raise _Unsupported("rotated rect")
            v = {k: float(re.search(rf'\s{k}="([^"]*)"', attrs).group(1)) for k in ("x", "y", "width", "height")}
            x0, x1 = sorted((a * v["x"] + e, a * (v["x"] + v["width"]) + e))
            y0, y1 = sorted((d * v["y"] + f, d * (v["y"] + v["height"]) + f))
            for k, val in (("x", x0), ("y", y0), ("width", x1 - x0), ("height", y1 - y0)):
                attrs = re.sub(rf'\s{k}="[^"]*"', f' {k}="{val:.3f}"', attrs)
        return f"<{kind}{attrs}/>"

    leftover = _ELEMENT.sub("", body)
    if re.search(r"<[a-zA-Z]", leftover):   # text, images or nested groups: keep the transform
        return m.group(0)
    try:
        new_body = _ELEMENT.sub(element, body)
    except (_Unsupported, AttributeError, ValueError):
        return m.group(0)
    return f'{head} transform="matrix(1,0,0,1,0,0)"{rest}{new_body}{end}'
