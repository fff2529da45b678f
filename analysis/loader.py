"""Reads a causeway result file into labelled arrays.

Everything is discovered from the file itself: the experiments under /experiments (in the
order of the [[experiment]] tables of the stored config), the axes of each grid from the HDF5
dimension scales attached to `mean` (or, without scales, the dimension labels), and the
experiment's attributes, which may be strings (older files) or typed numbers and booleans. No
experiment kind is known in advance, so kinds added later load unchanged; datasets this reader
does not interpret (cached activations, say) are listed, not read.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .h5_values import (as_text, attributes_of, is_string_dataset, read_dataset, strings_of,
                        typed_attributes_of)
from .h5_values import attribute_value  # noqa: F401  (diff.py and the tests import it here)
from .circuits import Circuit, is_pending_circuit, read_circuit
from .labels import axis_labels, cell_label, is_position_axis

SCHEMA_PREFIX = "causeway-results/"
SUPPORTED_SCHEMA_MAJOR = 1
EDGES_KIND = "edges"
EDGE_AXES = ("sender", "receiver")


class ResultFileError(Exception):
    """A result file that cannot be read; the message is one line naming the file."""


@dataclass(frozen=True)
class Axis:
    """One axis of an experiment grid, named by its dimension scale."""

    name: str
    values: tuple[int, ...]  # scale values: layer / head / position numbers, or 0..n-1 for strings
    labels: tuple[str, ...]  # "L3", "H2", token strings on position axes, component names
    named: bool = False  # a position axis of named positions (IO, S2, ...): labels are the names
    text_scale: bool = False  # the scale holds names (components, graph nodes), not numbers

    @property
    def size(self) -> int:
        return len(self.labels)


@dataclass
class Verification:
    """An attribution run's check: true activation patching of its strongest cells."""

    cells: tuple[int, ...]  # flat grid indices of the checked cells
    labels: tuple[str, ...]  # their cell labels
    estimate: np.ndarray  # (pair, cell): the attribution estimate
    actual: np.ndarray  # (pair, cell): activation patching
    mean_estimate: np.ndarray  # (cell,)
    mean_actual: np.ndarray  # (cell,)
    pearson_per_pair: float
    pearson_of_means: float


@dataclass
class Experiment:
    name: str
    attributes: dict[str, str]  # every attribute as text ("true", "3", "0.5"), whatever its type
    axes: tuple[Axis, ...]  # the grid axes: the axes of `mean`
    mean: np.ndarray  # (*grid)
    effect: np.ndarray | None  # (pair, *grid): the stored per-pair values, NaN where undefined
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # each (pair,)
    uninterpreted: tuple[str, ...] = ()  # datasets of the group this reader does not use
    done: np.ndarray | None = None  # one flag per work item; None when the file has no bitmap
    verify: Verification | None = None
    values: dict[str, object] = field(default_factory=dict)  # attributes as bool/int/float/str
    edge_mask: np.ndarray | None = None  # (sender, receiver) of an edge experiment: edge exists

    @property
    def kind(self) -> str:
        return self.attributes.get("kind", "unknown")

    @property
    def is_edges(self) -> bool:
        """Scores over (sender, receiver) with axes labelled by node name: kind "edges", and
        path patching over all senders and receivers."""
        return self.axis_names == EDGE_AXES

    @property
    def metric(self) -> str:
        return self.attributes.get("metric", "value")

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def n_pairs(self) -> int:
        return 0 if self.effect is None else int(self.effect.shape[0])

    @property
    def items_done(self) -> tuple[int, int]:
        """(work items done, work items) of this experiment; (0, 0) without a bitmap."""
        if self.done is None:
            return 0, 0
        return int(np.count_nonzero(self.done)), int(self.done.size)


