"""Edge experiments and circuits (issue 13): loading, `top`, and the report's circuit drawing,
faithfulness plot and edge heatmap, on synthetic files written with h5py (edge_files.py)."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from html.parser import HTMLParser

import h5py
import numpy as np
import pytest
from conftest import REPO_ROOT, assert_not_blank, image_pixels
from edge_files import (ACDC_EDGES, ACDC_RATE, ACDC_SCORES, EAP_RATE, N_LAYER, SECOND_EDGE,
                        SECOND_MEAN, STRONGEST_EDGE, STRONGEST_MEAN, edge_mask,
                        receiver_names, sender_names, write_circuit, write_edge_experiment,
                        write_edges_file)

from analysis import Axis, load_results
from analysis.circuit_figure import INPUT_COLOURS, MLP_LIFT, node_layout, plot_circuit
from analysis.circuits import Circuit, Faithfulness
from analysis.edges import parse_edge, parse_node
from analysis.faithfulness import uses_log_scale
from analysis.figures import MISSING_COLOUR
from analysis.heatmap import layer_starts
from analysis.ranking import no_effect_value, per_pair_on_mean_scale, top_cells
from analysis.report import build_report

K = 5


@pytest.fixture(scope="module")
def edges_file(tmp_path_factory):
    return write_edges_file(tmp_path_factory.mktemp("edges") / "edges.h5")


@pytest.fixture(scope="module")
def report(edges_file, tmp_path_factory):
    return build_report(load_results(edges_file), tmp_path_factory.mktemp("report"), K)


def analysis(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_node_and_edge_names_parse_to_layers_and_head_inputs():
    assert parse_node("Resid Start")[0].layer == -1
    node, head_input = parse_node("A11.7.K")
    assert (node.name, node.kind, node.layer, node.head, head_input) == ("A11.7", "head", 11, 7,
                                                                          "K")
    assert parse_node("A3.0")[0].name == "A3.0" and parse_node("A3.0")[1] == ""
    assert (parse_node("MLP 4")[0].kind, parse_node("MLP 4")[0].layer) == ("mlp", 4)
    assert parse_node("Resid End")[0].kind == "resid_end"
    assert parse_node("embed")[0].kind == "other"
    edge = parse_edge("MLP 0->A1.2.V")
    assert (edge.sender.name, edge.receiver.name, edge.head_input) == ("MLP 0", "A1.2", "V")
    assert parse_edge("A0.0 A1.1") is None


def test_edge_experiment_axes_are_the_node_names(edges_file):
    exp = load_results(edges_file).experiments["eap_edges"]
    assert exp.is_edges and exp.axis_names == ("sender", "receiver")
    assert exp.axes[0].labels == tuple(sender_names())
    assert exp.axes[1].labels == tuple(receiver_names())
    assert exp.uninterpreted == ()
    np.testing.assert_array_equal(exp.edge_mask, edge_mask().astype(bool))


def test_pairs_of_nodes_without_an_edge_are_undefined_not_zero(edges_file):
    exp = load_results(edges_file).experiments["eap_edges"]
    mask = edge_mask().astype(bool)
    with h5py.File(edges_file, "r") as f:
        mean = f["experiments/eap_edges/mean"][()]
        effect = f["experiments/eap_edges/effect"][()]
    assert np.isnan(exp.mean[~mask]).all() and np.isnan(exp.effect[:, ~mask]).all()
    np.testing.assert_array_equal(exp.mean[mask], mean[mask])
    np.testing.assert_array_equal(exp.effect[:, mask], effect[:, mask])
    # Resid Start feeds every receiver; nothing feeds A0.0's query but Resid Start.
    assert mask[0].all() and mask[:, 0].sum() == 1


def test_edges_rank_by_absolute_score_with_their_names(edges_file):
    exp = load_results(edges_file).experiments["eap_edges"]
    assert no_effect_value(exp) == 0.0
    per_pair = per_pair_on_mean_scale(exp)
    assert per_pair is not None
    cells = top_cells(exp, 2, per_pair)
    assert [c.label for c in cells] == [STRONGEST_EDGE, SECOND_EDGE]
    assert [c.mean for c in cells] == pytest.approx([STRONGEST_MEAN, SECOND_MEAN], abs=1e-6)
    # The planted edges' pairs are mean + (-0.2, 0.2, -0.1, 0.1): sample std sqrt(0.1 / 3).
    assert cells[0].pair_std == pytest.approx(math.sqrt(0.1 / 3), abs=1e-6)
    assert len(top_cells(exp, 10_000)) == edge_mask().sum()  # only existing edges are ranked


def test_axes_come_from_the_name_datasets_without_attached_scales(tmp_path):
    path = write_edges_file(tmp_path / "edges.h5", circuits=False)
    with h5py.File(path, "r+") as f:
        group = f["experiments/eap_edges"]
        mean = group["mean"][()]
        del group["mean"]
        group.create_dataset("mean", data=mean)  # no scales, no labels
    exp = load_results(path).experiments["eap_edges"]
    assert exp.axis_names == ("sender", "receiver")
    assert exp.axes[1].labels[-1] == "Resid End"
    assert top_cells(exp, 1)[0].label == STRONGEST_EDGE


def test_circuits_are_read_with_their_faithfulness_curves(edges_file):
    result = load_results(edges_file)
    assert list(result.circuits) == ["ioi_acdc", "ioi_eap"]
    assert result.other_groups == () and result.skipped == {}
    acdc = result.circuits["ioi_acdc"]
    assert acdc.edges == ACDC_EDGES
    np.testing.assert_allclose(acdc.scores, ACDC_SCORES, rtol=1e-6)
    assert acdc.values["threshold"] == 0.05 and acdc.method == "acdc"
    assert acdc.selection == "threshold 0.05"
    curve = acdc.faithfulness
    np.testing.assert_array_equal(curve.edges, np.arange(len(ACDC_EDGES) + 1))
    assert (curve.clean_metric, curve.ablated_metric) == (3.0, -1.0)
    assert curve.recovered_at(6) == pytest.approx(1 - math.exp(-6 / ACDC_RATE))
    assert curve.metric[6] == pytest.approx(-1.0 + 4.0 * curve.recovered[6])
    assert math.isnan(curve.recovered_at(99))
    eap = result.circuits["ioi_eap"]
    assert eap.values["size"] == 4 and eap.selection == "top 4 edges"
    assert eap.attributes["ranking"] == "eap_edges"
    assert eap.edges[:2] == (STRONGEST_EDGE, SECOND_EDGE)


def test_a_broken_circuit_is_skipped_with_its_reason(tmp_path):
    path = write_edges_file(tmp_path / "edges.h5")
    with h5py.File(path, "r+") as f:
        write_circuit(f, "short_scores", {"method": "eap"}, ["A0.0->MLP 0", "A0.1->MLP 0"],
                      [0.5], np.arange(3), EAP_RATE)
        del f["circuits/ioi_eap/faithfulness/recovered"]
    result = load_results(path)
    assert result.skipped == {"circuits/short_scores": "'scores' holds 1 values for 2 edges"}
    eap = result.circuits["ioi_eap"]
    assert eap.faithfulness is None
    assert eap.uninterpreted == ("faithfulness (no 1-D numeric 'recovered')",)


def test_top_prints_the_strongest_edge_by_name(edges_file):
    done = analysis("top", edges_file, "--experiment", "eap_edges", "-k", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("eap_edges: edges, eap, denoising")
    rows = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert rows[0][1:] == [STRONGEST_EDGE, "+2.5000", f"{math.sqrt(0.1 / 3):.4f}"]
    assert rows[1][1:4] == ["MLP", "1->Resid", "End"] and rows[1][4] == "-1.5000"


def test_top_lists_a_circuits_kept_edges_in_order(edges_file):
    done = analysis("top", edges_file, "--circuit", "ioi_acdc")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "circuit ioi_acdc: acdc, threshold 0.05, corrupted ablation, logit_diff  " \
                       "[6 edges]"
    recovered = 1 - math.exp(-6 / ACDC_RATE)
    assert f"6 edges recover {recovered:.3f} of the metric" in lines[1]
    rows = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert [" ".join(r[1:-1]) for r in rows] == list(ACDC_EDGES)
    assert [float(r[-1]) for r in rows] == pytest.approx(ACDC_SCORES, abs=1e-4)


def test_top_without_a_name_lists_experiments_then_circuits(edges_file):
    done = analysis("top", edges_file, "-k", "1")
    assert done.returncode == 0, done.stderr
    headers = [line.split(":")[0] for line in done.stdout.splitlines()
               if line and not line.startswith(" ")]
    assert headers == ["eap_edges", "eap_ig_edges", "circuit ioi_acdc", "circuit ioi_eap"]
    assert "... 5 more (-k to show more)" in done.stdout


def test_top_names_the_known_circuits_for_an_unknown_one(edges_file):
    done = analysis("top", edges_file, "--circuit", "nope")
    assert done.returncode == 2
    assert "no circuit 'nope' (known: ioi_acdc, ioi_eap)" in done.stderr


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_report_draws_each_circuit_and_one_faithfulness_plot(report):
    assert [c.circuit.name for c in report.circuits] == ["ioi_acdc", "ioi_eap"]
    assert report.faithfulness is not None and report.faithfulness.name == "faithfulness.png"
    for figure in [c.figure for c in report.circuits] + [report.faithfulness]:
        assert_not_blank(figure)
    parser = _Images()
    parser.feed(report.index.read_text(encoding="utf-8"))
    assert {report.out_dir / src for src in parser.images} == set(report.figures)
    assert {c.figure for c in report.circuits} | {report.faithfulness} <= set(report.figures)
    page = report.index.read_text()
    assert '<h2 id="circuit-0">circuit ioi_acdc</h2>' in page
    assert '<h2 id="faithfulness">Faithfulness</h2>' in page
    assert "6 edges recover" in page


def test_circuit_csv_lists_every_kept_edge(report):
    section = next(c for c in report.circuits if c.circuit.name == "ioi_acdc")
    with section.csv.open(newline="") as table:
        rows = list(csv.DictReader(table))
    assert [r["edge"] for r in rows] == list(ACDC_EDGES)
    assert (rows[0]["sender"], rows[0]["receiver"], rows[0]["input"]) == ("A0.1", "A2.0", "K")
    assert rows[1]["input"] == "" and rows[1]["receiver"] == "Resid End"
    assert [float(r["score"]) for r in rows] == pytest.approx(ACDC_SCORES, abs=1e-6)


def _pixels_of_colour(pixels: np.ndarray, colour: str) -> int:
    """Pixels of `colour` drawn over white at any opacity from 0.3: each channel equally far
    from white, relative to the colour's own distance from white."""
    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    opacity = (1.0 - pixels) / (1.0 - rgb)
    return int(np.count_nonzero((opacity.min(axis=2) > 0.3)
                                & (opacity.max(axis=2) - opacity.min(axis=2) < 0.08)))


