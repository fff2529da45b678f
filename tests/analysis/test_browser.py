"""The report opens in headless Chromium and the page shows its figures.

Without Chromium the test skips, saying so; CAUSEWAY_REQUIRE_CHROMIUM=1 (set in CI) makes that
a failure instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import image_pixels

from analysis import load_results
from analysis.report import build_report

WINDOW = (1280, 2200)  # tall enough for the first experiment's heatmap and bar chart


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = ("headless Chromium not found (install Debian's 'chromium', e.g. with "
               "scripts/install-deps.sh)")
    if os.environ.get("CAUSEWAY_REQUIRE_CHROMIUM") == "1":
        pytest.fail(message + "; CAUSEWAY_REQUIRE_CHROMIUM=1 requires it")
    pytest.skip(message + "; set CAUSEWAY_REQUIRE_CHROMIUM=1 to fail instead of skipping")


def screenshot(browser: str, page: Path, out: Path, profile: Path) -> np.ndarray:
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={out}",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=90)
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    return image_pixels(out)


def coloured_fraction(pixels: np.ndarray) -> float:
    """Share of clearly coloured pixels: heatmap cells and bars, not black text on white."""
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    return float(np.mean(saturation > 0.25))


def test_the_report_page_shows_its_figures_in_chromium(run_file, tmp_path):
    browser = chromium()
    report = build_report(load_results(run_file), tmp_path / "report", k=5)
    shown = screenshot(browser, report.index, tmp_path / "shown.png", tmp_path / "profile")
    assert shown.shape[:2] == (WINDOW[1], WINDOW[0])

    # The same page with its figures gone: what a broken page would look like.
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copyfile(report.index, broken / "index.html")
    empty = screenshot(browser, broken / "index.html", tmp_path / "empty.png", tmp_path / "profile")

    # Without figures only the blue link text is coloured (about 1% of the window); the first
    # experiment's heatmap and bar chart add about 2.5% more, mostly blue (positive effects).
    with_figures, without = coloured_fraction(shown), coloured_fraction(empty)
    assert without < 0.015, f"{without:.1%} coloured without figures"
    assert with_figures > without + 0.015, f"{with_figures:.1%} vs {without:.1%} without figures"
    bluish = np.mean((shown[..., 2] - shown[..., 0]) > 0.3)
    assert bluish > np.mean((empty[..., 2] - empty[..., 0]) > 0.3) + 0.015
