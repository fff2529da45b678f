"""`analysis.to_xarray(file, experiment)`: an experiment as an xarray.Dataset whose dimensions
are named by the file's dimension scales and whose coordinates are the scales' values."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
from conftest import scale_names, text
from edge_files import STRONGEST_MEAN, receiver_names, sender_names, write_edges_file

from analysis import load_results, to_xarray

xr = pytest.importorskip("xarray", reason="python3-xarray is not installed "
                                          "(scripts/install-deps.sh installs it)")


def test_a_head_sweep_has_named_dims_and_the_files_values(run_file):
    ds = to_xarray(run_file, "heads_denoising")
    assert isinstance(ds, xr.Dataset)
    with h5py.File(run_file, "r") as f:
        group = f["experiments/heads_denoising"]
        mean, effect = group["mean"][()], group["effect"][()]
        clean = group["baselines/clean_logit_diff"][()]
        assert scale_names(group["effect"]) == ["pair", "layer", "head"]
        layers = group["axes/layer"][()]
        direction = text(group.attrs["direction"])
    assert ds["mean"].dims == ("layer", "head")
    assert ds["effect"].dims == ("pair", "layer", "head")
    assert ds["clean_logit_diff"].dims == ("pair",)
    np.testing.assert_array_equal(ds["layer"].values, layers)
    np.testing.assert_array_equal(ds["head"].values, np.arange(mean.shape[1]))
    np.testing.assert_array_equal(ds["pair"].values, np.arange(effect.shape[0]))
    np.testing.assert_allclose(ds["mean"].values, mean)
    np.testing.assert_allclose(ds["effect"].values, effect)
    np.testing.assert_allclose(ds["clean_logit_diff"].values, clean)
    # Selection by coordinate value: layer 1, head 0 is the file's mean[1, 0].
    assert ds["mean"].sel(layer=1, head=0).item() == pytest.approx(float(mean[1, 0]))
    assert ds["effect"].mean("pair").values == pytest.approx(np.nanmean(effect, axis=0), abs=1e-6)
    assert ds.attrs["direction"] == direction == "denoising"
    assert ds.attrs["experiment"] == "heads_denoising"


def test_positions_carry_their_tokens_and_components_their_names(run_file):
    result = load_results(run_file)
    resid = to_xarray(result, "resid_denoising")
    assert resid["mean"].dims == ("layer", "pos")
    n_pos = resid.sizes["pos"]
    np.testing.assert_array_equal(resid["pos"].values, np.arange(n_pos))
    assert resid["pos_token"].dims == ("pos",)
    labels = result.position_labels
    assert list(resid["pos_token"].values) == ["" if t == f"pos {i}" else t
                                               for i, t in enumerate(labels[:n_pos])]
    block = to_xarray(result, "block")
    with h5py.File(run_file, "r") as f:
        stored = [text(c) for c in f["experiments/block/axes/component"][()]]
    assert block["mean"].dims == ("component", "layer", "pos")
    assert list(block["component"].values) == stored == ["hook_resid_pre", "hook_attn_out",
                                                         "hook_mlp_out"]
    pattern = to_xarray(result, "pattern")
    assert pattern["mean"].dims == ("layer", "head", "dest_pos", "src_pos")


def test_an_edge_experiment_is_indexed_by_node_name(tmp_path):
    path = write_edges_file(tmp_path / "edges.h5", circuits=False)
    ds = to_xarray(path, "eap_edges")
    assert ds["mean"].dims == ("sender", "receiver")
    assert list(ds["sender"].values) == sender_names()
    assert list(ds["receiver"].values) == receiver_names()
    assert ds["mean"].sel(sender="A0.1", receiver="A2.0.K").item() == pytest.approx(STRONGEST_MEAN,
                                                                                   abs=0.05)
    # Pairs of nodes that are no edge have no score.
    assert np.isnan(ds["mean"].sel(sender="A2.0", receiver="A0.0.Q").item())


def test_an_unknown_experiment_and_a_missing_xarray_say_what_to_do(run_file, monkeypatch):
    with pytest.raises(KeyError, match="no experiment 'nope' \\(known: attn_layers, "):
        to_xarray(run_file, "nope")
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(ImportError, match="apt-get install python3-xarray"):
        to_xarray(run_file, "heads_denoising")
