"""`build_report`: every figure written and not blank, tables equal to the file, the index
page linking all of it, and comparisons found where the file has them."""

from __future__ import annotations

import csv
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_not_blank, image_pixels

from analysis import load_results
from analysis.figures import symmetric_limit
from analysis.ranking import no_effect_value
from analysis.report import build_report

K = 5


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a" and not attrs.get("href", "#").startswith("#"):
            self.hrefs.append(attrs["href"])


def page_links(index: Path) -> _Links:
    parser = _Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def report(run_file, tmp_path_factory):
    return build_report(load_results(run_file), tmp_path_factory.mktemp("report"), K)


def test_every_experiment_gets_a_heatmap_a_chart_and_tables(report, run_file):
    with h5py.File(run_file, "r") as f:
        names = sorted(f["experiments"].keys())
    assert sorted(s.experiment.name for s in report.sections) == names
    written = sorted(p.name for p in (report.out_dir / "figures").iterdir())
    assert written == sorted(p.name for p in report.figures)
    assert len(report.figures) == 2 * len(names) + len(report.comparisons)
    for figure in report.figures:
        assert_not_blank(figure)
    assert len(report.tables) == 2 * len(names)
    assert all(p.stat().st_size > 0 for p in report.tables)


def test_heatmap_colours_are_centred_at_no_effect_for_denoising(report):
    # heads_denoising holds raw logit differences, all below 0 but above the corrupted run's
    # (its no-effect value): centred on no effect the heatmap is blue with no red, where a scale
    # centred at zero would paint every cell red and a min-to-max scale the smallest ones.
    section = next(s for s in report.sections if s.experiment.name == "heads_denoising")
    mean, no_effect = section.experiment.mean, no_effect_value(section.experiment)
    assert np.nanmax(mean) < 0 and np.nanmin(mean) > no_effect
    pixels = image_pixels(section.heatmap)
    red, blue = pixels[..., 0], pixels[..., 2]
    strongly_blue = np.mean((blue - red) > 0.3)
    strongly_red = np.mean((red - blue) > 0.3)
    assert strongly_blue > 0.05
    assert strongly_red < 0.01  # only the colour bar's lower half is red
    assert symmetric_limit(np.array([-0.5, 0.2, np.nan])) == 0.5
    assert symmetric_limit(np.array([np.nan, 0.0])) == 1.0


def test_csv_rows_are_the_strongest_means_in_the_file(report, run_file):
    section = next(s for s in report.sections if s.experiment.name == "heads_denoising")
    with h5py.File(run_file, "r") as f:
        mean = f["experiments/heads_denoising/mean"][()]
        no_effect = f["experiments/heads_denoising"].attrs["no_effect"]
    with section.csv.open(newline="") as table:
        rows = list(csv.DictReader(table))
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, K + 1)]
    for row in rows:
        layer, head = int(row["layer"]), int(row["head"])
        assert float(row["mean"]) == pytest.approx(mean[layer, head], abs=1e-7)
        assert float(row["mean_minus_no_effect"]) == pytest.approx(mean[layer, head] - no_effect,
                                                                   abs=1e-6)
        assert row["label"] == f"L{layer} H{head}"
        assert float(row["pair_std"]) > 0
        assert row["pairs"] == "6"
    strongest = sorted(np.abs(mean - no_effect).ravel(), reverse=True)[:K]
    assert [abs(float(r["mean"]) - no_effect) for r in rows] == pytest.approx(strongest, abs=1e-6)


def test_markdown_table_has_a_row_per_cell(report):
    section = next(s for s in report.sections if s.experiment.name == "block")
    lines = section.markdown.read_text().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == K + 2
    assert table[0].split("|")[1:4] == [" rank ", " label ", " component "]
    assert "hook_" in table[2]


def test_index_page_shows_every_figure_and_links_every_table(report):
    links = page_links(report.index)
    shown = {report.out_dir / src for src in links.images}
    assert shown == set(report.figures)
    linked = {report.out_dir / href for href in links.hrefs}
    assert set(report.tables) <= linked
    assert all(target.exists() for target in linked)
    page = report.index.read_text()
    for section in report.sections:
        assert f">{section.experiment.name}</h2>" in page


