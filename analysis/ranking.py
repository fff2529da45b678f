"""The strongest cells of an experiment and the spread of their per-pair values."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .labels import cell_label
from .loader import Experiment

# Metrics whose stored mean is TransformerLens' normalized batch mean,
# (mean patched - mean corrupted) / (mean clean - mean corrupted) of logit differences,
# while `effect` holds raw logit differences ("normalized": per-pair normalized ones).
_NORMALIZED_MEAN_METRICS = {"logit_diff", "normalized"}


@dataclass(frozen=True)
class RankedCell:
    rank: int
    index: tuple[int, ...]  # position in the grid
    values: tuple[int, ...]  # the axes' scale values at that position (layer 3, head 2, ...)
    label: str
    mean: float
    pair_std: float  # spread of the per-pair values on the mean's scale; NaN when unknown
    n_pairs: int  # pairs with a defined value in this cell


def value_label(exp: Experiment) -> str:
    """What the mean's numbers are, short enough for a colour bar."""
    return f"{exp.metric} (normalized)" if exp.metric in _NORMALIZED_MEAN_METRICS else exp.metric


def value_note(exp: Experiment) -> str:
    """How to read the mean's numbers, for captions; empty when they are the metric itself."""
    if exp.metric in _NORMALIZED_MEAN_METRICS:
        return "normalized: 0 = the corrupted run's value, 1 = the clean run's"
    return ""


def _normalize_like_mean(exp: Experiment) -> np.ndarray | None:
    clean = exp.baselines.get("clean_logit_diff")
    corrupted = exp.baselines.get("corrupted_logit_diff")
    if clean is None or corrupted is None:
        return None
    shape = (-1,) + (1,) * (exp.effect.ndim - 1)
    clean, corrupted = clean.reshape(shape), corrupted.reshape(shape)
    raw = exp.effect
    if exp.metric == "normalized":
        raw = corrupted + exp.effect * (clean - corrupted)
    # Each cell's mean uses the baselines of the pairs defined there, so scale the same way.
    defined = ~np.isnan(raw)
    n = defined.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        clean_mean = np.where(defined, clean, 0.0).sum(axis=0) / n
        corrupted_mean = np.where(defined, corrupted, 0.0).sum(axis=0) / n
        return (raw - corrupted_mean) / (clean_mean - corrupted_mean)


def per_pair_on_mean_scale(exp: Experiment) -> np.ndarray | None:
    """Per-pair values (pair, *grid) whose mean over pairs is the stored mean.

    None when the file has no per-pair values or they cannot be put on the mean's scale (a
    mean defined in a way this reader does not know): spread is then not shown rather than
    shown wrong.
    """
    if exp.effect is None or exp.effect.shape[0] == 0:
        return None
    if exp.metric in _NORMALIZED_MEAN_METRICS:
        values = _normalize_like_mean(exp)
    else:
        values = exp.effect
    if values is None:
        return None
    with warnings.catch_warnings():
        # Cells with no defined pair are NaN by design; numpy's warning about them is noise.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        recomputed = np.nanmean(values, axis=0)
    scale = max(float(np.nanmax(np.abs(exp.mean), initial=0.0)), 1e-12)
    if not np.allclose(recomputed, exp.mean, rtol=1e-3, atol=1e-4 * scale, equal_nan=True):
        return None
    return values


def top_cells(exp: Experiment, k: int, per_pair: np.ndarray | None = None) -> list[RankedCell]:
    """The k cells with the largest |mean|, strongest first; NaN cells are never ranked."""
    flat = exp.mean.ravel()
    defined = np.flatnonzero(~np.isnan(flat))
    order = defined[np.argsort(-np.abs(flat[defined]), kind="stable")][:max(k, 0)]
    pairs = None if per_pair is None else per_pair.reshape(per_pair.shape[0], -1)
    cells = []
    for rank, flat_index in enumerate(order, start=1):
        index = tuple(int(i) for i in np.unravel_index(flat_index, exp.mean.shape))
        std, n = float("nan"), exp.n_pairs
        if pairs is not None:
            column = pairs[:, flat_index]
            column = column[~np.isnan(column)]
            n = int(column.size)
            std = float(np.std(column, ddof=1)) if n > 1 else float("nan")
        cells.append(RankedCell(
            rank=rank, index=index,
            values=tuple(a.values[i] for a, i in zip(exp.axes, index)),
            label=cell_label(exp.axes, index), mean=float(flat[flat_index]),
            pair_std=std, n_pairs=n))
    return cells
