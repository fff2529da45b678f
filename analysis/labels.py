"""Human-readable labels for grid axes and cells, chosen from the axis name alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .edges import edge_name

if TYPE_CHECKING:
    from .loader import Axis

# Short prefixes researchers write for these axes ("L3 H2"); other axes get "<name> <n>".
_PREFIXES = {"layer": "L", "head": "H", "neuron": "N"}


def is_position_axis(name: str) -> bool:
    """pos, dest_pos, src_pos and any future *_pos axis index token positions."""
    return name == "pos" or name.endswith("_pos")


def axis_labels(name: str, values: Sequence[int],
                position_labels: Sequence[str]) -> tuple[str, ...]:
    """Labels of an integer axis: token strings on position axes, "L3"-style elsewhere."""
    if is_position_axis(name):
        return tuple(position_labels[v] if 0 <= v < len(position_labels) else ""
                     for v in values)
    prefix = _PREFIXES.get(name)
    if prefix:
        return tuple(f"{prefix}{v}" for v in values)
    return tuple(f"{name} {v}" for v in values)


def position_token(axis: Axis, i: int) -> str:
    """The token at entry i of a position axis; "" where the pairs have different tokens there
    (the file's label is then "pos N", which the position number already says)."""
    token = axis.labels[i]
    return "" if token == f"pos {axis.values[i]}" else token


def tick_label(axis: Axis, i: int) -> str:
    """Label for a heatmap tick: positions keep their number, as tokens repeat."""
    if axis.named:
        return axis.labels[i]
    if is_position_axis(axis.name):
        token = position_token(axis, i)
        return f"{axis.values[i]}:{token}" if token else str(axis.values[i])
    return axis.labels[i]


def entry_label(axis: Axis, i: int) -> str:
    """Label of one entry inside a cell name, e.g. "L1", "H2", "pos7 ' own'", "pos S2"."""
    if axis.named:
        return f"{axis.name} {axis.labels[i]}"
    if is_position_axis(axis.name):
        token = position_token(axis, i)
        return f"{axis.name}{axis.values[i]}" + (f" {token!r}" if token else "")
    return axis.labels[i]


def cell_label(axes: Sequence[Axis], index: Sequence[int]) -> str:
    """Name of one grid cell, e.g. "L1 pos7 ' own' H2"; an edge experiment's cell is the edge's
    name as ACDC writes it, "A0.1->A1.2.K"."""
    if [a.name for a in axes] == ["sender", "receiver"]:
        return edge_name(axes[0].labels[index[0]], axes[1].labels[index[1]])
    return " ".join(entry_label(a, i) for a, i in zip(axes, index)) or "(all)"


# Attributes worth a figure title, in reading order; every attribute is listed in the report.
_TITLE_ATTRIBUTES = ("kind", "sweep", "positions", "direction", "ablation", "window")


def experiment_title(name: str, attributes: dict[str, str]) -> str:
    """"heads: activation, attn_head_out, positions all, denoising"-style figure title."""
    parts = []
    for key in _TITLE_ATTRIBUTES:
        if key in attributes:
            value = attributes[key]
            parts.append(f"{key} {value}" if key in ("positions", "window") else value)
    if attributes.get("kind") == "edges" and "method" in attributes:
        # Edge experiments differ mainly by method (eap, eap_ig_inputs, path_patching, ...).
        steps = f" ({attributes['steps']} steps)" if "steps" in attributes else ""
        parts.insert(1, attributes["method"] + steps)
    return f"{name}: {', '.join(parts)}" if parts else name