@dataclass
class ResultFile:
    path: Path
    schema: str
    meta: dict[str, str]
    position_labels: tuple[str, ...]  # the first pair's clean tokens, for position axes
    data: dict[str, np.ndarray]  # everything under /data (token ids, prompt texts, ...)
    experiments: dict[str, Experiment]
    skipped: dict[str, str]  # experiment groups that could not be shown, with the reason
    other_groups: tuple[str, ...]  # top-level groups this reader does not interpret
    activations_done: np.ndarray | None = None  # done bitmap of the activation cache
    circuits: dict[str, Circuit] = field(default_factory=dict)  # /circuits/<name>
    # [[circuit]] tables the file lacks complete (a job stopped in the circuit step), in
    # config order
    missing_circuits: tuple[str, ...] = ()

    @property
    def items_done(self) -> tuple[int, int]:
        """(work items done, work items) over every experiment and the activation cache."""
        done = total = 0
        for exp in self.experiments.values():
            d, t = exp.items_done
            done, total = done + d, total + t
        if self.activations_done is not None:
            done += int(np.count_nonzero(self.activations_done))
            total += int(self.activations_done.size)
        return done, total

    @property
    def incomplete_note(self) -> str:
        """"incomplete: N of M items done" (and "; circuits not computed: a, b") for a run that
        did not finish; "incomplete: circuits not computed: a, b" for one stopped in the circuit
        step; empty otherwise."""
        done, total = self.items_done
        parts = [f"{done} of {total} items done"] if done < total else []
        if self.missing_circuits:
            parts.append("circuits not computed: " + ", ".join(self.missing_circuits))
        return "incomplete: " + "; ".join(parts) if parts else ""


def _scale_of(ds: h5py.Dataset, dim: int) -> h5py.Dataset | None:
    try:
        return ds.dims[dim][0] if len(ds.dims[dim]) else None
    except (KeyError, IndexError, RuntimeError):
        return None


def _dimension_label(ds: h5py.Dataset, dim: int) -> str:
    try:
        return as_text(ds.dims[dim].label)
    except (KeyError, IndexError, RuntimeError, ValueError):
        return ""


def _axis(ds: h5py.Dataset, dim: int, position_labels: tuple[str, ...]) -> Axis:
    """The axis of `ds` at `dim`, named by its dimension scale, else by its dimension label;
    a bare index without either."""
    size = ds.shape[dim]
    scale = _scale_of(ds, dim)
    if scale is None or scale.shape != (size,):
        name = _dimension_label(ds, dim) or f"axis{dim}"
        values = tuple(range(size))
        return Axis(name, values, axis_labels(name, values, position_labels))
    name = as_text(scale.attrs.get("NAME", b"")) or scale.name.rsplit("/", 1)[-1]
    if is_string_dataset(scale):
        strings = tuple(strings_of(scale))
        return Axis(name, tuple(range(size)), strings, named=is_position_axis(name),
                    text_scale=True)
    values = tuple(int(v) for v in np.asarray(scale[()]).ravel())
    return Axis(name, values, axis_labels(name, values, position_labels))


def _read_experiment(name: str, group: h5py.Group,
                     position_labels: tuple[str, ...]) -> Experiment | str:
    """The experiment in `group`, or the reason it cannot be shown."""
    mean_ds = group.get("mean")
    if not isinstance(mean_ds, h5py.Dataset):
        return "no 'mean' dataset"
    if mean_ds.dtype.kind not in "fiu":
        return f"'mean' holds {mean_ds.dtype}, not numbers"
    axes = tuple(_axis(mean_ds, d, position_labels) for d in range(mean_ds.ndim))
    mean = np.asarray(mean_ds[()], dtype=np.float64)

    effect = None
    effect_ds = group.get("effect")
    if (isinstance(effect_ds, h5py.Dataset) and effect_ds.dtype.kind in "fiu"
            and effect_ds.shape[1:] == mean_ds.shape and effect_ds.ndim == mean_ds.ndim + 1):
        effect = np.asarray(effect_ds[()], dtype=np.float64)

    baselines = {}
    base_group = group.get("baselines")
    if isinstance(base_group, h5py.Group):
        for key, ds in base_group.items():
            if isinstance(ds, h5py.Dataset) and ds.dtype.kind in "fiu" and ds.ndim == 1:
                baselines[key] = np.asarray(ds[()], dtype=np.float64)

    done_ds = group.get("done")
    done = None
    if isinstance(done_ds, h5py.Dataset) and done_ds.dtype.kind in "biu" and done_ds.ndim == 1:
        done = np.asarray(done_ds[()]).astype(bool)

    used = {"mean", "effect", "axes", "baselines"}
    edge_mask = None
    edge_grid = tuple(a.name for a in axes) == EDGE_AXES
    if mean.ndim == 2 and (edge_grid or as_text(group.attrs.get("kind", "")) == EDGES_KIND):
        axes = _edge_axes(group, axes, mean.shape)
        edge_mask = _edge_mask(group, mean.shape)
        if edge_mask is not None:
            # A pair of nodes with no edge has no score; NaN keeps it out of rankings and
            # colours it grey, as for any undefined cell.
            mean[~edge_mask] = np.nan
            if effect is not None:
                effect[:, ~edge_mask] = np.nan
        used |= {"sender_names", "receiver_names", "edge_mask"}
    verify = _read_verification(group.get("verify"), axes, mean.shape)
    if done is not None:
        used.add("done")
    if verify is not None:
        used.add("verify")
    uninterpreted = tuple(sorted(k for k in group.keys() if k not in used))
    return Experiment(name, attributes_of(group), axes, mean, effect, baselines, uninterpreted,
                      done, verify, typed_attributes_of(group), edge_mask)


