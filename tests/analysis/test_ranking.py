"""Rankings and heatmaps measure from the experiment's no-effect value: 1 for a noising run's
normalized mean, 0 for a denoising one's, the target run's baseline for raw metrics."""

from __future__ import annotations

import csv
import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import REPO_ROOT, image_pixels

from analysis import load_results
from analysis.comparisons import find_comparisons, strongest_cells
from analysis.ranking import no_effect_value, scale_ticks, top_cells
from analysis.report import build_report

# A noising run's normalized means (layer x head): the strongest cells are far BELOW 1
# (0.2, 0.6); ranked by |mean| instead, 1.3 and 1.1 would come first.
NOISING_MEANS = np.array([[1.3, 0.2, 1.0, 0.85], [0.95, 1.1, 0.6, 1.02]], dtype=np.float32)
EXPECTED_ORDER = ["L0 H1", "L1 H2", "L0 H0", "L0 H3", "L1 H1"]


def make_normalized_noising(path, keep_no_effect: bool = True) -> None:
    with h5py.File(path, "r+") as f:
        group = f["experiments/heads_noising"]
        group.attrs["metric"] = "normalized"
        group["mean"][...] = NOISING_MEANS
        del group["effect"]  # per-pair values of another metric would not match these means
        if keep_no_effect:
            group.attrs["no_effect"] = 1.0
        else:
            del group.attrs["no_effect"]


def analysis(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("keep_no_effect", [True, False])
def test_a_noising_run_ranks_cells_far_below_one_first(run_copy, keep_no_effect):
    make_normalized_noising(run_copy, keep_no_effect)
    exp = load_results(run_copy).experiments["heads_noising"]
    assert no_effect_value(exp) == 1.0  # stored, or derived from metric and direction
    assert [c.label for c in top_cells(exp, 5)] == EXPECTED_ORDER

    done = analysis("top", run_copy, "--experiment", "heads_noising", "-k", "5")
    assert done.returncode == 0, done.stderr
    assert "ranked by |mean - no effect| where no effect = 1.000" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [" ".join(r[1:3]) for r in rows] == EXPECTED_ORDER


def test_the_report_ranks_and_captions_by_distance_from_no_effect(run_copy, tmp_path):
    make_normalized_noising(run_copy)
    report = build_report(load_results(run_copy), tmp_path / "report", 5)
    section = next(s for s in report.sections if s.experiment.name == "heads_noising")
    with section.csv.open(newline="") as table:
        rows = list(csv.DictReader(table))
    assert [r["label"] for r in rows] == EXPECTED_ORDER
    assert float(rows[0]["mean_minus_no_effect"]) == pytest.approx(0.2 - 1.0, abs=1e-6)
    assert "ranked by |mean - no effect| where no effect = 1.000" in section.markdown.read_text()
    page = report.index.read_text()
    assert "heads_noising: top 5, ranked by |mean - no effect| where no effect = 1.000" in page
    assert "0 = corrupted, 1 = clean (no effect)" in page


def test_a_noising_heatmap_is_centred_on_one(run_copy, tmp_path):
    # Every mean but one is below 1: centred on 1 they are red (away from clean); a scale
    # centred on 0 would paint them all blue.
    make_normalized_noising(run_copy)
    report = build_report(load_results(run_copy), tmp_path / "report", 5)
    section = next(s for s in report.sections if s.experiment.name == "heads_noising")
    pixels = image_pixels(section.heatmap)
    red, blue = pixels[..., 0], pixels[..., 2]
    assert np.mean((red - blue) > 0.3) > 0.03
    assert scale_ticks(section.experiment) == [(0.0, "0 = corrupted"), (1.0, "1 = clean (no effect)")]


def test_colour_bar_ticks_say_what_zero_and_one_mean(run_file):
    result = load_results(run_file)
    assert scale_ticks(result.experiments["heads_normalized"]) == [
        (0.0, "0 = corrupted (no effect)"), (1.0, "1 = clean")]
    ablation = result.experiments["mlp_zero"]
    [(value, text)] = scale_ticks(ablation)
    assert text == f"{value:.3g} = no effect"
    # A raw metric's no effect is its target's baseline: the clean run for ablation.
    assert value == no_effect_value(ablation) == pytest.approx(
        float(np.nanmean(ablation.baselines["clean_metric"])), abs=1e-5)


def test_comparisons_name_the_cells_furthest_from_each_no_effect(run_copy):
    # heads_denoising (denoising) against heads_noising made normalized noising: the named
    # cells are those far below 1 in the noising run, not those with the largest |mean|.
    make_normalized_noising(run_copy)
    with h5py.File(run_copy, "r+") as f:
        group = f["experiments/heads_denoising"]
        group.attrs["metric"] = "normalized"
        group["mean"][...] = np.full((2, 4), 0.01, dtype=np.float32)  # nothing restores
        group.attrs["no_effect"] = 0.0
        del group["effect"]
    result = load_results(run_copy)
    pair = next(c for c in find_comparisons(list(result.experiments.values()))
                if {c.first.name, c.second.name} == {"heads_denoising", "heads_noising"})
    names = [result.experiments["heads_noising"].axes[0].labels[i // 4] + " "
             + result.experiments["heads_noising"].axes[1].labels[i % 4]
             for i in strongest_cells(pair, 3)]
    assert names == EXPECTED_ORDER[:3]
