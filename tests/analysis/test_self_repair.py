"""Issue 24: `analysis top` ranks a self_repair experiment's components by self-repair with all
their quantities, and the report draws each component's total against its direct effect."""

from __future__ import annotations

import numpy as np

from analysis.loader import load_results
from analysis.report import build_report
from analysis.self_repair import component_means, format_self_repair_top, ranked_components
from analysis.top import format_top
from conftest import PAIRS, assert_not_blank, run_causeway

EXPERIMENTS = """
[[experiment]]
name = "repair"
kind = "self_repair"
sweep = "attn_head_out"
positions = "all"
ablation = "mean"
"""


def test_top_ranks_components_by_self_repair(tmp_path):
    path, _ = run_causeway(tmp_path, PAIRS, EXPERIMENTS, "repair")
    exp = load_results(path).experiments["repair"]
    labels, q = component_means(exp)
    assert len(labels) == 8 and labels[0] == "L0 H0"
    np.testing.assert_allclose(q["self_repair"], q["total"] - q["direct"], atol=1e-6)
    np.testing.assert_allclose(q["repair_rest"], q["self_repair"] - q["ln_share"], atol=1e-6)
    order = ranked_components(exp, 8)
    strengths = np.abs(q["self_repair"][order])
    assert list(strengths) == sorted(strengths, reverse=True)
    text = format_top(exp, 3)
    assert text == format_self_repair_top(exp, 3)
    lines = text.splitlines()
    assert "ranked by |self_repair|" in lines[1]
    assert lines[2].split()[-5:] == ["total", "direct", "ln_share", "self_repair", "repair_rest"]
    assert lines[3].split()[1:3] == labels[order[0]].split()
    assert len(lines) == 3 + 3


def test_report_plots_total_against_direct(tmp_path):
    path, _ = run_causeway(tmp_path, PAIRS, EXPERIMENTS, "repair")
    report = build_report(load_results(path), tmp_path / "report")
    scatter = report.sections[0].scatter
    assert scatter is not None and scatter in report.figures
    assert_not_blank(scatter)
    assert "total effect against its direct effect" in (tmp_path / "report" / "index.html").read_text()
