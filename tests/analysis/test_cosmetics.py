"""What `analysis top`, the bar charts and the heatmaps print (issue 19, C): the no-effect
value said once, position labels without a repeated "pos N", colour bars over the values the
data reaches, counts in the singular for one, and no "-0"."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

from analysis import load_results
from analysis import heatmap as heatmap_module
from analysis.circuits import Circuit
from analysis.heatmap import heatmap_scale, plot_heatmap
from analysis.labels import cell_label, tick_label
from analysis.loader import Axis
from analysis.ranking import no_effect_value
from analysis.tables import format_number
from analysis.top import faithfulness_summary, format_circuit
from analysis.wording import counted


def analysis(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_top_states_the_no_effect_value_once_per_experiment(run_file):
    done = analysis("top", run_file, "-k", "2")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if "ranked by" in line]
    assert len(notes) == len(load_results(run_file).experiments)
    for line in notes:
        assert line.count("no effect =") == 1, line
    noising = next(line for line in notes if "(the clean run's logit_diff)" in line)
    value = no_effect_value(load_results(run_file).experiments["heads_noising"])
    assert f"where no effect = {value:.3f} (the clean run's logit_diff)" in noising


def test_a_position_without_a_common_token_is_named_once():
    # /data/position_labels holds "pos N" where the pairs have different tokens at N: the
    # cell is "L1 pos10", not "L1 pos10 'pos 10'"; a common token is still shown.
    layer = Axis("layer", (0, 1), ("L0", "L1"))
    pos = Axis("pos", (9, 10), (" to", "pos 10"))
    assert cell_label((layer, pos), (1, 1)) == "L1 pos10"
    assert cell_label((layer, pos), (1, 0)) == "L1 pos9 ' to'"
    assert [tick_label(pos, i) for i in range(2)] == ["9: to", "10"]


def test_heatmap_colour_bar_spans_only_the_values_the_data_reaches(run_copy, monkeypatch):
    result = load_results(run_copy)
    exp = result.experiments["heads_denoising"]
    centre = no_effect_value(exp)
    # Every mean lies above the corrupted run (no effect): the bar runs from there to the
    # largest mean, while the colours stay symmetric around no effect.
    scale = heatmap_scale(exp)
    assert np.nanmin(exp.mean) > centre
    assert scale.low == centre and scale.high == pytest.approx(np.nanmax(exp.mean))
    assert scale.limit == pytest.approx(np.nanmax(exp.mean) - centre)

    exp.mean = np.where(np.isnan(exp.mean), np.nan, centre + np.linspace(-0.5, 4.0, exp.mean.size)
                        .reshape(exp.mean.shape))
    scale = heatmap_scale(exp)
    assert (scale.low, scale.high) == pytest.approx((centre - 0.5, centre + 4.0))
    assert scale.limit == pytest.approx(4.0)

    drawn = {}

    def keep(fig, path):
        bar = fig.axes[-1]
        drawn["ylim"] = bar.get_ylim()
        return path

    monkeypatch.setattr(heatmap_module.figures, "save", keep)
    plot_heatmap(exp, run_copy.with_suffix(".png"))
    assert drawn["ylim"] == pytest.approx((centre - 0.5, centre + 4.0))


def test_a_normalized_heatmap_keeps_its_colours_but_not_an_unreached_bar(run_file):
    exp = load_results(run_file).experiments["heads_normalized"]
    exp.mean = np.full(exp.mean.shape, 0.25)
    exp.mean.flat[0] = 0.0
    scale = heatmap_scale(exp)
    # 0 and 1 keep their colours in every experiment (limit 1) but the bar stops at 0.25.
    assert scale.limit == 1.0
    assert (scale.low, scale.high) == (0.0, 0.25)


def test_counts_are_singular_for_one_and_no_number_prints_as_minus_zero():
    assert counted(1, "experiment") == "1 experiment"
    assert counted(2, "experiment") == "2 experiments"
    assert counted(0, "edge") == "0 edges"
    assert format_number(-1e-6) == "+0.0000"
    assert format_number(-1e-6, signed=False) == "0.0000"
    assert format_number(-0.25) == "-0.2500"
    circuit = Circuit("one", {"method": "acdc"}, {"recovered": -0.0001}, ("A0.0->Resid End",),
                      np.array([0.5]))
    assert faithfulness_summary(circuit) == "1 edge recovers 0.000 of the metric"
    assert format_circuit(circuit).splitlines()[0].endswith("[1 edge]")
    assert not math.isnan(circuit.recovered)