def _edge_axes(group: h5py.Group, axes: tuple[Axis, ...],
               shape: tuple[int, ...]) -> tuple[Axis, ...]:
    """Sender and receiver axes labelled by node name: from the group's sender_names and
    receiver_names, whether or not they are attached as dimension scales."""
    named = []
    for axis, axis_name, size in zip(axes, EDGE_AXES, shape):
        names = group.get(f"{axis_name}_names")
        if isinstance(names, h5py.Dataset) and is_string_dataset(names) and names.shape == (size,):
            axis = Axis(axis_name, tuple(range(size)), tuple(strings_of(names)), text_scale=True)
        named.append(axis)
    return tuple(named)


def _edge_mask(group: h5py.Group, shape: tuple[int, ...]) -> np.ndarray | None:
    ds = group.get("edge_mask")
    if isinstance(ds, h5py.Dataset) and ds.dtype.kind in "biu" and ds.shape == shape:
        return np.asarray(ds[()]).astype(bool)
    return None


def _read_verification(group, axes: tuple[Axis, ...],
                       grid: tuple[int, ...]) -> Verification | None:
    """The `verify/` group of an attribution run; None when absent or not in the known form."""
    if not isinstance(group, h5py.Group):
        return None
    needed = ("cell", "estimate", "actual", "mean_estimate", "mean_actual")
    if not all(isinstance(group.get(k), h5py.Dataset) for k in needed):
        return None
    cells = tuple(int(c) for c in np.asarray(group["cell"][()]).ravel())
    size = int(np.prod(grid)) if grid else 1
    if any(not 0 <= c < size for c in cells):
        return None
    labels = tuple(cell_label(axes, np.unravel_index(c, grid)) if grid else "(all)"
                   for c in cells)
    values = typed_attributes_of(group)

    def number(key: str) -> float:
        value = values.get(key)
        return float(value) if isinstance(value, (int, float)) else math.nan

    return Verification(cells, labels,
                        np.asarray(group["estimate"][()], dtype=np.float64),
                        np.asarray(group["actual"][()], dtype=np.float64),
                        np.asarray(group["mean_estimate"][()], dtype=np.float64),
                        np.asarray(group["mean_actual"][()], dtype=np.float64),
                        number("pearson_per_pair"), number("pearson_of_means"))


def config_experiment_names(config_text: str, table: str = "experiment") -> list[str]:
    """Names of the [[experiment]] (or other `table`) tables of a stored config, in their order;
    [] when the text is not TOML."""
    try:
        doc = tomllib.loads(config_text)
    except (tomllib.TOMLDecodeError, TypeError):
        return []
    tables = doc.get(table, [])
    if not isinstance(tables, list):
        return []
    return [str(t["name"]) for t in tables if isinstance(t, dict) and "name" in t]


def _in_config_order(experiments: dict, config_text: str, table: str = "experiment") -> dict:
    """The experiments (or circuits) in the order of the config's tables (HDF5 lists groups
    alphabetically); any the config does not name follow in file order."""
    order = [n for n in config_experiment_names(config_text, table) if n in experiments]
    order += [n for n in experiments if n not in order]
    return {n: experiments[n] for n in order}


