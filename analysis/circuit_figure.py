"""Drawing of a circuit's kept edges, layered by layer, with matplotlib alone.

Resid Start is the bottom row and Resid End the top; each layer is one band with its heads side
by side (column = head index, the same in every layer) and its MLP just above them at the right,
since the MLP reads the heads of its own layer: every edge then points upwards. Edge width grows
with |score|; a head's query, key and value inputs are the edge's colour and where it meets the
head's box (left, middle, right). Negative scores are dashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from . import figures
from .circuits import Circuit
from .edges import Edge, Node, parse_edge
from .figures import plt

MAX_DRAWN_EDGES = 300  # beyond this the most important ones are drawn, and the title says so
INPUT_COLOURS = {"Q": "#1b9e77", "K": "#d95f02", "V": "#7570b3", "": "#555555"}
INPUT_OFFSETS = {"Q": -0.22, "K": 0.0, "V": 0.22, "": 0.0}  # where the edge meets the head box
NODE_COLOURS = {"head": "#dbe9f6", "mlp": "#fde0c5", "resid_start": "#e0e0e0",
                "resid_end": "#e0e0e0", "other": "#f5f5f5"}
MLP_LIFT = 0.45  # an MLP sits this far above its layer's heads
MIN_WIDTH, MAX_WIDTH = 0.6, 4.5


@dataclass(frozen=True)
class Layout:
    positions: dict[str, tuple[float, float]]  # node name -> (x, y)
    n_layers: int
    n_columns: int


def node_layout(nodes: list[Node]) -> Layout:
    layers = [n.layer for n in nodes if n.kind in ("head", "mlp")]
    heads = [n.head for n in nodes if n.kind == "head"]
    n_layers = max(layers) + 1 if layers else 0
    n_columns = max(heads) + 1 if heads else 1
    centre = (n_columns - 1) / 2
    positions = {}
    others = sorted({n.name for n in nodes if n.kind == "other"})
    for node in nodes:
        if node.kind == "head":
            positions[node.name] = (float(node.head), float(node.layer))
        elif node.kind == "mlp":
            positions[node.name] = (n_columns - 0.3, node.layer + MLP_LIFT)
        elif node.kind == "resid_start":
            positions[node.name] = (centre, -1.0)
        elif node.kind == "resid_end":
            positions[node.name] = (centre, float(n_layers))
        else:
            # Names not in the ACDC form get a row of their own above the output.
            spread = np.linspace(0, n_columns - 1, len(others)) if len(others) > 1 else [centre]
            positions[node.name] = (float(spread[others.index(node.name)]), n_layers + 1.0)
    return Layout(positions, n_layers, n_columns)


def _widths(scores: np.ndarray) -> np.ndarray:
    magnitude = np.abs(np.nan_to_num(scores))
    top = magnitude.max(initial=0.0)
    if top == 0:
        return np.full(scores.shape, MIN_WIDTH)
    return MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * magnitude / top


def _draw_edge(ax, edge: Edge, layout: Layout, width: float, negative: bool) -> None:
    """An arrow whose opacity, like its width, grows with |score|: weak edges fade back."""
    x0, y0 = layout.positions[edge.sender.name]
    x1, y1 = layout.positions[edge.receiver.name]
    x1 += INPUT_OFFSETS.get(edge.head_input, 0.0)
    # A slight bend keeps edges between the same rows, and skip connections that pass
    # through other nodes' columns, apart.
    arrow = FancyArrowPatch((x0, y0), (x1, y1), connectionstyle="arc3,rad=0.12",
                            arrowstyle="-|>", mutation_scale=6 + width * 2, linewidth=width,
                            color=INPUT_COLOURS.get(edge.head_input, INPUT_COLOURS[""]),
                            alpha=0.35 + 0.55 * (width - MIN_WIDTH) / (MAX_WIDTH - MIN_WIDTH),
                            linestyle="--" if negative else "-",
                            shrinkA=9, shrinkB=9, zorder=2)
    ax.add_patch(arrow)


def _draw_nodes(ax, nodes: list[Node], layout: Layout) -> None:
    for node in nodes:
        x, y = layout.positions[node.name]
        ax.text(x, y, node.name, ha="center", va="center", fontsize=7, zorder=3,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": NODE_COLOURS[node.kind],
                      "edgecolor": "#777777", "linewidth": 0.6})


def _legend(ax) -> None:
    handles = [Line2D([], [], color=INPUT_COLOURS[q], linewidth=2, label=f"into a head's {q}")
               for q in "QKV"]
    handles += [Line2D([], [], color=INPUT_COLOURS[""], linewidth=2,
                       label="into an MLP or Resid End"),
                Line2D([], [], color="#555555", linewidth=1, linestyle="--",
                       label="negative score")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
              title="width: |score|", title_fontsize=7, frameon=False)


def plot_circuit(circuit: Circuit, path: Path) -> Path:
    parsed = [(parse_edge(name), score) for name, score in zip(circuit.edges, circuit.scores)]
    drawable = [(e, s) for e, s in parsed if e is not None]
    unparsed = len(parsed) - len(drawable)
    drawn = drawable[:MAX_DRAWN_EDGES]
    nodes_by_name = {}
    for edge, _ in drawn:
        nodes_by_name.setdefault(edge.sender.name, edge.sender)
        nodes_by_name.setdefault(edge.receiver.name, edge.receiver)
    nodes = list(nodes_by_name.values())
    layout = node_layout(nodes)
    rows = layout.n_layers + 2 + any(n.kind == "other" for n in nodes)
    fig, ax = plt.subplots(figsize=(min(3.0 + 1.1 * (layout.n_columns + 1), 20.0),
                                    min(2.0 + 0.85 * rows, 24.0)), layout="constrained")
    widths = _widths(np.array([s for _, s in drawn], dtype=np.float64))
    # Least important first, so the strongest edges are drawn on top.
    for (edge, score), width in reversed(list(zip(drawn, widths))):
        _draw_edge(ax, edge, layout, float(width), bool(score < 0))
    _draw_nodes(ax, nodes, layout)
    ax.set_xlim(-0.9, layout.n_columns + 0.5)
    top = layout.n_layers + (1.6 if rows > layout.n_layers + 2 else 0.6)
    ax.set_ylim(-1.6, top)
    ticks = [-1.0] + list(range(layout.n_layers)) + [float(layout.n_layers)]
    ax.set_yticks(ticks, ["input"] + [f"L{i}" for i in range(layout.n_layers)] + ["output"],
                  fontsize=8)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    if drawn:
        _legend(ax)
    else:
        ax.text(0.5, 0.5, "no edges kept", ha="center", va="center", transform=ax.transAxes)
    notes = []
    if len(drawable) > len(drawn):
        notes.append(f"the {len(drawn)} most important of {len(drawable)} edges drawn")
    if unparsed:
        notes.append(f"{unparsed} edges not named sender->receiver left out")
    title = f"{circuit.title} ({len(circuit.edges)} edges)"
    ax.set_title(title + ("\n" + "; ".join(notes) if notes else ""), fontsize=10)
    return figures.save(fig, path)
