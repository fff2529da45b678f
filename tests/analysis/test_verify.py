"""An attribution run's `verify` check in the loader and the report."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import PAIRS, assert_not_blank, run_causeway

from analysis import load_results
from analysis.report import build_report

EXPERIMENTS = """
[[experiment]]
name = "heads_attribution"
kind = "attribution"
sweep = "attn_head_out"
positions = "all"
verify_top = 3
"""


@pytest.fixture(scope="module")
def verified_file(tmp_path_factory):
    return run_causeway(tmp_path_factory.mktemp("verify"), PAIRS, EXPERIMENTS, "verify")[0]


def test_verify_results_are_loaded_as_the_file_holds_them(verified_file):
    exp = load_results(verified_file).experiments["heads_attribution"]
    v = exp.verify
    assert v is not None and "verify" not in exp.uninterpreted
    with h5py.File(verified_file, "r") as f:
        group = f["experiments/heads_attribution/verify"]
        assert v.cells == tuple(int(c) for c in group["cell"][()])
        np.testing.assert_array_equal(v.estimate, group["estimate"][()])
        np.testing.assert_array_equal(v.actual, group["actual"][()])
        assert v.pearson_per_pair == pytest.approx(float(group.attrs["pearson_per_pair"]))
        assert v.pearson_of_means == pytest.approx(float(group.attrs["pearson_of_means"]))
    assert len(v.cells) == 3 and v.estimate.shape == (exp.n_pairs, 3)
    layer, head = np.unravel_index(v.cells[0], exp.mean.shape)
    assert v.labels[0] == f"L{layer} H{head}"


def test_the_report_shows_the_verify_scatter_with_its_correlations(verified_file, tmp_path):
    report = build_report(load_results(verified_file), tmp_path / "report", 3)
    section = report.sections[0]
    assert section.verify_figure is not None and section.verify_figure in report.figures
    assert_not_blank(section.verify_figure)
    page = report.index.read_text()
    v = section.experiment.verify
    assert section.verify_figure.name in page
    assert f"Pearson r {v.pearson_per_pair:.3f} over (pair, cell)" in page
    assert f"{v.pearson_of_means:.3f} over cell means" in page
