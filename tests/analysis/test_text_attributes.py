"""Text in a result file is variable-length UTF-8 (issue 19, C): h5py reads every text
attribute as `str` (not numpy.bytes_), and string datasets say utf-8, for `run` and for
`logits --out`."""

from __future__ import annotations

import subprocess

import h5py
import numpy as np
from conftest import TINY_MODEL, causeway_binary

# The HDF5 dimension-scale specification fixes these as fixed-length ASCII (H5DS writes them;
# netCDF readers look for them in that form); they are not causeway's text.
DIMENSION_SCALE_ATTRIBUTES = {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST"}


def text_attributes(path) -> tuple[dict[str, object], list[str]]:
    """Every attribute that is neither a number, a boolean nor a reference, by
    "object@key"; and every string dataset's name."""
    found, strings = {}, []

    def visit(name, obj):
        for key, value in obj.attrs.items():
            if key in DIMENSION_SCALE_ATTRIBUTES:
                continue
            kind = np.asarray(value).dtype.kind
            if kind in "biuf":
                continue
            found[f"/{name}@{key}"] = value
        if isinstance(obj, h5py.Dataset) and h5py.check_string_dtype(obj.dtype) is not None:
            strings.append(name)

    with h5py.File(path, "r") as f:
        visit("", f)
        f.visititems(visit)
    return found, strings


def assert_text_is_str(path) -> None:
    attributes, strings = text_attributes(path)
    assert attributes, f"{path}: no text attributes found"
    not_str = {k: type(v).__name__ for k, v in attributes.items()
               if not (isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype == object
                                              and all(isinstance(x, str) for x in v.ravel())))}
    assert not not_str, f"text attributes h5py does not read as str: {not_str}"
    with h5py.File(path, "r") as f:
        for name in strings:
            info = h5py.check_string_dtype(f[name].dtype)
            assert (info.encoding, info.length) == ("utf-8", None), name
            assert all(isinstance(s, str) for s in np.ravel(f[name].asstr()[()])), name


def test_every_text_attribute_of_a_run_is_str(run_file):
    assert_text_is_str(run_file)
    attributes, strings = text_attributes(run_file)
    # The ones a reader uses first, to be sure the walk saw them.
    for key in ("/@schema", "/meta@config", "/meta@model_config", "/meta@git_hash",
                "/experiments/heads_denoising@kind", "/experiments/heads_denoising@direction",
                "/experiments/heads_denoising@metric"):
        assert isinstance(attributes[key], str), key
    assert attributes["/experiments/heads_noising@direction"] == "noising"
    assert "data/position_labels" in strings


def test_every_text_attribute_of_a_logits_file_is_str(tmp_path):
    out = tmp_path / "logits.h5"
    done = subprocess.run([str(causeway_binary()), "logits", "--model", str(TINY_MODEL),
                           "--tokens", "1,2,3", "--cache", "blocks.0.hook_resid_pre",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_text_is_str(out)
