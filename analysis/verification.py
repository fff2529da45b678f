"""Scatter of an attribution run's `verify` check: its estimate against true activation
patching for the cells it ranked strongest, per pair and per cell mean."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import figures
from .figures import plt
from .loader import Experiment


def _r(value: float) -> str:
    return "undefined" if math.isnan(value) else f"{value:.3f}"


def verification_caption(exp: Experiment) -> str:
    v = exp.verify
    return (f"{exp.name}: attribution estimate vs activation patching for the {len(v.cells)} "
            f"strongest cells; Pearson r {_r(v.pearson_per_pair)} over (pair, cell), "
            f"{_r(v.pearson_of_means)} over cell means (from the file's verify/ attributes)")


def plot_verification(exp: Experiment, path: Path) -> Path:
    v = exp.verify
    fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
    est, act = v.estimate.ravel(), v.actual.ravel()
    keep = np.isfinite(est) & np.isfinite(act)
    ax.scatter(act[keep], est[keep], s=10, color="#999999", alpha=0.6, linewidths=0,
               label="pair x cell")
    means = np.isfinite(v.mean_estimate) & np.isfinite(v.mean_actual)
    ax.scatter(v.mean_actual[means], v.mean_estimate[means], s=36,
               color=figures.POSITIVE_COLOUR, label="cell mean", zorder=3)
    for i in np.flatnonzero(means):
        ax.annotate(v.labels[i], (v.mean_actual[i], v.mean_estimate[i]), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    finite = np.concatenate([act[keep], est[keep], v.mean_actual[means], v.mean_estimate[means]])
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        ax.plot([low, high], [low, high], color="#888888", linewidth=0.8, linestyle="--",
                label="y = x")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel(f"actual (activation patching), {exp.metric}")
    ax.set_ylabel(f"estimate (attribution), {exp.metric}")
    ax.set_title(f"{exp.name}: verify, Pearson r {_r(v.pearson_per_pair)} per pair, "
                 f"{_r(v.pearson_of_means)} of means", fontsize=10)
    return figures.save(fig, path)
