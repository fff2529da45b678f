"""What the loader makes of a file's state and form: unfinished runs (done-bits), the config's
experiment order, typed or string attributes, axes named by dimension labels."""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
from conftest import REPO_ROOT, RUN_EXPERIMENTS

from analysis import load_results
from analysis.diff import compare_results
from analysis.report import build_report


def analysis(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def unset_done_bits(path, experiment: str, count: int) -> tuple[int, int]:
    """Clears the first `count` done-bits of one experiment; returns (done, total) of the file."""
    with h5py.File(path, "r+") as f:
        f[f"experiments/{experiment}/done"][:count] = 0
        bitmaps = [g["done"][()] for g in f["experiments"].values()]
        if "activations/done" in f:
            bitmaps.append(f["activations/done"][()])
    return (sum(int(np.count_nonzero(b)) for b in bitmaps), sum(b.size for b in bitmaps))


def test_top_and_report_say_a_run_is_incomplete_on_the_first_line(run_copy, tmp_path):
    done, total = unset_done_bits(run_copy, "heads_noising", 1)
    assert done == total - 1
    note = f"incomplete: {done} of {total} items done"
    assert load_results(run_copy).incomplete_note == note

    top = analysis("top", run_copy, "-k", "2")
    assert top.returncode == 0, top.stderr
    assert top.stdout.splitlines()[0].startswith(note)
    with h5py.File(run_copy, "r") as f:
        items = f["experiments/heads_noising/done"].size
    assert f"  incomplete: {items - 1} of {items} items done" in top.stdout  # under the experiment

    report = analysis("report", run_copy, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    assert report.stdout.splitlines()[0].startswith(note)
    page = (tmp_path / "report" / "index.html").read_text()
    banner = page.index('class="banner" id="incomplete"')
    assert banner < page.index("<table>")  # above everything else on the page
    assert note in page[banner:banner + 200]


def test_a_finished_run_says_nothing_about_completeness(run_file, tmp_path):
    result = load_results(run_file)
    assert result.incomplete_note == ""
    done, total = result.items_done
    assert done == total > 0
    top = analysis("top", run_file, "-k", "1")
    assert "incomplete" not in top.stdout
    report = build_report(result, tmp_path / "report", 3)
    assert 'class="banner"' not in report.index.read_text()


def test_experiments_are_listed_in_config_order(run_file, tmp_path):
    in_config = [line.split('"')[1] for line in RUN_EXPERIMENTS.splitlines()
                 if line.startswith("name")]
    assert in_config != sorted(in_config)  # HDF5 lists groups alphabetically
    result = load_results(run_file)
    assert list(result.experiments) == in_config
    report = build_report(result, tmp_path / "report", 3)
    assert [s.experiment.name for s in report.sections] == in_config
    page = report.index.read_text()
    positions = [page.index(f">{name}</h2>") for name in in_config]
    assert positions == sorted(positions)
    top = analysis("top", run_file, "-k", "1")
    headers = [line.split(":")[0] for line in top.stdout.splitlines()
               if line and not line.startswith(" ")]
    assert headers == in_config


def test_typed_and_string_attributes_load_alike(run_copy, tmp_path):
    strings = tmp_path / "strings.h5"
    shutil.copyfile(run_copy, strings)
    with h5py.File(run_copy, "r+") as f:
        group = f["experiments/heads_noising"]
        group.attrs["qk_fix"] = np.bool_(True)
        group.attrs["noise_scale"] = np.float64(3.0)
        group.attrs["window"] = np.int64(2)
    with h5py.File(strings, "r+") as f:
        group = f["experiments/heads_noising"]
        group.attrs["qk_fix"] = "true"
        group.attrs["noise_scale"] = "3.000000"
        group.attrs["window"] = "2"
    typed = load_results(run_copy).experiments["heads_noising"]
    text = load_results(strings).experiments["heads_noising"]
    for exp in (typed, text):
        assert exp.values["qk_fix"] is True
        assert exp.values["noise_scale"] == 3.0
        assert exp.values["window"] == 2
    assert typed.attributes["qk_fix"] == text.attributes["qk_fix"] == "true"
    assert typed.attributes["window"] == text.attributes["window"] == "2"
    diff = compare_results(load_results(run_copy), load_results(strings))
    assert next(e for e in diff.experiments if e.name == "heads_noising").attributes == {}


def test_axes_without_scales_are_named_by_their_dimension_labels(run_copy):
    with h5py.File(run_copy, "r+") as f:
        group = f["experiments/heads_denoising"]
        mean = group["mean"]
        for d, name in enumerate(("layer", "head")):
            for scale in list(mean.dims[d].values()):
                mean.dims[d].detach_scale(scale)
            mean.dims[d].label = name
    exp = load_results(run_copy).experiments["heads_denoising"]
    assert exp.axis_names == ("layer", "head")
    assert exp.axes[0].labels == ("L0", "L1")
