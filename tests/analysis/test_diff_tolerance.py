"""`analysis diff`: a tolerance relative to each array's scale, and the config keys that
differ."""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
from conftest import REPO_ROOT


def analysis(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def scaled_pair(run_file, tmp_path, scale: float, change: float):
    """Two copies whose heads_noising mean is the run's times `scale`, and the second's also
    times (1 + change)."""
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, factor in ((a, scale), (b, scale * (1 + change))):
        shutil.copyfile(run_file, path)
        with h5py.File(path, "r+") as f:
            mean = f["experiments/heads_noising/mean"]
            mean[...] = mean[()] * factor
    return a, b


def test_large_values_that_agree_to_float_precision_are_the_same(run_file, tmp_path):
    # Values in the thousands that differ by 1e-6 relative: an absolute 1e-5 would call this a
    # difference; relative to the scale it is rounding.
    a, b = scaled_pair(run_file, tmp_path, 1e4, 1e-6)
    done = analysis("diff", a, b)
    assert done.returncode == 0, done.stdout
    assert "heads_noising: same" in done.stdout
    assert "tolerance rtol 1e-05 x max |A|" in done.stdout


def test_small_values_that_change_by_five_percent_differ(run_file, tmp_path):
    # Values near 1e-4 (probabilities, say) that move by 5%: under an absolute 1e-5 they would
    # pass; relative to their scale they differ.
    a, b = scaled_pair(run_file, tmp_path, 1e-4, 0.05)
    done = analysis("diff", a, b)
    assert done.returncode == 1, done.stdout
    assert "heads_noising: DIFFERS" in done.stdout
    assert "over the tolerance: mean (allowed" in done.stdout
    assert analysis("diff", a, b, "--rtol", "0.1").returncode == 0


def test_changed_config_keys_are_listed(run_file, tmp_path):
    changed = tmp_path / "changed.h5"
    shutil.copyfile(run_file, changed)
    with h5py.File(changed, "r+") as f:
        config = f["meta"].attrs["config"]
        config = config.decode() if isinstance(config, bytes) else str(config)
        assert 'direction = "noising"' in config
        f["meta"].attrs["config"] = (config.replace('direction = "noising"', 'direction = "denoising"')
                                     .replace("threads = 1", "threads = 4"))
    done = analysis("diff", run_file, changed)
    assert done.returncode == 0, done.stdout  # the config alone changes no result
    assert "config experiment['heads_noising'].direction (not counted): 'noising' -> 'denoising'" \
        in done.stdout
    assert "config model.threads (not counted): '1' -> '4'" in done.stdout
    assert "meta config" not in done.stdout


def with_no_effect_scaled(run_file, path, factor: float):
    """A copy whose heads_noising `no_effect` attribute is the run's times `factor`."""
    shutil.copyfile(run_file, path)
    with h5py.File(path, "r+") as f:
        group = f["experiments/heads_noising"]
        group.attrs["no_effect"] = float(group.attrs["no_effect"]) * factor
    return path


def test_a_real_attribute_within_the_tolerance_is_the_same(run_file, tmp_path):
    # A no_effect that moved by 2e-7 relative (float rounding of the same baseline) is not a
    # difference, as the arrays' 1e-5 relative tolerance says; 1e-3 relative is.
    close = with_no_effect_scaled(run_file, tmp_path / "close.h5", 1 + 2e-7)
    done = analysis("diff", run_file, close)
    assert done.returncode == 0, done.stdout
    assert "heads_noising: same" in done.stdout
    assert "result: the runs agree" in done.stdout

    far = with_no_effect_scaled(run_file, tmp_path / "far.h5", 1 + 1e-3)
    done = analysis("diff", run_file, far)
    assert done.returncode == 1, done.stdout
    assert "heads_noising: DIFFERS" in done.stdout
    assert "attribute no_effect" in done.stdout
    assert analysis("diff", run_file, far, "--rtol", "1e-2").returncode == 0
