"""Top-cell tables as CSV (for programs) and Markdown (for notes and pull requests)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .circuits import Circuit
from .edges import parse_edge
from .loader import Experiment
from .ranking import RankedCell, ranking_note
from .wording import without_negative_zero


def format_number(value: float, signed: bool = True) -> str:
    if math.isnan(value):
        return "n/a"
    value = without_negative_zero(value, 4)
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def baseline_summary(exp: Experiment) -> str:
    """"clean_logit_diff +1.2127, corrupted_logit_diff -1.0912, ...": means over the pairs."""
    parts = []
    for name, values in sorted(exp.baselines.items()):
        defined = values[~np.isnan(values)]
        parts.append(f"{name} {format_number(float(defined.mean()) if defined.size else math.nan)}")
    return ", ".join(parts)


def table_rows(exp: Experiment, cells: list[RankedCell]) -> tuple[list[str], list[list[str]]]:
    """Header and rows shared by every table format: rank, cell label, one column per axis
    with the scale value (layer 3, head 2), mean, its distance from the no-effect value (what
    the rows are ranked by), per-pair std and defined pairs. The label column is "label", as
    "component" names an axis of some grids."""
    header = ["rank", "label", *exp.axis_names, f"mean {exp.metric}", "mean - no effect",
              "pair std", "pairs"]
    rows = [[str(c.rank), c.label, *(str(v) for v in c.values), format_number(c.mean),
             format_number(c.from_no_effect), format_number(c.pair_std, signed=False),
             str(c.n_pairs)] for c in cells]
    return header, rows


def write_csv(exp: Experiment, cells: list[RankedCell], path: Path) -> Path:
    header = ["rank", "label", *exp.axis_names, "mean", "mean_minus_no_effect", "pair_std",
              "pairs"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for c in cells:
            writer.writerow([c.rank, c.label, *c.values, repr(c.mean), repr(c.from_no_effect),
                             "" if math.isnan(c.pair_std) else repr(c.pair_std), c.n_pairs])
    return path


def _markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(exp: Experiment, cells: list[RankedCell]) -> str:
    header, rows = table_rows(exp, cells)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if h == "label" else "---:" for h in header) + "|"]
    lines += ["| " + " | ".join(_markdown_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_markdown(exp: Experiment, cells: list[RankedCell], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"### {exp.name}: top {len(cells)}, {ranking_note(exp)}\n\n"
                    + markdown_table(exp, cells), encoding="utf-8")
    return path


def write_circuit_csv(circuit: Circuit, path: Path) -> Path:
    """Every kept edge in the circuit's order: rank, edge, sender, receiver node, the head input
    (Q/K/V, empty otherwise) and score."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["rank", "edge", "sender", "receiver", "input", "score"])
        for rank, (name, score) in enumerate(zip(circuit.edges, circuit.scores), start=1):
            edge = parse_edge(name)
            sender, receiver, head_input = ((edge.sender.name, edge.receiver.name, edge.head_input)
                                            if edge is not None else ("", "", ""))
            writer.writerow([rank, name, sender, receiver, head_input,
                             "" if math.isnan(score) else repr(float(score))])
    return path
