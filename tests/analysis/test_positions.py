"""Named positions (issue 10, C): the axis of a named-position sweep reads back labelled by the
names, and every position of /data/position_labels has a label."""

from __future__ import annotations

from conftest import run_causeway

from analysis import load_results
from analysis.labels import cell_label, tick_label

NAMED_PAIRS = (
    '{"clean": [763, 890, 970, 680, 446], "corrupted": [828, 890, 970, 680, 446], '
    '"answer": 657, "wrong": 355, "positions": {"X": 0, "END": -1}}\n'
    '{"clean": [308, 984, 715, 601, 950, 972, 329, 643], '
    '"corrupted": [308, 984, 715, 356, 950, 974, 329, 643], "answer": 766, "wrong": 677, '
    '"positions": {"X": 3, "END": 7}}\n')


def test_named_position_axis_is_labelled_by_name(tmp_path):
    pairs = tmp_path / "named.jsonl"
    pairs.write_text(NAMED_PAIRS)
    path, _ = run_causeway(tmp_path, pairs, '[[experiment]]\nname = "resid"\n'
                           'sweep = "resid_pre"\npositions = "named"\n', "named")
    result = load_results(path)
    exp = result.experiments["resid"]
    layer, pos = exp.axes
    assert pos.name == "pos" and pos.named and not layer.named
    assert pos.labels == ("X", "END")
    assert [tick_label(pos, i) for i in range(2)] == ["X", "END"]
    assert cell_label(exp.axes, (1, 1)) == "L1 pos END"
    assert exp.mean.shape == (2, 2)
    # One label per token position of the longest prompt; the prompts share no token.
    assert result.position_labels == tuple(f"pos {i}" for i in range(8))
