"""Result files for the analysis tests, written by the C++ tool on the committed tiny GPT-2.

The binary comes from CAUSEWAY_BINARY (ctest sets it) or build/release/causeway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # the tests import the analysis package from the tree

TINY_MODEL = REPO_ROOT / "tests" / "data" / "tiny-gpt2"
PAIRS = REPO_ROOT / "tests" / "data" / "tiny-gpt2-patching-pairs.jsonl"

# One experiment per grid shape the report must draw, plus the pairs it must compare:
# denoising vs noising, and logit_diff vs prob vs normalized, of the same head sweep. The
# tables are deliberately not in alphabetical order (the report follows the config's order); the
# first is one whose figures are mostly coloured (the Chromium test looks at it).
RUN_EXPERIMENTS = """
[[experiment]]
name = "attn_layers"
sweep = "attn_out"
positions = "all"

[[experiment]]
name = "resid_denoising"
sweep = "resid_pre"
positions = "each"

[[experiment]]
name = "heads_denoising"
sweep = "attn_head_out"
positions = "all"

[[experiment]]
name = "heads_noising"
sweep = "attn_head_out"
positions = "all"
direction = "noising"

[[experiment]]
name = "heads_prob"
sweep = "attn_head_out"
positions = "all"
metric = "prob"

[[experiment]]
name = "heads_normalized"
sweep = "attn_head_out"
positions = "all"
metric = "normalized"

[[experiment]]
name = "block"
sweep = "block_every"

[[experiment]]
name = "mlp_zero"
kind = "ablation"
ablation = "zero"
sweep = "mlp_out"

[[experiment]]
name = "pattern"
sweep = "attn_head_pattern_dest_src"
"""



def causeway_binary() -> Path:
    path = Path(os.environ.get("CAUSEWAY_BINARY") or REPO_ROOT / "build" / "release" / "causeway")
    if not path.is_file():
        pytest.fail(f"causeway binary not found at {path}: build it (scripts/build.sh release) "
                    "or set CAUSEWAY_BINARY")
    return path


def run_causeway(folder: Path, data_file: Path, experiments: str,
                 name: str = "run") -> tuple[Path, str]:
    """Runs `causeway run` on a config written into `folder`; returns the file and stdout."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.toml"
    output = folder / f"{name}.h5"
    config.write_text(f'[model]\npath = "{TINY_MODEL}"\nthreads = 1\n'
                      f'[data]\nfile = "{data_file}"\n[output]\npath = "{output}"\n' + experiments)
    done = subprocess.run([str(causeway_binary()), "run", str(config), "--overwrite"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"causeway run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return output, done.stdout


@pytest.fixture(scope="session")
def run_output(tmp_path_factory) -> tuple[Path, str]:
    return run_causeway(tmp_path_factory.mktemp("run"), PAIRS, RUN_EXPERIMENTS)


@pytest.fixture(scope="session")
def run_file(run_output) -> Path:
    return run_output[0]


@pytest.fixture(scope="session")
def ragged_file(tmp_path_factory) -> Path:
    """A per-position run whose pair 0 lacks positions 5-7 and pair 2 positions 3-7 (NaN).

    causeway now refuses such a sweep over prompts of 5, 8 and 3 tokens (a position would be a
    different token in each pair), so the undefined cells are blanked here in a run of three
    8-token prompts; `prob` keeps the stored mean a plain mean over the defined pairs.
    """
    folder = tmp_path_factory.mktemp("ragged")
    pairs = folder / "ragged.jsonl"
    pairs.write_text("".join(PAIRS.read_text().splitlines(keepends=True)[:3]))
    experiments = ('[[experiment]]\nname = "resid"\nsweep = "resid_pre"\npositions = "each"\n'
                   'metric = "prob"\n')
    path = run_causeway(folder, pairs, experiments, "ragged")[0]
    with h5py.File(path, "r+") as f:
        values = f["experiments/resid/effect"][()]
        values[0, :, 5:] = np.nan
        values[2, :, 3:] = np.nan
        f["experiments/resid/effect"][...] = values
        f["experiments/resid/mean"][...] = np.nanmean(values, axis=0)
    return path


@pytest.fixture
def run_copy(run_file, tmp_path) -> Path:
    """A private copy of the run file that a test may rewrite."""
    copy = tmp_path / "copy.h5"
    shutil.copyfile(run_file, copy)
    return copy


def text(value) -> str:
    """An HDF5 string as the test reads it, independently of the package's decoding."""
    if isinstance(value, np.ndarray):
        value = value[()]
    return value.decode() if isinstance(value, (bytes, np.bytes_)) else str(value)


def scale_names(ds: h5py.Dataset) -> list[str]:
    return [text(ds.dims[d][0].attrs["NAME"]) for d in range(ds.ndim)]


def image_pixels(path: Path) -> np.ndarray:
    """RGB pixels of a PNG in [0, 1], shape (height, width, 3)."""
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3].astype(np.float64)


def assert_not_blank(path: Path) -> None:
    pixels = image_pixels(path)
    non_white = np.mean(pixels.min(axis=2) < 0.9)
    assert pixels.std() > 0.05, f"{path.name} is nearly uniform (std {pixels.std():.4f})"
    assert non_white > 0.02, f"{path.name}: only {non_white:.1%} of pixels are not white"