def _check_schema(path: Path, f: h5py.File) -> str:
    schema = as_text(f.attrs["schema"]) if "schema" in f.attrs else ""
    if not schema.startswith(SCHEMA_PREFIX):
        found = ", ".join(sorted(f.keys())) or "nothing"
        raise ResultFileError(
            f"{path}: not a causeway result file (no '{SCHEMA_PREFIX}N' schema attribute on '/'; "
            f"the file holds: {found})")
    version = schema[len(SCHEMA_PREFIX):].split(".")[0]
    if not version.isdigit() or int(version) > SUPPORTED_SCHEMA_MAJOR:
        raise ResultFileError(
            f"{path}: schema '{schema}' is not supported: this reader reads up to "
            f"{SCHEMA_PREFIX}{SUPPORTED_SCHEMA_MAJOR}; update analysis/")
    return schema


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise ResultFileError(f"{path}: no such file")
    if path.is_dir():
        raise ResultFileError(f"{path}: is a folder, not a result file")
    if not h5py.is_hdf5(path):
        raise ResultFileError(f"{path}: not an HDF5 file (no HDF5 signature); "
                              f"expected a result file written by 'causeway run'")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if "truncated" in str(e):
            raise ResultFileError(f"{path}: truncated HDF5 file (it ends before the size its "
                                  f"header records; was the run killed or the copy cut short?)")
        raise ResultFileError(f"{path}: cannot be opened as HDF5: {e}") from None


def load_results(path: str | Path) -> ResultFile:
    """Reads the whole result file; raises ResultFileError with a one-line reason."""
    path = Path(path)
    with _open(path) as f:
        try:
            schema = _check_schema(path, f)
            meta = attributes_of(f["meta"]) if isinstance(f.get("meta"), h5py.Group) else {}
            data = {}
            if isinstance(f.get("data"), h5py.Group):
                data = {k: read_dataset(ds) for k, ds in f["data"].items()
                        if isinstance(ds, h5py.Dataset)}
            position_labels = tuple(data.get("position_labels", ()))
            experiments, skipped = {}, {}
            group = f.get("experiments")
            if isinstance(group, h5py.Group):
                for name, sub in group.items():
                    if not isinstance(sub, h5py.Group):
                        skipped[name] = "not a group"
                        continue
                    loaded = _read_experiment(name, sub, position_labels)
                    if isinstance(loaded, str):
                        skipped[name] = loaded
                    else:
                        experiments[name] = loaded
            experiments = _in_config_order(experiments, meta.get("config", ""))
            circuits, pending = _read_circuits(f.get("circuits"), skipped)
            circuits = _in_config_order(circuits, meta.get("config", ""), "circuit")
            missing = _missing_circuits(meta.get("config", ""), circuits, pending, skipped)
            activations_done = None
            cache_done = f.get("activations/done")
            if isinstance(cache_done, h5py.Dataset) and cache_done.dtype.kind in "biu":
                activations_done = np.asarray(cache_done[()]).astype(bool).ravel()
            other = tuple(sorted(k for k in f.keys()
                                 if k not in ("meta", "data", "experiments", "circuits")))
        except ResultFileError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            # A file cut inside its data opens but fails on the first read of the lost part.
            message = " ".join(str(e).split())
            raise ResultFileError(f"{path}: damaged or truncated result file: {message}") from None
    return ResultFile(path, schema, meta, position_labels, data, experiments, skipped, other,
                      activations_done, circuits, missing)


def _read_circuits(group, skipped: dict[str, str]) -> tuple[dict[str, Circuit], list[str]]:
    """Every readable circuit, and the names of those marked not complete (`complete` = 0:
    laid out, or begun, by a job that stopped before finishing them); the unreadable others go
    to `skipped` as "circuits/NAME" with the reason. Files without /circuits (all files before
    edge experiments) have none."""
    circuits, pending = {}, []
    if not isinstance(group, h5py.Group):
        return circuits, pending
    for name, sub in group.items():
        if isinstance(sub, h5py.Group) and is_pending_circuit(sub):
            pending.append(name)
            continue
        loaded = read_circuit(name, sub) if isinstance(sub, h5py.Group) else "not a group"
        if isinstance(loaded, str):
            skipped[f"circuits/{name}"] = loaded
        else:
            circuits[name] = loaded
    return circuits, pending


def _missing_circuits(config_text: str, circuits: dict, pending: list[str],
                      skipped: dict[str, str]) -> tuple[str, ...]:
    """The config's circuits that the file does not hold complete (files written before the
    `complete` mark lack the group altogether), then pending groups the config does not name."""
    named = config_experiment_names(config_text, "circuit")
    missing = [n for n in named if n not in circuits and f"circuits/{n}" not in skipped]
    return tuple(missing + [n for n in pending if n not in missing])
