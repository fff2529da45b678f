"""Faithfulness curves of every circuit in one plot: the fraction of the metric recovered
against the number of edges kept, each circuit's own size marked on its curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import figures
from .circuits import Circuit
from .figures import plt

LOG_SCALE_ABOVE = 100  # edges kept: beyond this the x axis is logarithmic


def uses_log_scale(circuits: list[Circuit]) -> bool:
    return any(c.faithfulness is not None and c.faithfulness.edges.size
               and int(c.faithfulness.edges.max()) > LOG_SCALE_ABOVE for c in circuits)


def plot_faithfulness(circuits: list[Circuit], path: Path) -> Path | None:
    """The plot of every circuit that has a curve whose recovered share is defined (where the
    clean and all-ablated metrics agree it is undefined, and plotting it would draw rounding
    noise); None when none has."""
    with_curve = [c for c in circuits if c.faithfulness is not None and c.recovery_defined]
    if not with_curve:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    colours = plt.get_cmap("tab10")
    for i, circuit in enumerate(with_curve):
        curve = circuit.faithfulness
        order = np.argsort(curve.edges, kind="stable")
        colour = colours(i % 10)
        ax.plot(curve.edges[order], curve.recovered[order], marker="o", markersize=3,
                linewidth=1.4, color=colour, label=circuit.title)
        size = len(circuit.edges)
        at_size = circuit.recovered
        if np.isfinite(at_size):
            ax.plot([size], [at_size], marker="*", markersize=12, color=colour,
                    markeredgecolor="black", markeredgewidth=0.6, linestyle="none")
    if uses_log_scale(with_curve):
        # symlog: logarithmic beyond one edge, yet the 0-edge point (all ablated) stays on it.
        ax.set_xscale("symlog", linthresh=1.0)
    ax.axhline(1.0, color="#888888", linewidth=0.8, linestyle="--")
    ax.axhline(0.0, color="#888888", linewidth=0.8, linestyle=":")
    ax.set_xlabel("edges kept (the rest ablated)")
    ax.set_ylabel("recovered: (metric - all ablated) / (clean - all ablated)", fontsize=8)
    ax.set_title("Faithfulness: 1 = clean metric, 0 = every edge ablated; "
                 "star: the circuit's size", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return figures.save(fig, path)
