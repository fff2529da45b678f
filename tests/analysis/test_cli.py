"""`python3 -m analysis report|top|diff` as a user runs them: output, exit status, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import PAIRS, REPO_ROOT, RUN_EXPERIMENTS, causeway_binary, run_causeway


def analysis(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_top_prints_the_strongest_cells(run_file):
    done = analysis("top", run_file, "--experiment", "heads_denoising", "-k", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("heads_denoising: activation, attn_head_out")
    rows = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    with h5py.File(run_file, "r") as f:
        mean = f["experiments/heads_denoising/mean"][()]
        no_effect = f["experiments/heads_denoising"].attrs["no_effect"]
    layer, head = np.unravel_index(np.argmax(np.abs(mean - no_effect)), mean.shape)
    assert rows[0][1:3] == [f"L{layer}", f"H{head}"]
    assert float(rows[0][3]) == pytest.approx(mean[layer, head], abs=1e-4)


def test_top_lists_every_experiment_without_a_name(run_file):
    done = analysis("top", run_file, "-k", "1")
    assert done.returncode == 0, done.stderr
    headers = [line.split(":")[0] for line in done.stdout.splitlines()
               if line and not line.startswith(" ")]
    assert sorted(headers) == sorted(line.split('"')[1] for line in RUN_EXPERIMENTS.splitlines()
                                     if line.startswith("name"))


def test_top_names_the_known_experiments_for_an_unknown_one(run_file):
    assert_one_line_error(analysis("top", run_file, "--experiment", "nope"),
                          "no experiment 'nope'", "heads_denoising")


def test_report_writes_the_index_page(run_file, tmp_path):
    done = analysis("report", run_file, "--out", tmp_path / "out", "-k", "3")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "index.html").is_file()
    assert "open" in done.stdout and "index.html" in done.stdout


def test_diff_of_two_runs_of_one_config_agrees(run_file, tmp_path):
    again, _ = run_causeway(tmp_path, PAIRS, RUN_EXPERIMENTS, "again")
    done = analysis("diff", run_file, again)
    assert done.returncode == 0, done.stdout
    assert "result: the runs agree" in done.stdout
    assert "heads_denoising: same: max |A - B|: mean 0," in done.stdout


def test_diff_reports_changed_values_and_attributes(run_file, tmp_path):
    changed = tmp_path / "changed.h5"
    shutil.copyfile(run_file, changed)
    with h5py.File(changed, "r+") as f:
        f["experiments/heads_noising/mean"][0, 1] += 0.25
    done = analysis("diff", run_file, changed)
    assert done.returncode == 1, done.stdout
    assert "heads_noising: DIFFERS: max |A - B|: mean 0.25," in done.stdout
    assert "heads_denoising: same" in done.stdout
    assert analysis("diff", run_file, changed, "--tolerance", "0.3").returncode == 0

    with h5py.File(changed, "r+") as f:
        f["experiments/heads_prob"].attrs["metric"] = "logprob"
        del f["experiments/block"]
    done = analysis("diff", run_file, changed, "--tolerance", "0.3")
    assert done.returncode == 1
    assert "attribute metric: 'prob' -> 'logprob'" in done.stdout
    assert "block: DIFFERS: missing from B" in done.stdout


def test_every_command_gives_a_one_line_error_for_bad_files(run_file, tmp_path):
    truncated = tmp_path / "truncated.h5"
    shutil.copyfile(run_file, truncated)
    with open(truncated, "r+b") as f:
        f.truncate(truncated.stat().st_size // 3)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("weights", data=np.ones(3))
    text_file = tmp_path / "run.h5"
    text_file.write_text("hello\n")

    assert_one_line_error(analysis("report", truncated, "--out", tmp_path / "r"),
                          "truncated.h5", "truncated HDF5 file")
    assert_one_line_error(analysis("top", foreign), "foreign.h5", "not a causeway result file")
    assert_one_line_error(analysis("diff", run_file, text_file), "run.h5", "not an HDF5 file")
    assert not (tmp_path / "r").exists()


def test_the_readme_example_runs_and_reports(tmp_path):
    result = tmp_path / "example.h5"
    config = REPO_ROOT / "analysis" / "examples" / "tiny-gpt2.toml"
    done = subprocess.run([str(causeway_binary()), "run", str(config), "--out", str(result), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = analysis("report", result, "--out", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report/figures/every_block_denoising_heatmap.png").is_file()
