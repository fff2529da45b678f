"""Bar chart of an experiment's strongest cells, with the spread over prompt pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import figures
from .figures import plt
from .labels import experiment_title
from .loader import Experiment
from .ranking import RankedCell, no_effect_value, ranking_summary


def plot_top_cells(exp: Experiment, cells: list[RankedCell], per_pair: np.ndarray | None,
                   path: Path) -> Path:
    """Horizontal bars from the no-effect value to each mean, strongest on top; with per-pair
    values, ±1 std error bars and one dot per pair so that a mean carried by a single pair is
    visible."""
    height = 1.2 + 0.38 * max(len(cells), 1)
    fig, ax = plt.subplots(figsize=(7.5, height), layout="constrained")
    y = np.arange(len(cells))
    means = np.array([c.mean for c in cells])
    centre = no_effect_value(exp)
    colours = [figures.POSITIVE_COLOUR if m >= centre else figures.NEGATIVE_COLOUR for m in means]
    errors = None
    if per_pair is not None:
        errors = np.nan_to_num(np.array([c.pair_std for c in cells]))
    ax.barh(y, means - centre, left=centre, color=colours, alpha=0.85, xerr=errors, capsize=3,
            error_kw={"ecolor": "#333333", "elinewidth": 1})
    if per_pair is not None and cells:
        pairs = per_pair.reshape(per_pair.shape[0], -1)
        jitter = np.random.default_rng(0).uniform(-0.22, 0.22, size=pairs.shape[0])
        for row, cell in enumerate(cells):
            flat = np.ravel_multi_index(cell.index, per_pair.shape[1:]) if cell.index else 0
            values = pairs[:, flat]
            keep = ~np.isnan(values)
            ax.scatter(values[keep], row + jitter[keep], s=9, color="#222222", alpha=0.55,
                       zorder=3, linewidths=0)
    ax.axvline(centre, color="#555555", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([c.label for c in cells], fontsize=8)
    ax.invert_yaxis()
    spread = "bars: mean, whiskers: ±1 std over pairs, dots: pairs" if per_pair is not None \
        else "mean (no per-pair values on the mean's scale in this file)"
    ax.set_xlabel(f"{ranking_summary(exp)}\n{spread}", fontsize=8)
    ax.set_title(f"Top {len(cells)}: " + experiment_title(exp.name, exp.attributes), fontsize=10)
    if not cells:
        ax.text(0.5, 0.5, "no defined values", ha="center", va="center", transform=ax.transAxes)
    return figures.save(fig, path)
