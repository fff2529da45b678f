"""Reads a causeway result file into labelled arrays.

Everything is discovered from the file itself: the experiments under /experiments, the axes of
each grid from the HDF5 dimension scales attached to `mean`, and the experiment's string
attributes. No experiment kind is known in advance, so kinds added later load unchanged;
datasets this reader does not interpret (a `done` bitmap, cached activations) are listed, not
read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .labels import axis_labels

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

    @property
    def size(self) -> int:
        return len(self.labels)


@dataclass
class Experiment:
    name: str
    attributes: dict[str, str]
    axes: tuple[Axis, ...]  # the grid axes: the axes of `mean`
    mean: np.ndarray  # (*grid)
    effect: np.ndarray | None  # (pair, *grid): the stored per-pair values, NaN where undefined
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # each (pair,)
    uninterpreted: tuple[str, ...] = ()  # datasets of the group this reader does not use

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


def _attributes(obj) -> dict[str, str]:
    out = {}
    for key, value in obj.attrs.items():
        if isinstance(value, np.ndarray) and value.shape != ():
            out[key] = ", ".join(as_text(v) for v in value.ravel())
        else:
            out[key] = as_text(value)
    return out


def _scale_of(ds: h5py.Dataset, dim: int) -> h5py.Dataset | None:
    try:
        return ds.dims[dim][0] if len(ds.dims[dim]) else None
    except (KeyError, IndexError, RuntimeError):
        return None


def _axis(ds: h5py.Dataset, dim: int, position_labels: tuple[str, ...]) -> Axis:
    """The axis of `ds` at `dim`, named by its dimension scale; a bare index without one."""
    size = ds.shape[dim]
    scale = _scale_of(ds, dim)
    if scale is None or scale.shape != (size,):
        name = f"axis{dim}"
        values = tuple(range(size))
        return Axis(name, values, axis_labels(name, values, position_labels))
    name = as_text(scale.attrs.get("NAME", b"")) or scale.name.rsplit("/", 1)[-1]
    if _is_string_dataset(scale):
        return Axis(name, tuple(range(size)), tuple(_strings(scale)))
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

    used = {"mean", "effect", "axes", "baselines"}
    uninterpreted = tuple(sorted(k for k in group.keys() if k not in used))
    return Experiment(name, _attributes(group), axes, mean, effect, baselines, uninterpreted)


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
            other = tuple(sorted(k for k in f.keys() if k not in ("meta", "data", "experiments")))
        except ResultFileError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            # A file cut inside its data opens but fails on the first read of the lost part.
            message = " ".join(str(e).split())
            raise ResultFileError(f"{path}: damaged or truncated result file: {message}") from None
    return ResultFile(path, schema, meta, position_labels, data, experiments, skipped, other)
