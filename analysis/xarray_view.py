"""One experiment of a result file as an xarray.Dataset: named dimensions, with coordinates
from the HDF5 dimension scales.

The file keeps each experiment's scales in its own `axes/` subgroup, which netCDF readers
(xarray's h5netcdf engine) do not see as the dimensions of the parent group's datasets; this
builds the Dataset from what the loader reads instead. xarray is optional: only this function
needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .labels import is_position_axis, position_token
from .loader import Axis, ResultFile, load_results

PAIR = "pair"
XARRAY_MISSING = ("to_xarray needs xarray, which is not installed: apt-get install "
                  "python3-xarray (Debian) or pip install xarray")


def _coordinate(axis: Axis) -> np.ndarray:
    """Numbers for numbered axes (layer 3, head 2, position 7); the names for axes whose scale
    holds strings (components, edge nodes, named positions)."""
    if axis.text_scale:
        return np.array(axis.labels, dtype=object)
    return np.array(axis.values, dtype=np.int64)


def to_xarray(file: str | Path | ResultFile, experiment: str):
    """The experiment `experiment` of `file` (a path or a loaded ResultFile) as an
    xarray.Dataset with `mean` (*grid), `effect` (pair, *grid) and one variable per baseline
    (pair,); dimensions are named by the axes (pair, layer, head, pos, ...), each with its
    scale's values as coordinate, position axes also with their tokens as `<axis>_token` ("" where the pairs differ);
    the experiment's attributes (typed) are the Dataset's attributes. `ds["mean"]` reads the
    mean (`ds.mean` is xarray's method)."""
    try:
        import xarray as xr
    except ImportError:
        raise ImportError(XARRAY_MISSING) from None
    result = file if isinstance(file, ResultFile) else load_results(file)
    if experiment not in result.experiments:
        known = ", ".join(result.experiments) or "none"
        raise KeyError(f"{result.path}: no experiment '{experiment}' (known: {known})")
    exp = result.experiments[experiment]
    grid = exp.axis_names
    coords: dict[str, object] = {}
    for axis in exp.axes:
        coords[axis.name] = (axis.name, _coordinate(axis))
        if is_position_axis(axis.name) and not axis.named:
            tokens = [position_token(axis, i) for i in range(axis.size)]
            coords[f"{axis.name}_token"] = (axis.name, np.array(tokens, dtype=object))
    variables: dict[str, object] = {"mean": (grid, exp.mean)}
    n_pairs = None
    if exp.effect is not None:
        variables["effect"] = ((PAIR, *grid), exp.effect)
        n_pairs = exp.effect.shape[0]
    for name, values in exp.baselines.items():
        if n_pairs is None or values.shape == (n_pairs,):
            variables[name] = ((PAIR,), values)
            n_pairs = values.shape[0]
    if n_pairs is not None:
        coords[PAIR] = (PAIR, np.arange(n_pairs, dtype=np.int64))
    attributes = dict(exp.values)
    attributes["experiment"] = exp.name
    attributes["file"] = str(result.path)
    return xr.Dataset(variables, coords=coords, attrs=attributes)
