"""Circuits a result file lacks or cannot measure (issue 19): a job killed in the circuit step
keeps its finished circuits and the tools name the missing ones (B13); a circuit whose clean and
all-ablated metrics agree has an undefined recovered share, shown as such and never plotted (B5).
The files come from the C++ tool on the committed tiny GPT-2."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import PAIRS, REPO_ROOT, TINY_MODEL, causeway_binary

from analysis import load_results
from analysis.report import build_report

CIRCUITS = """
[[experiment]]
name = "eap"
kind = "edges"
method = "eap"

[[circuit]]
name = "acdc"
method = "acdc"
threshold = 0.02

[[circuit]]
name = "eap_top"
method = "top"
experiment = "eap"
size = 12
"""

ONE_PAIR_MEAN = '[[circuit]]\nname = "c"\nablation = "mean"\npairs = 1\n'


def causeway_run(folder, tables: str, *flags: str, env: dict | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    config, output = folder / "run.toml", folder / "run.h5"
    config.write_text(f'[model]\npath = "{TINY_MODEL}"\nthreads = 1\n'
                      f'[data]\nfile = "{PAIRS}"\n[output]\npath = "{output}"\n' + tables)
    done = subprocess.run([str(causeway_binary()), "run", str(config), *flags],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    return done, output


def analysis(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def killed_file(tmp_path_factory):
    """A job SIGKILLed as it began its second circuit."""
    done, path = causeway_run(tmp_path_factory.mktemp("killed"), CIRCUITS,
                              env={"CAUSEWAY_FAULT_KILL_AT_CIRCUIT": "eap_top"})
    assert done.returncode == -9, done.stderr
    return path


@pytest.fixture(scope="module")
def undefined_file(tmp_path_factory):
    """Mean ablation over one pair: every edge ablates to the clean run itself."""
    done, path = causeway_run(tmp_path_factory.mktemp("undefined"), ONE_PAIR_MEAN,
                              "--allow-nonfinite")
    assert done.returncode == 0, done.stderr
    return path


def test_a_job_killed_in_the_circuit_step_keeps_the_finished_circuit_and_names_the_other(
        killed_file, tmp_path):
    result = load_results(killed_file)
    assert list(result.circuits) == ["acdc"]
    assert len(result.circuits["acdc"].edges) == 8
    assert result.missing_circuits == ("eap_top",)
    note = "incomplete: circuits not computed: eap_top"
    assert result.incomplete_note == note
    top = analysis("top", killed_file)
    assert top.returncode == 0, top.stderr
    assert top.stdout.splitlines()[0].startswith(note)
    assert "circuit acdc: acdc" in top.stdout
    report = analysis("report", killed_file, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    assert report.stdout.splitlines()[0].startswith(note)
    page = (tmp_path / "report" / "index.html").read_text()
    banner = page.index('class="banner" id="incomplete"')
    assert note in page[banner:banner + 200]


def test_a_file_without_completion_marks_names_the_configs_missing_circuits(killed_file,
                                                                            tmp_path):
    # As files written before the mark: no `complete` attribute, the unfinished group absent.
    copy = tmp_path / "old.h5"
    shutil.copyfile(killed_file, copy)
    with h5py.File(copy, "r+") as f:
        del f["circuits/eap_top"]
        del f["circuits/acdc"].attrs["complete"]
    result = load_results(copy)
    assert list(result.circuits) == ["acdc"]
    assert result.incomplete_note == "incomplete: circuits not computed: eap_top"


def test_unfinished_items_and_circuits_are_named_together(killed_file, tmp_path):
    copy = tmp_path / "items.h5"
    shutil.copyfile(killed_file, copy)
    with h5py.File(copy, "r+") as f:
        f["experiments/eap/done"][0] = 0
        total = f["experiments/eap/done"].size
    assert load_results(copy).incomplete_note == (
        f"incomplete: {total - 1} of {total} items done; circuits not computed: eap_top")


def test_undefined_recovery_is_said_and_not_plotted(undefined_file, tmp_path):
    result = load_results(undefined_file)
    circuit = result.circuits["c"]
    assert not circuit.recovery_defined
    assert math.isnan(circuit.recovered)
    assert result.incomplete_note == ""
    top = analysis("top", undefined_file)
    assert top.returncode == 0, top.stderr
    assert "recovered undefined: the clean and all-ablated metrics agree" in top.stdout
    assert "recover 0" not in top.stdout
    report = build_report(result, tmp_path / "report", 3)
    assert report.faithfulness is None
    assert "recovered undefined" in report.index.read_text()


def test_noise_an_older_file_stored_as_recovered_is_undefined(undefined_file, tmp_path):
    # Before NaN, such a circuit stored rounding noise: recovered 3.0, curve 5, -1, 2, 4, -2, ...
    copy = tmp_path / "noise.h5"
    shutil.copyfile(undefined_file, copy)
    with h5py.File(copy, "r+") as f:
        curve = f["circuits/c/faithfulness/recovered"]
        curve[...] = np.resize(np.array([5, -1, 2, 4, -2], dtype=np.float32), curve.shape)
        f["circuits/c"].attrs["recovered"] = 3.0
    circuit = load_results(copy).circuits["c"]
    assert math.isnan(circuit.recovered)
    assert build_report(load_results(copy), tmp_path / "report", 3).faithfulness is None
    assert "recovered undefined" in analysis("top", copy).stdout
