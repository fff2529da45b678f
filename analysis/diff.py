"""`python -m analysis diff`: how far two runs of the same config are apart.

Values are compared as arrays (largest absolute difference; a NaN in one file where the
other has a number counts as an infinite difference), attributes as strings. /meta (version,
git hash) is reported but never counts as a difference: comparing two builds is the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .loader import Experiment, ResultFile

# Attributes that differ between any two runs and say nothing about the results.
DEFAULT_IGNORED_ATTRIBUTES = ("elapsed_seconds", "compute_seconds", "rank_layout")


def max_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """0 for equal arrays, inf when shapes, strings or the placement of NaNs differ."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return math.inf
    if a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub":
        return 0.0 if np.array_equal(a, b) else math.inf
    a, b = a.astype(np.float64), b.astype(np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return math.inf
    defined = ~np.isnan(a)
    return float(np.max(np.abs(a[defined] - b[defined]), initial=0.0))


@dataclass
class ExperimentDiff:
    name: str
    missing_from: str = ""  # "A" or "B" when the experiment is in one file only
    values: dict[str, float] = field(default_factory=dict)  # "mean", "effect", "baselines/x"
    attributes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def differs(self, tolerance: float) -> bool:
        return bool(self.missing_from or self.attributes
                    or any(v > tolerance for v in self.values.values()))


@dataclass
class FileDiff:
    experiments: list[ExperimentDiff]
    data: dict[str, float]  # /data datasets: largest difference
    meta: dict[str, tuple[str | None, str | None]]  # informational only

    def differs(self, tolerance: float) -> bool:
        return (any(e.differs(tolerance) for e in self.experiments)
                or any(v > tolerance for v in self.data.values()))


def _attribute_changes(a: dict[str, str], b: dict[str, str],
                       ignored: set[str]) -> dict[str, tuple[str | None, str | None]]:
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
            if k not in ignored and a.get(k) != b.get(k)}


def _compare_experiment(a: Experiment, b: Experiment, ignored: set[str]) -> ExperimentDiff:
    out = ExperimentDiff(a.name)
    if a.axis_names != b.axis_names:
        out.attributes["(axes)"] = (" x ".join(a.axis_names), " x ".join(b.axis_names))
    out.values["mean"] = max_abs_difference(a.mean, b.mean)
    if a.effect is not None or b.effect is not None:
        out.values["effect"] = (math.inf if a.effect is None or b.effect is None
                                else max_abs_difference(a.effect, b.effect))
    for key in sorted(a.baselines.keys() | b.baselines.keys()):
        if key in a.baselines and key in b.baselines:
            out.values[f"baselines/{key}"] = max_abs_difference(a.baselines[key], b.baselines[key])
        else:
            out.values[f"baselines/{key}"] = math.inf
    out.attributes.update(_attribute_changes(a.attributes, b.attributes, ignored))
    return out


def compare_results(a: ResultFile, b: ResultFile,
                    ignore_attributes=DEFAULT_IGNORED_ATTRIBUTES) -> FileDiff:
    ignored = set(ignore_attributes)
    experiments = []
    for name in sorted(a.experiments.keys() | b.experiments.keys()):
        if name not in b.experiments:
            experiments.append(ExperimentDiff(name, missing_from="B"))
        elif name not in a.experiments:
            experiments.append(ExperimentDiff(name, missing_from="A"))
        else:
            experiments.append(
                _compare_experiment(a.experiments[name], b.experiments[name], ignored))
    for name in sorted(a.skipped.keys() ^ b.skipped.keys()):
        experiments.append(ExperimentDiff(name, missing_from="B" if name in a.skipped else "A"))
    data = {}
    for key in sorted(a.data.keys() | b.data.keys()):
        data[key] = (max_abs_difference(a.data[key], b.data[key])
                     if key in a.data and key in b.data else math.inf)
    meta = _attribute_changes(a.meta, b.meta, set())
    return FileDiff(experiments, data, meta)


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3g}"


def _short(value: str | None) -> str:
    if value is None:
        return "(absent)"
    text = value if len(value) <= 60 else value[:57] + "..."
    return repr(text)


def format_diff(diff: FileDiff, a: ResultFile, b: ResultFile, tolerance: float) -> str:
    lines = [f"A: {a.path}", f"B: {b.path}"]
    for e in diff.experiments:
        verdict = "DIFFERS" if e.differs(tolerance) else "same"
        if e.missing_from:
            lines.append(f"{e.name}: {verdict}: missing from {e.missing_from}")
            continue
        values = ", ".join(f"{k} {_number(v)}" for k, v in e.values.items())
        lines.append(f"{e.name}: {verdict}: max |A - B|: {values}")
        for key, (old, new) in e.attributes.items():
            lines.append(f"    attribute {key}: {_short(old)} -> {_short(new)}")
    changed_data = {k: v for k, v in diff.data.items() if v > tolerance}
    if changed_data:
        changes = ", ".join(f"{k} {_number(v)}" for k, v in changed_data.items())
        lines.append(f"data: DIFFERS: {changes}")
    else:
        lines.append("data: same")
    for key, (old, new) in diff.meta.items():
        lines.append(f"meta {key} (not counted): {_short(old)} -> {_short(new)}")
    verdict = "differ" if diff.differs(tolerance) else "agree"
    lines.append(f"result: the runs {verdict} (tolerance {tolerance:g})")
    return "\n".join(lines)