def test_circuit_drawing_colours_edges_by_head_input(edges_file, tmp_path):
    # Each of the ACDC circuit's edges into a query, a key and a value adds pixels of its colour
    # (the legend shows all three colours either way).
    acdc = load_results(edges_file).circuits["ioi_acdc"]
    full = image_pixels(plot_circuit(acdc, tmp_path / "full.png"))
    for head_input, edge in (("Q", "Resid Start->A0.1.Q"), ("K", "A0.1->A2.0.K"),
                             ("V", "A0.0->A1.0.V")):
        keep = [i for i, e in enumerate(acdc.edges) if e != edge]
        without = Circuit(acdc.name, acdc.attributes, acdc.values,
                          tuple(acdc.edges[i] for i in keep), acdc.scores[keep])
        fewer = image_pixels(plot_circuit(without, tmp_path / f"no_{head_input}.png"))
        colour = INPUT_COLOURS[head_input]
        assert _pixels_of_colour(full, colour) > _pixels_of_colour(fewer, colour) + 20, head_input


def test_nodes_are_layered_input_at_the_bottom_output_at_the_top():
    edges = [parse_edge(e) for e in ACDC_EDGES]
    nodes = list({n.name: n for e in edges for n in (e.sender, e.receiver)}.values())
    layout = node_layout(nodes)
    assert layout.n_layers == N_LAYER and layout.n_columns == 2
    y = {name: pos[1] for name, pos in layout.positions.items()}
    assert y["Resid Start"] == -1 and y["Resid End"] == N_LAYER
    assert y["A0.1"] == 0 and y["A2.0"] == 2 and y["MLP 1"] == 1 + MLP_LIFT
    assert layout.positions["A0.1"][0] == 1 and layout.positions["A0.0"][0] == 0
    assert all(y[e.sender.name] < y[e.receiver.name] for e in edges)  # every edge points up


