"""The loader returns what the file holds, labelled from the file's own schema."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from conftest import RUN_EXPERIMENTS, scale_names, text

from analysis import ResultFileError, load_results
from analysis.loader import attribute_value
from analysis.ranking import no_effect_value, per_pair_on_mean_scale, top_cells


def test_every_experiment_has_the_values_and_attributes_of_the_file(run_file):
    result = load_results(run_file)
    with h5py.File(run_file, "r") as f:
        assert sorted(result.experiments) == sorted(f["experiments"].keys())
        assert RUN_EXPERIMENTS.count("[[experiment]]") == len(result.experiments)
        for name, exp in result.experiments.items():
            group = f["experiments"][name]
            np.testing.assert_array_equal(exp.mean, group["mean"][()])
            np.testing.assert_array_equal(exp.effect, group["effect"][()])
            assert exp.axis_names == tuple(scale_names(group["mean"]))
            assert scale_names(group["effect"]) == ["pair", *exp.axis_names]
            assert exp.values == {k: attribute_value(v) for k, v in group.attrs.items()}
            assert exp.attributes["kind"] == text(group.attrs["kind"])
            assert sorted(exp.baselines) == sorted(group["baselines"].keys())
            for key, values in exp.baselines.items():
                np.testing.assert_array_equal(values, group["baselines"][key][()])
            assert exp.n_pairs == group["effect"].shape[0] == 6


def test_axes_are_labelled_by_name_with_tokens_on_positions(run_file):
    result = load_results(run_file)
    with h5py.File(run_file, "r") as f:
        tokens = [text(t) for t in f["data/position_labels"][()]]
        components = [text(c) for c in f["experiments/block/axes/component"][()]]
    # The six random prompts share no token at any position: every label is its number.
    assert tokens == [f"pos {i}" for i in range(8)]
    assert result.position_labels == tuple(tokens)

    heads = result.experiments["heads_denoising"]
    assert [a.name for a in heads.axes] == ["layer", "head"]
    assert heads.axes[0].labels == ("L0", "L1")
    assert heads.axes[1].labels == ("H0", "H1", "H2", "H3")

    resid = result.experiments["resid_denoising"]
    assert resid.axes[1].name == "pos" and resid.axes[1].labels == tuple(tokens)

    block = result.experiments["block"]
    assert block.axis_names == ("component", "layer", "pos")
    assert block.axes[0].labels == tuple(components)
    assert components == ["hook_resid_pre", "hook_attn_out", "hook_mlp_out"]

    pattern = result.experiments["pattern"]
    assert pattern.axis_names == ("layer", "head", "dest_pos", "src_pos")
    assert pattern.axes[2].labels == pattern.axes[3].labels == tuple(tokens)


def test_meta_and_data_are_read(run_file):
    result = load_results(run_file)
    assert result.schema == "causeway-results/1"
    assert "heads_noising" in result.meta["config"]
    assert result.meta["model"].endswith("tiny-gpt2")
    with h5py.File(run_file, "r") as f:
        np.testing.assert_array_equal(result.data["clean_tokens"], f["data/clean_tokens"][()])
        assert list(result.data["clean_text"]) == [text(t) for t in f["data/clean_text"][()]]


def test_per_pair_values_average_to_the_stored_mean(run_file, ragged_file):
    for path, name in [(run_file, "heads_denoising"), (run_file, "heads_noising"),
                       (run_file, "heads_prob"), (run_file, "heads_normalized"),
                       (ragged_file, "resid")]:
        exp = load_results(path).experiments[name]
        per_pair = per_pair_on_mean_scale(exp)
        assert per_pair is not None, name
        defined = ~np.isnan(exp.mean)
        recomputed = np.nanmean(per_pair[:, defined], axis=0)
        np.testing.assert_allclose(recomputed, exp.mean[defined], rtol=1e-4, atol=1e-6)


def test_normalized_pairs_are_put_on_the_batch_normalized_scale(run_file):
    exp = load_results(run_file).experiments["heads_normalized"]
    per_pair = per_pair_on_mean_scale(exp)
    clean, corrupted = exp.baselines["clean_logit_diff"], exp.baselines["corrupted_logit_diff"]
    # `effect` holds each pair normalized by its own baselines; the mean by the batch's.
    raw = corrupted[2] + exp.effect[2, 1, 3] * (clean[2] - corrupted[2])
    expected = (raw - corrupted.mean()) / (clean.mean() - corrupted.mean())
    assert per_pair[2, 1, 3] == pytest.approx(expected, rel=1e-6)
    # Raw logit differences and probabilities: the mean is a plain mean of the stored values.
    for name in ("heads_denoising", "heads_prob"):
        plain = load_results(run_file).experiments[name]
        np.testing.assert_array_equal(per_pair_on_mean_scale(plain), plain.effect)


def test_logit_diff_means_are_raw_logit_differences(run_file):
    result = load_results(run_file)
    raw, normalized = result.experiments["heads_denoising"], result.experiments["heads_normalized"]
    np.testing.assert_allclose(raw.mean, raw.effect.mean(axis=0), rtol=1e-5, atol=1e-6)
    clean = raw.baselines["clean_logit_diff"].mean()
    corrupted = raw.baselines["corrupted_logit_diff"].mean()
    np.testing.assert_allclose(normalized.mean, (raw.mean - corrupted) / (clean - corrupted),
                               rtol=1e-4, atol=1e-5)
    assert "mean over the pairs" in raw.attributes["mean_definition"]
    assert "TransformerLens" in normalized.attributes["mean_definition"]
    # No effect: the corrupted run's own logit difference, and 0 on the normalized scale.
    assert no_effect_value(raw) == pytest.approx(corrupted, abs=1e-5)
    assert no_effect_value(normalized) == 0.0


def test_a_file_from_before_raw_logit_diff_is_read_as_normalized(run_copy):
    # Older files stored TransformerLens' normalized mean under metric "logit_diff" and said so
    # in mean_definition; their raw per-pair values still average to it after normalizing.
    with h5py.File(run_copy, "r+") as f:
        group = f["experiments/heads_noising"]
        clean = group["baselines/clean_logit_diff"][()].mean()
        corrupted = group["baselines/corrupted_logit_diff"][()].mean()
        group["mean"][...] = (group["mean"][()] - corrupted) / (clean - corrupted)
        group.attrs["mean_definition"] = ("(mean patched - mean corrupted) / (mean clean - "
                                          "mean corrupted) of logit differences")
        del group.attrs["no_effect"]
    exp = load_results(run_copy).experiments["heads_noising"]
    assert no_effect_value(exp) == 1.0
    assert per_pair_on_mean_scale(exp) is not None


def test_ragged_prompts_leave_undefined_cells_out_of_the_ranking(ragged_file):
    exp = load_results(ragged_file).experiments["resid"]
    assert len(exp.axes[1].labels) == 8 and all(exp.axes[1].labels)  # every position labelled
    assert np.isnan(exp.effect[2, :, 3:]).all()
    cells = top_cells(exp, exp.mean.size, per_pair_on_mean_scale(exp))
    assert len(cells) == np.count_nonzero(~np.isnan(exp.mean))
    by_index = {c.index: c for c in cells}
    assert by_index[(0, 7)].n_pairs == 1  # only the 8-token prompt reaches position 7
    assert np.isnan(by_index[(0, 7)].pair_std)
    assert by_index[(0, 0)].n_pairs == 3


def test_top_cells_match_the_summary_of_causeway_run(run_output):
    path, stdout = run_output
    exp = load_results(path).experiments["heads_denoising"]
    printed = []
    in_section = False
    for line in stdout.splitlines():
        if line.startswith("heads_denoising ("):
            in_section = True
        elif in_section and line.startswith("  "):
            printed.append(float(line.split()[-1]))
        elif in_section:
            break
    assert len(printed) == 8
    cells = top_cells(exp, 8)
    assert [round(c.mean, 4) for c in cells] == pytest.approx(printed, abs=1e-4)
    reference = no_effect_value(exp)
    strongest = np.unravel_index(np.nanargmax(np.abs(exp.mean - reference)), exp.mean.shape)
    assert cells[0].index == strongest
    assert cells[0].label == f"L{strongest[0]} H{strongest[1]}"


def test_an_unknown_kind_with_extra_datasets_still_loads(run_copy):
    with h5py.File(run_copy, "r+") as f:
        group = f["experiments/heads_denoising"]
        group.attrs["kind"] = "quantum_patching"
        group.attrs["method"] = "new"
        group.create_dataset("future_dataset", data=np.ones(8, dtype=np.uint8))
        f.create_dataset("activations/blocks.0.hook_z", data=np.zeros((2, 3)))
    result = load_results(run_copy)
    exp = result.experiments["heads_denoising"]
    assert exp.kind == "quantum_patching"
    assert exp.attributes["method"] == "new"
    assert exp.uninterpreted == ("future_dataset",)
    assert result.other_groups == ("activations",)
    assert exp.axes[0].labels == ("L0", "L1")


def test_a_new_axis_is_read_from_its_dimension_scale(run_copy):
    with h5py.File(run_copy, "r+") as f:
        group = f.create_group("experiments/experts")
        group.attrs["kind"] = "routing"
        group.attrs["metric"] = "logit_diff"
        axes = group.create_group("axes")
        for name, size in (("layer", 2), ("expert", 3)):
            axes.create_dataset(name, data=np.arange(size, dtype=np.int32))
            axes[name].make_scale(name)
        values = np.array([[-3.0, 1.0, 2.0], [0.5, -0.25, np.nan]], dtype=np.float32)
        mean = group.create_dataset("mean", data=values)
        mean.dims[0].attach_scale(axes["layer"])
        mean.dims[1].attach_scale(axes["expert"])
    exp = load_results(run_copy).experiments["experts"]
    assert exp.axis_names == ("layer", "expert")
    assert exp.axes[1].labels == ("expert 0", "expert 1", "expert 2")
    assert exp.effect is None and exp.n_pairs == 0
    assert per_pair_on_mean_scale(exp) is None
    # Strongest first by magnitude whatever the sign; the undefined cell is never ranked.
    ranked = top_cells(exp, 10)
    assert [c.label for c in ranked] == ["L0 expert 0", "L0 expert 2", "L0 expert 1",
                                         "L1 expert 0", "L1 expert 1"]
    assert [c.mean for c in ranked] == [-3.0, 2.0, 1.0, 0.5, -0.25]
    assert ranked[0].values == (0, 0) and ranked[4].index == (1, 1)


def test_a_group_without_mean_is_skipped_with_a_reason(run_copy):
    with h5py.File(run_copy, "r+") as f:
        del f["experiments/mlp_zero/mean"]
    result = load_results(run_copy)
    assert "mlp_zero" not in result.experiments
    assert result.skipped == {"mlp_zero": "no 'mean' dataset"}


def test_a_truncated_file_is_reported_as_truncated(run_file, tmp_path):
    cut = tmp_path / "cut.h5"
    shutil.copyfile(run_file, cut)
    with open(cut, "r+b") as f:
        f.truncate(cut.stat().st_size // 2)
    with pytest.raises(ResultFileError, match=r"cut\.h5: truncated HDF5 file"):
        load_results(cut)


def test_a_foreign_hdf5_file_is_named_as_not_a_result_file(tmp_path):
    foreign = tmp_path / "images.h5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("images", data=np.zeros((4, 8, 8)))
        f.create_dataset("labels", data=np.arange(4))
    expected = r"images\.h5: not a causeway result file.*holds: images, labels"
    with pytest.raises(ResultFileError, match=expected):
        load_results(foreign)


def test_a_non_hdf5_file_and_a_missing_file_get_their_own_message(tmp_path):
    notes = tmp_path / "notes.h5"
    notes.write_text("not HDF5 at all\n")
    with pytest.raises(ResultFileError, match="not an HDF5 file"):
        load_results(notes)
    with pytest.raises(ResultFileError, match="no such file"):
        load_results(tmp_path / "absent.h5")


def test_a_newer_schema_is_refused(run_copy):
    with h5py.File(run_copy, "r+") as f:
        f.attrs["schema"] = "causeway-results/2"
    with pytest.raises(ResultFileError, match="schema 'causeway-results/2' is not supported"):
        load_results(run_copy)
