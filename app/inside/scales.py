"""Colour scales for the Inside tab, as numpy RGB (no Qt): a diverging blue–white–red scale for activations and a
white-to-blue one for probabilities and attention weights. Kept light enough at both ends that black text stays
readable on every colour."""
from __future__ import annotations

import numpy as np

NEGATIVE = np.array([33, 102, 172], dtype=float)    # blue at the low end
MIDDLE = np.array([247, 247, 247], dtype=float)
POSITIVE = np.array([214, 47, 39], dtype=float)     # red at the high end
SEQ_LOW = np.array([255, 255, 255], dtype=float)
SEQ_HIGH = np.array([8, 69, 148], dtype=float)
MAX_SATURATION = 0.65   # diverging ends stop short of the full colour, so black text reads on them

SIGMOID_SITES = ("i", "f", "o", "r", "z")   # gates in (0, 1): centred at 0.5, not 0


def site_scale(site: str, values: np.ndarray) -> tuple[float, float]:
    """(centre, half-width) of the diverging scale for one unit's values: gates are σ outputs in (0, 1), so they
    are centred at 0.5 with half-width 0.5; everything else is centred at 0 and reaches the largest |value| (at
    least 1e-6, so a unit that stays at 0 is all white rather than a division by zero)."""
    if site.rsplit(" ", 1)[-1] in SIGMOID_SITES:
        return 0.5, 0.5
    return 0.0, max(float(np.abs(values).max()) if values.size else 0.0, 1e-6)


def diverging(values: np.ndarray, centre: float, half: float) -> np.ndarray:
    """RGB (N, 3) uint8: centre -> near-white, centre ± half -> blue / red (clipped beyond)."""
    s = np.clip((np.asarray(values, dtype=float) - centre) / half, -1.0, 1.0)[:, None] * MAX_SATURATION
    rgb = np.where(s < 0, MIDDLE + (NEGATIVE - MIDDLE) * -s, MIDDLE + (POSITIVE - MIDDLE) * s)
    return rgb.round().astype(np.uint8)


_SEQ_LUT = (SEQ_LOW + (SEQ_HIGH - SEQ_LOW) * np.linspace(0.0, 1.0, 256)[:, None]).round().astype(np.uint8)


def sequential(values: np.ndarray, vmax: float = 1.0) -> np.ndarray:
    """RGB (..., 3) uint8 from white (0) to dark blue (vmax and above), in 256 steps (a table lookup: the
    attention maps of a 256-token text are a million weights)."""
    s = np.clip(np.asarray(values, dtype=np.float32) * np.float32(255.0 / vmax), 0.0, 255.0)
    return _SEQ_LUT[(s + 0.5).astype(np.uint8)]


def text_color_on(rgb) -> str:
    """Black or white text, whichever reads on the background `rgb` (perceived luminance)."""
    r, g, b = (int(v) for v in rgb)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"