def test_edge_heatmap_greys_out_pairs_without_an_edge(report):
    section = next(s for s in report.sections if s.experiment.name == "eap_edges")
    pixels = image_pixels(section.heatmap)
    grey = np.array([int(MISSING_COLOUR[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    assert np.mean(np.abs(pixels - grey).max(axis=2) < 0.02) > 0.1
    assert section.cells[0].label == STRONGEST_EDGE
    comparison = next(c for c in report.comparisons)
    assert comparison.comparison.attribute == "method"
    assert np.isfinite(comparison.correlation)


def test_a_file_without_circuits_still_renders(tmp_path):
    path = write_edges_file(tmp_path / "edges.h5", circuits=False)
    result = load_results(path)
    assert result.circuits == {}
    report = build_report(result, tmp_path / "report", K)
    assert report.circuits == [] and report.faithfulness is None
    assert len(report.figures) == 2 * 2 + 1  # two experiments' heatmap and chart, a comparison
    page = report.index.read_text()
    assert "Faithfulness" not in page and "circuit " not in page
    assert_not_blank(report.sections[0].heatmap)


def test_long_curves_use_a_log_axis_and_big_circuits_draw_their_strongest_edges(tmp_path):
    def circuit(name: str, n_points: int, edges: tuple[str, ...] = ()) -> Circuit:
        points = np.arange(n_points + 1)
        curve = Faithfulness(points, points / n_points, points / n_points, 1.0, 0.0)
        return Circuit(name, {"method": "eap"}, {}, edges, np.linspace(1, 0.1, len(edges)),
                       curve)

    assert not uses_log_scale([circuit("small", 100)])
    assert uses_log_scale([circuit("small", 100), circuit("big", 101)])
    # On GPT-2 small's graph (12 layers of 12 heads) a 400-edge circuit is more than is drawn.
    edges = tuple(f"A{layer}.{h}->A{layer + 1}.{g}.{'QKV'[(h + g) % 3]}"
                  for layer in range(11) for h in range(12) for g in range(12))[:400]
    figure = plot_circuit(circuit("big", 400, edges), tmp_path / "big.png")
    assert_not_blank(figure)


def test_diff_compares_circuits_edge_by_edge(edges_file, tmp_path):
    same = analysis("diff", edges_file, edges_file)
    assert same.returncode == 0, same.stdout
    assert "circuit ioi_acdc: same: max |A - B|: edges 0, scores 0," in same.stdout
    changed = write_edges_file(tmp_path / "changed.h5")
    with h5py.File(changed, "r+") as f:
        edges = f["circuits/ioi_acdc/edges"]
        edges[0], edges[1] = ACDC_EDGES[1], ACDC_EDGES[0]  # same edges, another order
        f["circuits/ioi_eap/scores"][0] += 0.5
    done = analysis("diff", edges_file, changed)
    assert done.returncode == 1, done.stdout
    assert "circuit ioi_acdc: DIFFERS: max |A - B|: edges inf, scores 0," in done.stdout
    assert "circuit ioi_eap: DIFFERS: max |A - B|: edges 0, scores 0.5," in done.stdout
    assert "eap_edges: same" in done.stdout


def test_long_edge_axes_are_ticked_where_each_layer_starts():
    names = ["Resid Start"] + [f"A{layer}.{h}" for layer in range(12) for h in range(12)]
    axis = Axis("sender", tuple(range(len(names))), tuple(names))
    starts = layer_starts(axis)
    assert [names[i] for i in starts] == ["Resid Start"] + [f"A{layer}.0" for layer in range(1, 12)]


def test_the_layout_causeway_writes_loads_the_same(tmp_path):
    # Names as dimension scales under axes/, an int32 mask, path patching over every edge, and
    # a circuit whose curve (doubling sizes) skips its own size, its metrics on the group.
    path = tmp_path / "causeway_layout.h5"
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = "causeway-results/1"
        write_edge_experiment(f, "edges", "eap", scales_under_axes=True)
        write_edge_experiment(f, "paths", "path_patching", kind="path_patching",
                              scales_under_axes=True)
        write_circuit(f, "acdc", {"method": "acdc", "threshold": 0.05}, ACDC_EDGES,
                      ACDC_SCORES, np.array([0, 1, 2, 4, 8], dtype=np.int32), ACDC_RATE,
                      metrics_on_group=True)
    result = load_results(path)
    for name in ("edges", "paths"):
        exp = result.experiments[name]
        assert exp.is_edges and exp.axes[0].labels == tuple(sender_names())
        assert exp.uninterpreted == ()
        assert top_cells(exp, 1)[0].label == STRONGEST_EDGE
    assert np.isnan(result.experiments["paths"].mean[~edge_mask().astype(bool)]).all()
    circuit = result.circuits["acdc"]
    assert circuit.faithfulness.clean_metric == 3.0
    assert circuit.faithfulness.ablated_metric == -1.0
    assert math.isnan(circuit.faithfulness.recovered_at(len(ACDC_EDGES)))
    assert circuit.recovered == pytest.approx(1 - math.exp(-6 / ACDC_RATE))
    done = analysis("top", path, "--circuit", "acdc")
    recovered = 1 - math.exp(-6 / ACDC_RATE)
    expected = f"faithfulness: 6 edges recover {recovered:.3f} of the metric (clean 3, all " \
               "ablated -1)"
    assert expected in done.stdout


def test_a_circuit_that_kept_no_edge_is_drawn_and_listed(tmp_path):
    path = write_edges_file(tmp_path / "edges.h5", circuits=False)
    with h5py.File(path, "r+") as f:
        write_circuit(f, "empty", {"method": "acdc", "threshold": 10.0}, [], [], np.arange(4),
                      ACDC_RATE)
    result = load_results(path)
    assert result.circuits["empty"].edges == () and result.circuits["empty"].recovered == 0.0
    report = build_report(result, tmp_path / "report", K)
    assert report.circuits[0].figure.is_file() and report.faithfulness.is_file()
    done = analysis("top", path, "--circuit", "empty")
    assert done.returncode == 0, done.stderr
    assert "0 edges recover 0.000 of the metric" in done.stdout
    assert done.stdout.rstrip().endswith("(no edges kept)")
