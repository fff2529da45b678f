"""Values as HDF5 hands them over (bytes, numpy scalars, typed or string attributes) turned
into plain Python text, numbers and arrays, the same whichever way the file wrote them."""

from __future__ import annotations

import math
import re

import h5py
import numpy as np


def as_text(value) -> str:
    """HDF5 strings arrive as bytes, numpy bytes or str depending on how they were written."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace").rstrip("\x00")
    return str(value)


def strings_of(ds: h5py.Dataset) -> list[str]:
    return [as_text(v) for v in np.asarray(ds[()]).ravel()]


def is_string_dataset(ds: h5py.Dataset) -> bool:
    return h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind in ("S", "U")


def read_dataset(ds: h5py.Dataset) -> np.ndarray:
    if is_string_dataset(ds):
        return np.array(strings_of(ds), dtype=object).reshape(ds.shape)
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


def attributes_of(obj) -> dict[str, str]:
    return {key: attribute_text(value) for key, value in obj.attrs.items()}


def typed_attributes_of(obj) -> dict[str, object]:
    return {key: attribute_value(value) for key, value in obj.attrs.items()}
