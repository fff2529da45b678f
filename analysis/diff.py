"""`python -m analysis diff`: how far two runs of the same config are apart.

Values are compared as arrays with a tolerance relative to their scale: an array differs when
max |A - B| > atol + rtol * max |A| (A is the reference), so a run of raw logit differences in
the tens and one of probabilities near 1e-3 are judged alike. A NaN in one file where the other
has a number counts as an infinite difference; integer and string data (token ids, prompts)
must match exactly. Attributes are compared by value, whether a file stored them as strings or
typed ("3.000000" equals 3.0): a real-valued one (`no_effect`, say) within the arrays'
tolerance, relative to its |A|, the others exactly. The stored configs are compared key by key
and the keys that differ are listed, to explain a difference. /meta (version, git hash) is reported but never
counts as a difference: comparing two builds is the point.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field

import numpy as np

from .circuits import Circuit
from .loader import Experiment, ResultFile, attribute_value

# Attributes that differ between any two runs and say nothing about the results.
DEFAULT_IGNORED_ATTRIBUTES = ("elapsed_seconds", "compute_seconds", "rank_layout")
DEFAULT_RTOL = 1e-5


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


def value_scale(a: np.ndarray) -> float:
    """max |a| over finite entries: what a relative tolerance is relative to."""
    a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        return 0.0
    a = np.abs(a.astype(np.float64))
    return float(np.max(a[np.isfinite(a)], initial=0.0))


@dataclass(frozen=True)
class Tolerance:
    rtol: float = DEFAULT_RTOL
    atol: float = 0.0

    def allowed(self, scale: float) -> float:
        return self.atol + self.rtol * scale

    def describe(self) -> str:
        return f"rtol {self.rtol:g} x max |A|" + (f" + atol {self.atol:g}" if self.atol else "")


@dataclass(frozen=True)
class ValueDiff:
    difference: float  # max |A - B|
    scale: float  # max |A|: the tolerance's reference
    exact: bool = False  # integers and strings: any difference counts

    def differs(self, tol: Tolerance) -> bool:
        if self.exact:
            return self.difference > 0
        return self.difference > tol.allowed(self.scale)


def _value_diff(a: np.ndarray, b: np.ndarray) -> ValueDiff:
    exact = np.asarray(a).dtype.kind not in "fc" or np.asarray(b).dtype.kind not in "fc"
    return ValueDiff(max_abs_difference(a, b), value_scale(a), exact)


MISSING = ValueDiff(math.inf, 0.0)


@dataclass
class ExperimentDiff:
    name: str
    missing_from: str = ""  # "A" or "B" when the experiment is in one file only
    values: dict[str, ValueDiff] = field(default_factory=dict)  # "mean", "effect", "baselines/x"
    attributes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    # real-valued attributes that differ at all, as (A, B) text; their ValueDiff is in values
    attribute_text: dict[str, tuple[str, str]] = field(default_factory=dict)

    def differs(self, tol: Tolerance) -> bool:
        return bool(self.missing_from or self.attributes
                    or any(v.differs(tol) for v in self.values.values()))


@dataclass
class FileDiff:
    experiments: list[ExperimentDiff]
    data: dict[str, ValueDiff]  # /data datasets
    meta: dict[str, tuple[str | None, str | None]]  # informational only
    config: dict[str, tuple[object, object]] = field(default_factory=dict)  # informational

    def differs(self, tol: Tolerance) -> bool:
        return (any(e.differs(tol) for e in self.experiments)
                or any(v.differs(tol) for v in self.data.values()))


def _real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _attribute_diff(a: str | None, b: str | None) -> ValueDiff | None:
    """The attributes' difference as a value when both are numbers and one is real (a
    tolerance then applies); None when they must match exactly."""
    if a is None or b is None:
        return None
    x, y = attribute_value(a), attribute_value(b)
    if not (_real(x) and _real(y)) or not (isinstance(x, float) or isinstance(y, float)):
        return None
    return _value_diff(np.float64(x), np.float64(y))


def _attribute_changes(a: dict[str, str], b: dict[str, str], ignored: set[str]
                       ) -> tuple[dict[str, tuple[str | None, str | None]], dict[str, ValueDiff]]:
    """Attributes that differ: (those compared exactly, as (A, B) text; real-valued ones whose
    values differ at all, for the tolerance to judge)."""
    exact, real = {}, {}
    for k in sorted(a.keys() | b.keys()):
        if k in ignored:
            continue
        values = _attribute_diff(a.get(k), b.get(k))
        if values is not None:
            if values.difference > 0:
                real[k] = values
        elif a.get(k) is None or b.get(k) is None:  # in one file only
            exact[k] = (a.get(k), b.get(k))
        elif attribute_value(a[k]) != attribute_value(b[k]):
            exact[k] = (a[k], b[k])
    return exact, real


def _add_attribute_changes(out: ExperimentDiff, a: dict[str, str], b: dict[str, str],
                           ignored: set[str]) -> None:
    exact, real = _attribute_changes(a, b, ignored)
    out.attributes.update(exact)
    out.values.update({f"attribute {k}": v for k, v in real.items()})
    out.attribute_text.update({k: (a[k], b[k]) for k in real})


def _compare_experiment(a: Experiment, b: Experiment, ignored: set[str]) -> ExperimentDiff:
    out = ExperimentDiff(a.name)
    if a.axis_names != b.axis_names:
        out.attributes["(axes)"] = (" x ".join(a.axis_names), " x ".join(b.axis_names))
    out.values["mean"] = _value_diff(a.mean, b.mean)
    if a.effect is not None or b.effect is not None:
        out.values["effect"] = (MISSING if a.effect is None or b.effect is None
                                else _value_diff(a.effect, b.effect))
    for key in sorted(a.baselines.keys() | b.baselines.keys()):
        if key in a.baselines and key in b.baselines:
            out.values[f"baselines/{key}"] = _value_diff(a.baselines[key], b.baselines[key])
        else:
            out.values[f"baselines/{key}"] = MISSING
    _add_attribute_changes(out, a.attributes, b.attributes, ignored)
    return out


def _compare_circuit(a: Circuit, b: Circuit, ignored: set[str]) -> ExperimentDiff:
    """Kept edges must match exactly and in order; scores and the faithfulness curve within
    the tolerance, like an experiment's values."""
    out = ExperimentDiff(f"circuit {a.name}")
    out.values["edges"] = _value_diff(np.array(a.edges, dtype=object),
                                      np.array(b.edges, dtype=object))
    out.values["scores"] = _value_diff(a.scores, b.scores)
    if a.faithfulness is not None or b.faithfulness is not None:
        for key in ("edges", "metric", "recovered"):
            out.values[f"faithfulness/{key}"] = (
                MISSING if a.faithfulness is None or b.faithfulness is None
                else _value_diff(getattr(a.faithfulness, key), getattr(b.faithfulness, key)))
    _add_attribute_changes(out, a.attributes, b.attributes, ignored)
    return out


