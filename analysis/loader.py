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
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .labels import axis_labels, cell_label, is_position_axis

SCHEMA_PREFIX = "causeway-results/"
SUPPORTED_SCHEMA_MAJOR = 1


class ResultFileError(Exception):
    """A result file that cannot be read; the message is one line naming the file."""


@dataclass(frozen=True)
class Axis:
    """One axis of an experiment grid, named by its dimension scale."""

    name: str
    values: tuple[int, ...]  # scale values: layer / head / position numbers, or 0..n-1 for strings
    labels: tuple[str, ...]  # "L3", "H2", token strings on position axes, component names
    named: bool = False  # a position axis of named positions (IO, S2, ...): labels are the names

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

    @property
    def kind(self) -> str:
        return self.attributes.get("kind", "unknown")

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
        """"incomplete: N of M items done" for a run that did not finish; empty otherwise."""
        done, total = self.items_done
        return f"incomplete: {done} of {total} items done" if done < total else ""


def as_text(value) -> str:
    """HDF5 strings arrive as bytes, numpy bytes or str depending on how they were written."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace").rstrip("\x00")
    return str(value)


def _strings(ds: h5py.Dataset) -> list[str]:
    return [as_text(v) for v in np.asarray(ds[()]).ravel()]


def _is_string_dataset(ds: h5py.Dataset) -> bool:
    return h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind in ("S", "U")


def _read_dataset(ds: h5py.Dataset) -> np.ndarray:
    if _is_string_dataset(ds):
        return np.array(_strings(ds), dtype=object).reshape(ds.shape)
    return np.asarray(ds[()])


def attribute_text(value) -> str:
    """An attribute as text, the same whether the file stored it typed or as a string: booleans
    "true"/"false", integers without a decimal point, reals in their shortest exact form."""
    if isinstance(value, np.ndarray) and value.shape != ():
        return ", ".join(attribute_text(v) for v in value.ravel())
    if isinstance(value, np.ndarray):
        value = value[()]
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return as_text(value)


_INTEGER = re.compile(r"[+-]?\d+")


def attribute_value(value) -> object:
    """An attribute as bool, int, float or str: typed values as they are, strings from older
    files parsed ("true" -> True, "3" -> 3, "3.000000" -> 3.0)."""
    text = attribute_text(value)
    if text in ("true", "false"):
        return text == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) or text.lower() in ("nan", "inf", "-inf") else text


def _attributes(obj) -> dict[str, str]:
    return {key: attribute_text(value) for key, value in obj.attrs.items()}


def _typed_attributes(obj) -> dict[str, object]:
    return {key: attribute_value(value) for key, value in obj.attrs.items()}


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
    if _is_string_dataset(scale):
        strings = tuple(_strings(scale))
        return Axis(name, tuple(range(size)), strings, named=is_position_axis(name))
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

    verify = _read_verification(group.get("verify"), axes, mean.shape)
    used = {"mean", "effect", "axes", "baselines"}
    if done is not None:
        used.add("done")
    if verify is not None:
        used.add("verify")
    uninterpreted = tuple(sorted(k for k in group.keys() if k not in used))
    return Experiment(name, _attributes(group), axes, mean, effect, baselines, uninterpreted,
                      done, verify, _typed_attributes(group))


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
    values = _typed_attributes(group)

    def number(key: str) -> float:
        value = values.get(key)
        return float(value) if isinstance(value, (int, float)) else math.nan

    return Verification(cells, labels,
                        np.asarray(group["estimate"][()], dtype=np.float64),
                        np.asarray(group["actual"][()], dtype=np.float64),
                        np.asarray(group["mean_estimate"][()], dtype=np.float64),
                        np.asarray(group["mean_actual"][()], dtype=np.float64),
                        number("pearson_per_pair"), number("pearson_of_means"))


def config_experiment_names(config_text: str) -> list[str]:
    """Names of the [[experiment]] tables of a stored config, in their order; [] when the text
    is not TOML."""
    try:
        doc = tomllib.loads(config_text)
    except (tomllib.TOMLDecodeError, TypeError):
        return []
    tables = doc.get("experiment", [])
    if not isinstance(tables, list):
        return []
    return [str(t["name"]) for t in tables if isinstance(t, dict) and "name" in t]


def _in_config_order(experiments: dict[str, Experiment], config_text: str) -> dict[str, Experiment]:
    """The experiments in the order of the config's tables (HDF5 lists groups alphabetically);
    any the config does not name follow in file order."""
    order = [n for n in config_experiment_names(config_text) if n in experiments]
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
            meta = _attributes(f["meta"]) if isinstance(f.get("meta"), h5py.Group) else {}
            data = {}
            if isinstance(f.get("data"), h5py.Group):
                data = {k: _read_dataset(ds) for k, ds in f["data"].items()
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
            activations_done = None
            cache_done = f.get("activations/done")
            if isinstance(cache_done, h5py.Dataset) and cache_done.dtype.kind in "biu":
                activations_done = np.asarray(cache_done[()]).astype(bool).ravel()
            other = tuple(sorted(k for k in f.keys() if k not in ("meta", "data", "experiments")))
        except ResultFileError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            # A file cut inside its data opens but fails on the first read of the lost part.
            message = " ".join(str(e).split())
            raise ResultFileError(f"{path}: damaged or truncated result file: {message}") from None
    return ResultFile(path, schema, meta, position_labels, data, experiments, skipped, other,
                      activations_done)