def test_denoising_vs_noising_and_metric_comparisons_are_found(report):
    found = {(c.comparison.first.name, c.comparison.second.name, c.comparison.attribute)
             for c in report.comparisons}
    assert found == {("heads_denoising", "heads_noising", "direction"),
                     ("heads_denoising", "heads_prob", "metric"),
                     ("heads_denoising", "heads_normalized", "metric"),
                     ("heads_normalized", "heads_prob", "metric")}
    for c in report.comparisons:
        expected = np.corrcoef(c.comparison.first.mean.ravel(), c.comparison.second.mean.ravel())
        assert c.correlation == pytest.approx(expected[0, 1])


def test_activation_vs_attribution_is_compared_and_plotted(run_copy, tmp_path):
    with h5py.File(run_copy, "r+") as f:
        f.copy("experiments/heads_denoising", "experiments/heads_attribution")
        group = f["experiments/heads_attribution"]
        group.attrs["kind"] = "attribution"
        mean = group["mean"][()]
        group["mean"][...] = 0.8 * mean + 0.05 * np.sin(np.arange(mean.size)).reshape(mean.shape)
        del group["effect"]  # an estimate without per-pair values
    report = build_report(load_results(run_copy), tmp_path / "report", K)
    comparison = next(c for c in report.comparisons if c.comparison.attribute == "kind")
    assert comparison.comparison.first.kind == "activation"
    assert comparison.comparison.second.name == "heads_attribution"
    with h5py.File(run_copy, "r") as f:
        x = f["experiments/heads_denoising/mean"][()].ravel()
        y = f["experiments/heads_attribution/mean"][()].ravel()
    assert comparison.correlation == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert_not_blank(comparison.figure)
    section = next(s for s in report.sections if s.experiment.name == "heads_attribution")
    assert not section.has_spread
    assert_not_blank(section.top_chart)


def test_an_unknown_kind_still_plots(run_copy, tmp_path):
    with h5py.File(run_copy, "r+") as f:
        f["experiments/pattern"].attrs["kind"] = "quantum_patching"
        f.create_dataset("experiments/pattern/future_dataset", data=np.ones(3, dtype=np.uint8))
    report = build_report(load_results(run_copy), tmp_path / "report", K)
    section = next(s for s in report.sections if s.experiment.name == "pattern")
    assert section.experiment.kind == "quantum_patching"
    assert_not_blank(section.heatmap)
    assert_not_blank(section.top_chart)
    page = report.index.read_text()
    assert "quantum_patching" in page and "future_dataset" in page


def test_experiment_names_become_safe_unique_file_names(run_copy, tmp_path):
    with h5py.File(run_copy, "r+") as f:
        f.copy("experiments/heads_denoising", "experiments/heads denoising?")
        f.copy("experiments/heads_denoising", "experiments/heads:denoising")
    report = build_report(load_results(run_copy), tmp_path / "report", K)
    heatmaps = [s.heatmap.name for s in report.sections]
    assert len(set(heatmaps)) == len(heatmaps)
    assert all(" " not in name and "?" not in name and ":" not in name for name in heatmaps)


def test_single_value_and_empty_grids_are_drawn(run_copy, tmp_path):
    with h5py.File(run_copy, "r+") as f:
        f.create_dataset("experiments/scalar/mean", data=np.float32(0.75))
        f.create_dataset("experiments/empty/mean", data=np.zeros((2, 0), dtype=np.float32))
    report = build_report(load_results(run_copy), tmp_path / "report", K)
    sections = {s.experiment.name: s for s in report.sections}
    assert sections["attn_layers"].experiment.axis_names == ("layer",)
    assert_not_blank(sections["attn_layers"].heatmap)
    assert [c.mean for c in sections["scalar"].cells] == [0.75]
    assert_not_blank(sections["scalar"].heatmap)
    assert sections["empty"].cells == [] and sections["empty"].heatmap.is_file()
