"""The strongest cells of an experiment and the spread of their per-pair values.

"Strongest" means furthest from the experiment's no-effect value: the mean a component would
have if patching it changed nothing. That is 0 for a denoising run's normalized mean, 1 for a
noising or ablation run's (its target is the clean run), and the target run's own baseline for
raw metrics (logit_diff, prob, ...). A noising cell at 0.2 matters more than one at 1.1. An
edge experiment's scores are changes of the metric, so its no-effect value is 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .labels import cell_label
from .loader import Experiment


@dataclass(frozen=True)
class RankedCell:
    rank: int
    index: tuple[int, ...]  # position in the grid
    values: tuple[int, ...]  # the axes' scale values at that position (layer 3, head 2, ...)
    label: str
    mean: float
    pair_std: float  # spread of the per-pair values on the mean's scale; NaN when unknown
    n_pairs: int  # pairs with a defined value in this cell
    from_no_effect: float = math.nan  # mean - the experiment's no-effect value


def mean_is_normalized(exp: Experiment) -> bool:
    """Whether `mean` is TransformerLens' normalized batch mean: 0 at the corrupted run, 1 at
    the clean one. True for metric "normalized", and for "logit_diff" in files written before
    logit_diff meant raw logit differences (their mean_definition says so). Edge scores are
    changes of the metric, never levels, whatever the metric."""
    if exp.is_edges:
        return False
    if exp.metric == "normalized":
        return True
    return (exp.metric == "logit_diff"
            and "(mean clean - mean corrupted)" in exp.attributes.get("mean_definition", ""))


def targets_clean_run(exp: Experiment) -> bool:
    """Noising and ablation patch into the clean run; denoising into the corrupted one, causal
    tracing into the noised one."""
    return exp.kind != "noise" and (exp.kind == "ablation"
                                    or exp.attributes.get("direction") == "noising")


def _mean_of(values: np.ndarray | None) -> float:
    if values is None:
        return math.nan
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


def no_effect_value(exp: Experiment) -> float:
    """The mean of a component whose patching changes nothing: the file's `no_effect` attribute
    when it has one, else worked out from the metric, the direction and the baselines."""
    stored = exp.values.get("no_effect")
    if isinstance(stored, (int, float)) and not isinstance(stored, bool) and math.isfinite(stored):
        return float(stored)
    if exp.is_edges:
        return 0.0
    if mean_is_normalized(exp):
        return 1.0 if targets_clean_run(exp) else 0.0
    key = "clean_metric" if targets_clean_run(exp) else "corrupted_metric"
    value = _mean_of(exp.baselines.get(key))
    return value if math.isfinite(value) else 0.0


def _target_name(exp: Experiment) -> str:
    if exp.kind == "noise":
        return "noised"
    return "clean" if targets_clean_run(exp) else "corrupted"


def scale_note(exp: Experiment) -> str:
    """What the values mean around the colour scale's centre, e.g.
    "0 = corrupted, 1 = clean (no effect)"."""
    if mean_is_normalized(exp):
        low = "noised" if exp.kind == "noise" else "corrupted"
        clean_target = targets_clean_run(exp)
        return (f"0 = {low}{'' if clean_target else ' (no effect)'}, "
                f"1 = clean{' (no effect)' if clean_target else ''}")
    if exp.is_edges:
        return f"edge score ({exp.metric}), no effect = {no_effect_value(exp):.3g}"
    return f"no effect = {no_effect_value(exp):.3f} (the {_target_name(exp)} run's {exp.metric})"


def ranking_note(exp: Experiment) -> str:
    return f"ranked by |mean - no effect| where no effect = {no_effect_value(exp):.3f}"


def ranking_summary(exp: Experiment) -> str:
    """The ranking and how to read the values in one line, the no-effect value said once."""
    if mean_is_normalized(exp):
        return f"{ranking_note(exp)}; {value_note(exp)}"
    if exp.is_edges:
        return f"{ranking_note(exp)}; edge scores ({exp.metric})"
    return f"{ranking_note(exp)} (the {_target_name(exp)} run's {exp.metric})"


def value_label(exp: Experiment) -> str:
    """What the mean's numbers are, short enough for a colour bar's title."""
    if exp.is_edges:
        return f"edge score ({exp.metric})"
    return "normalized logit diff" if mean_is_normalized(exp) else f"mean {exp.metric}"


def scale_ticks(exp: Experiment) -> list[tuple[float, str]]:
    """Named points of the colour bar: 0 and 1 of a normalized mean (which is which run, and
    which is no effect), or the no-effect value of a raw metric."""
    if mean_is_normalized(exp):
        low = "noised" if exp.kind == "noise" else "corrupted"
        clean_target = targets_clean_run(exp)
        return [(0.0, f"0 = {low}" + ("" if clean_target else " (no effect)")),
                (1.0, "1 = clean" + (" (no effect)" if clean_target else ""))]
    value = no_effect_value(exp)
    return [(value, f"{value:.3g} = no effect")]


def value_note(exp: Experiment) -> str:
    """How to read the mean's numbers, for captions."""
    if mean_is_normalized(exp):
        return f"normalized logit difference: {scale_note(exp)}"
    return scale_note(exp)


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
    values = _normalize_like_mean(exp) if mean_is_normalized(exp) else exp.effect
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
    """The k cells furthest from the no-effect value, strongest first; NaN cells are never
    ranked."""
    flat = exp.mean.ravel()
    reference = no_effect_value(exp)
    defined = np.flatnonzero(~np.isnan(flat))
    order = defined[np.argsort(-np.abs(flat[defined] - reference), kind="stable")][:max(k, 0)]
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
            pair_std=std, n_pairs=n, from_no_effect=float(flat[flat_index]) - reference))
    return cells
