"""Side-by-side views of experiments that differ in one setting.

Two experiments are compared when their grids match and their attributes differ in exactly
one key: denoising vs noising of one sweep, activation vs attribution patching, one metric
vs another, zero vs mean ablation. The rule reads attributes only, so settings added later
are compared the same way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import figures
from .figures import plt
from .labels import cell_label
from .loader import Experiment
from .ranking import no_effect_value

# Run bookkeeping, or restatements of another attribute: never the point of a comparison.
IGNORED_ATTRIBUTES = {"elapsed_seconds", "compute_seconds", "mean_definition", "no_effect"}
LABELLED_POINTS = 5


@dataclass(frozen=True)
class Comparison:
    first: Experiment  # the experiment whose differing value sorts first (x axis)
    second: Experiment
    attribute: str

    @property
    def title(self) -> str:
        a, b = self.first.attributes, self.second.attributes
        return f"{self.attribute}: {a[self.attribute]} vs {b[self.attribute]}"


def _differing_attribute(a: Experiment, b: Experiment) -> str | None:
    if [(x.name, x.size) for x in a.axes] != [(x.name, x.size) for x in b.axes]:
        return None
    shared = (a.attributes.keys() & b.attributes.keys()) - IGNORED_ATTRIBUTES
    differing = [k for k in sorted(shared) if a.attributes[k] != b.attributes[k]]
    return differing[0] if len(differing) == 1 else None


def find_comparisons(experiments: list[Experiment]) -> list[Comparison]:
    found = []
    for a, b in itertools.combinations(experiments, 2):
        attribute = _differing_attribute(a, b)
        if attribute is None:
            continue
        if a.attributes[attribute] > b.attributes[attribute]:
            a, b = b, a
        found.append(Comparison(a, b, attribute))
    return found


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over cells defined in both; NaN when it is undefined."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def strongest_cells(comparison: Comparison, k: int = LABELLED_POINTS) -> list[int]:
    """Flat indices of the k cells furthest from no effect in either experiment (each measured
    from its own no-effect value), strongest first; cells undefined in either are left out."""
    first, second = comparison.first, comparison.second
    x, y = first.mean.ravel(), second.mean.ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    distance = np.maximum(np.abs(x - no_effect_value(first)), np.abs(y - no_effect_value(second)))
    strength = np.where(keep, distance, -1.0)
    return [int(i) for i in np.argsort(-strength, kind="stable")[:min(k, int(keep.sum()))]]


def plot_comparison(comparison: Comparison, path: Path) -> float:
    """Scatter of the two means cell by cell, with y = x, each experiment's no-effect value
    and the cells furthest from it named.

    Returns the correlation shown in the title.
    """
    first, second = comparison.first, comparison.second
    x, y = first.mean.ravel(), second.mean.ravel()
    r = correlation(x, y)
    fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
    keep = np.isfinite(x) & np.isfinite(y)
    ax.scatter(x[keep], y[keep], s=18, color=figures.POSITIVE_COLOUR, alpha=0.7, linewidths=0)
    if keep.any():
        low = min(x[keep].min(), y[keep].min(), 0.0)
        high = max(x[keep].max(), y[keep].max(), 0.0)
        ax.plot([low, high], [low, high], color="#888888", linewidth=0.8, linestyle="--",
                label="y = x")
        ax.legend(loc="upper left", fontsize=8)
        for flat in strongest_cells(comparison):
            index = np.unravel_index(flat, first.mean.shape)
            ax.annotate(cell_label(first.axes, index), (x[flat], y[flat]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
    # Each experiment's no-effect value: the cross where neither patch changed anything.
    ax.axhline(no_effect_value(second), color="#cccccc", linewidth=0.6, zorder=0)
    ax.axvline(no_effect_value(first), color="#cccccc", linewidth=0.6, zorder=0)
    attribute = comparison.attribute
    ax.set_xlabel(f"{first.name} ({attribute} = {first.attributes[attribute]}), {first.metric}")
    ax.set_ylabel(f"{second.name} ({attribute} = {second.attributes[attribute]}), {second.metric}")
    r_text = "undefined" if np.isnan(r) else f"{r:.3f}"
    ax.set_title(f"{comparison.title}\nPearson r = {r_text} over {int(keep.sum())} cells",
                 fontsize=10)
    figures.save(fig, path)
    return r
