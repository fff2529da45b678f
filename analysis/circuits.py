"""Circuits under /circuits/<name>: the kept edges of a model, and their faithfulness curve.

A circuit group holds `edges` (names "sender->receiver", most important first), `scores` (the
method's score of each), and optionally `faithfulness/` (edges kept, metric, recovered, with the
clean and all-ablated metrics as attributes of the curve or of the circuit group). Its
attributes say how it was found: method, threshold (ACDC) or size (top-k), metric, ablation,
the ranking experiment, and optionally `recovered`, the fraction the kept edges recover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import h5py
import numpy as np

from .h5_values import attributes_of, is_string_dataset, strings_of, typed_attributes_of
from .wording import counted

FAITHFULNESS = "faithfulness"
_CURVE_DATASETS = ("edges", "metric", "recovered")


def recovery_defined(clean_metric: float, ablated_metric: float) -> bool:
    """Whether (metric - ablated) / (clean - ablated) means anything: the two must differ by more
    than the float rounding of their computations, as causeway's circuit step decides it
    (patching/circuit_eval.h: 1e-3 of the larger magnitude, at least 1e-4). Unknown metrics
    (NaN, older files) leave the stored values as they are."""
    if math.isnan(clean_metric) or math.isnan(ablated_metric):
        return True
    span = abs(clean_metric - ablated_metric)
    return span > max(1e-3 * max(abs(clean_metric), abs(ablated_metric)), 1e-4)


def is_pending_circuit(group: h5py.Group) -> bool:
    """A circuit group marked `complete` = 0: laid out, or begun, but not finished."""
    value = group.attrs.get("complete")
    return value is not None and not bool(np.asarray(value).ravel()[0])


@dataclass
class Faithfulness:
    """The circuit's metric with its top n edges kept and every other edge ablated."""

    edges: np.ndarray  # (point,) int: edges kept
    metric: np.ndarray  # (point,) mean logit difference of that circuit
    recovered: np.ndarray  # (point,) (metric - ablated) / (clean - ablated)
    clean_metric: float
    ablated_metric: float

    @property
    def defined(self) -> bool:
        """False where the clean and all-ablated metrics agree: every `recovered` is then noise
        divided by rounding (causeway stores NaN; older files stored the noise)."""
        return recovery_defined(self.clean_metric, self.ablated_metric)

    def recovered_at(self, n_edges: int) -> float:
        """The recovered fraction with exactly n_edges kept; NaN when the curve lacks that
        point."""
        hits = np.flatnonzero(self.edges == n_edges)
        return float(self.recovered[hits[0]]) if hits.size else math.nan


@dataclass
class Circuit:
    name: str
    attributes: dict[str, str]  # every attribute as text
    values: dict[str, object]  # attributes as bool / int / float / str
    edges: tuple[str, ...]  # kept edges, most important first
    scores: np.ndarray  # (edge,) the method's score of each kept edge
    faithfulness: Faithfulness | None = None
    uninterpreted: tuple[str, ...] = field(default=())  # members this reader does not use

    @property
    def recovery_defined(self) -> bool:
        """False where the clean and all-ablated metrics agree (recovered is then undefined)."""
        return recovery_defined(_number(self.values, "clean_metric"),
                                _number(self.values, "ablated_metric")) and \
            (self.faithfulness is None or self.faithfulness.defined)

    @property
    def recovered(self) -> float:
        """The fraction of the metric the kept edges recover: the curve's point at the circuit's
        size, else the group's `recovered` attribute (a curve over doubling sizes may skip the
        circuit's own); NaN when neither is there, or when it is undefined."""
        if not self.recovery_defined:
            return math.nan
        if self.faithfulness is not None:
            at_size = self.faithfulness.recovered_at(len(self.edges))
            if not math.isnan(at_size):
                return at_size
        return _number(self.values, "recovered")

    @property
    def method(self) -> str:
        return self.attributes.get("method", "unknown")

    @property
    def selection(self) -> str:
        """How the edges were chosen: "threshold 0.01" (ACDC) or "top 50 edges"."""
        if "threshold" in self.attributes:
            return f"threshold {self.attributes['threshold']}"
        if "size" in self.attributes:
            return f"top {self.attributes['size']} edges"
        return counted(len(self.edges), "edge")

    @property
    def title(self) -> str:
        """"ioi_acdc: acdc, threshold 0.01, corrupted ablation, logit_diff"."""
        parts = [self.method, self.selection]
        if "ablation" in self.attributes:
            parts.append(f"{self.attributes['ablation']} ablation")
        if "metric" in self.attributes:
            parts.append(self.attributes["metric"])
        return f"{self.name}: {', '.join(parts)}"


def _number(values: dict[str, object], key: str) -> float:
    value = values.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else math.nan


def _read_faithfulness(group, circuit_values: dict[str, object]) -> Faithfulness | str:
    """The curve, or why it cannot be read. The clean and ablated metrics are the curve's
    attributes, or the circuit's where the curve has none."""
    if not isinstance(group, h5py.Group):
        return "not a group"
    arrays = []
    for key in _CURVE_DATASETS:
        ds = group.get(key)
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "fiu":
            return f"no 1-D numeric '{key}'"
        arrays.append(np.asarray(ds[()]))
    if len({a.size for a in arrays}) != 1:
        return "edges, metric and recovered differ in length"
    edges, metric, recovered = arrays
    values = {**circuit_values, **typed_attributes_of(group)}
    return Faithfulness(edges.astype(np.int64), metric.astype(np.float64),
                        recovered.astype(np.float64), _number(values, "clean_metric"),
                        _number(values, "ablated_metric"))


def read_circuit(name: str, group: h5py.Group) -> Circuit | str:
    """The circuit in `group`, or the reason it cannot be shown."""
    edges_ds = group.get("edges")
    if not isinstance(edges_ds, h5py.Dataset) or not is_string_dataset(edges_ds) \
            or edges_ds.ndim != 1:
        return "no 1-D string dataset 'edges'"
    edges = tuple(strings_of(edges_ds))
    scores = np.full(len(edges), math.nan)
    scores_ds = group.get("scores")
    used = {"edges"}
    if isinstance(scores_ds, h5py.Dataset) and scores_ds.dtype.kind in "fiu":
        if scores_ds.shape != (len(edges),):
            return f"'scores' holds {scores_ds.size} values for {len(edges)} edges"
        scores = np.asarray(scores_ds[()], dtype=np.float64)
        used.add("scores")
    faithfulness = None
    uninterpreted = []
    values = typed_attributes_of(group)
    if FAITHFULNESS in group:
        curve = _read_faithfulness(group[FAITHFULNESS], values)
        if isinstance(curve, str):
            uninterpreted.append(f"{FAITHFULNESS} ({curve})")
        else:
            faithfulness = curve
        used.add(FAITHFULNESS)
    uninterpreted += sorted(k for k in group.keys() if k not in used)
    return Circuit(name, attributes_of(group), values, edges, scores, faithfulness,
                   tuple(uninterpreted))
