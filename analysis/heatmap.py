"""Heatmap of an experiment's mean over its grid.

The last two grid axes form each panel (layer x pos, layer x head, dest_pos x src_pos, ...);
any axes before them are faceted into one panel per entry (component, layer), so grids of any
rank are drawn the same way. The colour scale is centred on the experiment's no-effect value
(white = patching changed nothing), so a noising run's heatmap shows what moved away from 1.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import figures
from .figures import plt
from .labels import cell_label, experiment_title, is_position_axis, tick_label
from .edges import parse_node
from .loader import EDGE_AXES, Axis, Experiment
from .ranking import mean_is_normalized, no_effect_value, scale_ticks, value_label

MAX_PANELS = 48  # beyond this the strongest panels are drawn, and the title says so
MAX_TICKS = 40  # longer axes get evenly spaced ticks
CELL_INCHES = 0.32
PAGE_INCHES = 18.0  # widest figure, before the colour bar
MAX_COLUMNS = 6


@dataclass
class Panel:
    title: str
    values: np.ndarray  # (rows, cols)


def _panels(exp: Experiment, centre: float) -> tuple[list[Panel], Axis | None, Axis | None, str]:
    """The panels to draw, their row and column axes, and a note when panels were left out."""
    mean, axes = exp.mean, exp.axes
    if mean.ndim == 0:
        return [Panel("", mean.reshape(1, 1))], None, None, ""
    if mean.ndim == 1:
        return [Panel("", mean.reshape(1, -1))], None, axes[0], ""
    leading = axes[:-2]
    panels = [Panel(cell_label(leading, index) if leading else "", mean[index])
              for index in itertools.product(*(range(a.size) for a in leading))]
    note = ""
    if len(panels) > MAX_PANELS:
        strength = [np.nanmax(np.abs(p.values - centre), initial=0.0) for p in panels]
        keep = sorted(np.argsort(strength, kind="stable")[::-1][:MAX_PANELS])
        note = f" (the {MAX_PANELS} strongest of {len(panels)} panels)"
        panels = [panels[i] for i in keep]
    return panels, axes[-2], axes[-1], note


def _set_ticks(ax, axis: Axis | None, which: str) -> None:
    set_ticks, set_labels = ((ax.set_xticks, ax.set_xticklabels) if which == "x"
                             else (ax.set_yticks, ax.set_yticklabels))
    if axis is None:
        set_ticks([])
        return
    step = max(1, math.ceil(axis.size / MAX_TICKS))
    positions = list(range(0, axis.size, step))
    if axis.name in EDGE_AXES and axis.size > MAX_TICKS:
        positions = layer_starts(axis)
    labels = [tick_label(axis, i) for i in positions]
    set_ticks(positions)
    widest = max(map(len, labels))
    rotate = which == "x" and (is_position_axis(axis.name) or widest > 4
                               or widest * len(labels) > 30)
    set_labels(labels, rotation=90 if rotate else 0, fontsize=8)
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(axis.name)


def layer_starts(axis: Axis) -> list[int]:
    """Where each layer's nodes begin on a long sender or receiver axis: ticks every n-th node
    would land mid-layer, these read as "layer 5 starts here". A start too close to the one
    before (Resid Start, then A0.0) is left out, as the labels would overlap."""
    starts, previous = [], object()
    min_gap = max(2, axis.size // 50)
    for i, label in enumerate(axis.labels):
        node = parse_node(label)[0]
        layer = (node.layer, node.kind == "resid_end")
        if layer != previous and (not starts or i - starts[-1] >= min_gap):
            starts.append(i)
        previous = layer
    return starts


def _layout(shape: tuple[int, int], n_panels: int) -> tuple[float, float, int]:
    """Panel width and height in inches and panels per row: cells keep a readable size, and
    many panels shrink together so that up to MAX_COLUMNS fit the page width."""
    rows, cols = shape
    width = float(np.clip(CELL_INCHES * cols + 1.2, 2.8, 12.0))
    height = float(np.clip(CELL_INCHES * rows + 1.0, 1.4, 10.0))
    ncols = min(n_panels, MAX_COLUMNS)
    if ncols * width > PAGE_INCHES:
        shrink = max(PAGE_INCHES / ncols, 2.8) / width
        width, height = width * min(shrink, 1.0), max(height * min(shrink, 1.0), 1.4)
        ncols = max(1, min(ncols, int(PAGE_INCHES // width)))
    return width, height, ncols


def _plot_empty(exp: Experiment, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    shape = " x ".join(f"{a.name} {a.size}" for a in exp.axes)
    ax.text(0.5, 0.5, f"{exp.name}: empty grid ({shape})", ha="center", va="center")
    return figures.save(fig, path)


def heatmap_scale(exp: Experiment) -> figures.ColourScale:
    """Colours centred on the no-effect value; the colour bar spans the means' range."""
    # A normalized mean keeps 0 (corrupted) and 1 (clean) at the same colours in every
    # experiment, however far its cells reach.
    min_limit = 1.0 if mean_is_normalized(exp) else 0.0
    return figures.colour_scale(exp.mean, no_effect_value(exp), min_limit)


def plot_heatmap(exp: Experiment, path: Path) -> Path:
    if exp.mean.size == 0:
        return _plot_empty(exp, path)
    centre = no_effect_value(exp)
    panels, row_axis, col_axis, note = _panels(exp, centre)
    panel_w, panel_h, ncols = _layout(panels[0].values.shape, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(ncols * panel_w + 1.6, nrows * panel_h + 1.0),
                             squeeze=False, layout="constrained")
    scale = heatmap_scale(exp)
    image = None
    for ax, panel in zip(grid.flat, panels):
        image = ax.imshow(np.ma.masked_invalid(panel.values), cmap=figures.diverging_cmap(),
                          vmin=centre - scale.limit, vmax=centre + scale.limit, aspect="auto",
                          interpolation="nearest")
        _set_ticks(ax, col_axis, "x")
        _set_ticks(ax, row_axis, "y")
        if panel.title:
            ax.set_title(panel.title, fontsize=9)
    for ax in grid.flat[len(panels):]:
        ax.axis("off")
    colour_bar = fig.colorbar(image, ax=grid.ravel().tolist(), shrink=0.9)
    colour_bar.ax.set_title(value_label(exp), fontsize=8, loc="left")
    colour_bar.ax.set_ylim(scale.low, scale.high)
    span = scale.high - scale.low
    ticks = [(v, text) for v, text in scale_ticks(exp) if scale.low <= v <= scale.high]
    ends = [v for v in (scale.low, scale.high) if all(abs(v - t) > 0.15 * span for t, _ in ticks)]
    colour_bar.set_ticks([v for v, _ in ticks] + ends,
                         labels=[text for _, text in ticks] + [f"{v:.3g}" for v in ends],
                         fontsize=8)
    colour_bar.ax.axhline(centre, color="#333333", linewidth=0.8)
    fig.suptitle(experiment_title(exp.name, exp.attributes) + note, fontsize=10)
    return figures.save(fig, path)
