"""Shared plotting setup: a headless backend, one diverging colour scale, saving."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

# Reports are made on login and compute nodes without a display.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (must follow the backend choice)
import numpy as np  # noqa: E402

# Blue for effects that restore the clean behaviour, red for the opposite, as in
# TransformerLens plots; cells without a value are grey.
DIVERGING_CMAP = "RdBu"
POSITIVE_COLOUR = "#2166ac"
NEGATIVE_COLOUR = "#b2182b"
MISSING_COLOUR = "#d9d9d9"
DPI = 110


def diverging_cmap():
    cmap = matplotlib.colormaps[DIVERGING_CMAP].copy()
    cmap.set_bad(MISSING_COLOUR)
    return cmap


def symmetric_limit(values: np.ndarray) -> float:
    """Half-width of a colour scale centred at zero that covers every finite value (pass
    values minus the centre for a scale centred elsewhere)."""
    finite = np.abs(values[np.isfinite(values)])
    limit = float(finite.max()) if finite.size else 0.0
    return limit if limit > 0 else 1.0


@dataclass(frozen=True)
class ColourScale:
    """A diverging scale: colours run symmetrically from centre - limit to centre + limit, so
    equal distances from the centre get equal colours; the colour bar shows only low..high,
    the values the data reaches (and the centre), never a range no cell has."""

    centre: float
    limit: float
    low: float
    high: float


def colour_scale(values: np.ndarray, centre: float, min_limit: float = 0.0) -> ColourScale:
    """The scale for `values` centred at `centre`; `min_limit` widens the colours (not the
    bar) so that fixed points such as 0 and 1 of a normalized metric look alike everywhere."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    limit = max(symmetric_limit(values - centre), min_limit)
    if finite.size == 0 or finite.min() == finite.max() == centre:
        return ColourScale(centre, limit, centre - limit, centre + limit)
    return ColourScale(centre, limit, min(float(finite.min()), centre),
                       max(float(finite.max()), centre))


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path
