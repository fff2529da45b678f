"""`pip install ./analysis` gives a package that runs outside the repository."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


def test_pip_install_of_the_folder_runs_from_the_installed_copy(run_file, tmp_path):
    missing = [m for m in ("pip", "setuptools", "wheel") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"cannot build the package offline without {', '.join(missing)}")
    # Build from a copy, so that this test leaves nothing in the source tree whatever happens.
    source = tmp_path / "src" / "analysis"
    shutil.copytree(REPO_ROOT / "analysis", source,
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    before = sorted(p.name for p in source.iterdir())
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                           "--no-deps", "--no-index", "--quiet", "--target", str(target),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(target.glob("causeway_analysis-*.dist-info")), "no causeway-analysis metadata"
    # The build's files (build/, *.egg-info) land beside the package folder, not in it.
    assert sorted(p.name for p in source.iterdir()) == before

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}

    def installed(*args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=outside, env=env,
                              capture_output=True, text=True, timeout=120)

    where = installed("-c", "import analysis; print(analysis.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(target / "analysis")), where.stdout
    help_text = installed("-m", "analysis", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "report" in help_text.stdout and "diff" in help_text.stdout
    top = installed("-m", "analysis", "top", str(run_file), "-k", "1")
    assert top.returncode == 0, top.stderr
    assert "heads_denoising" in top.stdout