_ABSENT = object()


def _flatten_config(doc: dict, prefix: str = "") -> dict[str, object]:
    """Dotted keys of a config; [[experiment]] tables are keyed by their name."""
    out: dict[str, object] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten_config(value, path + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            names = [v.get("name") for v in value]
            by_name = all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
            for i, table in enumerate(value):
                label = f"{path}[{table['name']!r}]" if by_name else f"{path}[{i}]"
                out.update(_flatten_config(table, label + "."))
        else:
            out[path] = value
    return out


def config_differences(a_text: str, b_text: str) -> dict[str, tuple[object, object]]:
    """Config keys whose values differ between two stored configs (absent keys as None); the
    whole text as one entry when either is not TOML."""
    try:
        a, b = _flatten_config(tomllib.loads(a_text)), _flatten_config(tomllib.loads(b_text))
    except tomllib.TOMLDecodeError:
        return {} if a_text == b_text else {"(config text)": (a_text, b_text)}
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys(), key=str)
            if a.get(k, _ABSENT) != b.get(k, _ABSENT)}


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
    for name in sorted(a.circuits.keys() | b.circuits.keys()):
        if name in a.circuits and name in b.circuits:
            experiments.append(_compare_circuit(a.circuits[name], b.circuits[name], ignored))
        else:
            experiments.append(ExperimentDiff(f"circuit {name}",
                                              missing_from="B" if name in a.circuits else "A"))
    for name in sorted(a.skipped.keys() ^ b.skipped.keys()):
        experiments.append(ExperimentDiff(name, missing_from="B" if name in a.skipped else "A"))
    data = {}
    for key in sorted(a.data.keys() | b.data.keys()):
        data[key] = (_value_diff(a.data[key], b.data[key])
                     if key in a.data and key in b.data else MISSING)
    exact, real = _attribute_changes(a.meta, b.meta, set())
    meta = {k: v for k, v in exact.items() if k != "config"}
    meta.update({k: (a.meta[k], b.meta[k]) for k in real})
    config = config_differences(a.meta.get("config", ""), b.meta.get("config", ""))
    return FileDiff(experiments, data, meta, config)


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3g}"


def _short(value) -> str:
    if value is None:
        return "(absent)"
    text = value if isinstance(value, str) else str(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return repr(text)


def _values_text(values: dict[str, ValueDiff]) -> str:
    return ", ".join(f"{k} {_number(v.difference)}" for k, v in values.items())


def format_diff(diff: FileDiff, a: ResultFile, b: ResultFile, tol: Tolerance) -> str:
    lines = [f"A: {a.path}", f"B: {b.path}"]
    for e in diff.experiments:
        verdict = "DIFFERS" if e.differs(tol) else "same"
        if e.missing_from:
            lines.append(f"{e.name}: {verdict}: missing from {e.missing_from}")
            continue
        lines.append(f"{e.name}: {verdict}: max |A - B|: {_values_text(e.values)}")
        over = {k: v for k, v in e.values.items() if v.differs(tol)}
        if over:
            lines.append("    over the tolerance: " + ", ".join(
                f"{k} (allowed {_number(0.0 if v.exact else tol.allowed(v.scale))}, "
                f"max |A| {_number(v.scale)})" for k, v in over.items()))
        for key, (old, new) in e.attributes.items():
            lines.append(f"    attribute {key}: {_short(old)} -> {_short(new)}")
        for key, (old, new) in e.attribute_text.items():
            if e.values[f"attribute {key}"].differs(tol):
                lines.append(f"    attribute {key}: {_short(old)} -> {_short(new)}")
    changed_data = {k: v for k, v in diff.data.items() if v.differs(tol)}
    if changed_data:
        lines.append(f"data: DIFFERS: {_values_text(changed_data)}")
    else:
        lines.append("data: same")
    for key, (old, new) in diff.config.items():
        lines.append(f"config {key} (not counted): {_short(old)} -> {_short(new)}")
    for key, (old, new) in diff.meta.items():
        lines.append(f"meta {key} (not counted): {_short(old)} -> {_short(new)}")
    verdict = "differ" if diff.differs(tol) else "agree"
    lines.append(f"result: the runs {verdict} (tolerance {tol.describe()})")
    return "\n".join(lines)
