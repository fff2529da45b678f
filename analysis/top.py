"""`python -m analysis top`: the strongest cells of each experiment, and the kept edges of each
circuit, as terminal text."""

from __future__ import annotations

import math

from .circuits import Circuit
from .labels import experiment_title
from .loader import Experiment
from .ranking import per_pair_on_mean_scale, ranking_note, top_cells, value_note
from .tables import baseline_summary, format_number


def format_top(exp: Experiment, k: int) -> str:
    per_pair = per_pair_on_mean_scale(exp)
    cells = top_cells(exp, k, per_pair)
    lines = [f"{experiment_title(exp.name, exp.attributes)}  [{exp.metric}, {exp.n_pairs} pairs]"]
    done, total = exp.items_done
    if done < total:
        lines.append(f"  incomplete: {done} of {total} items done")
    baselines = baseline_summary(exp)
    if baselines:
        lines.append("  baselines: " + baselines)
    lines.append(f"  {ranking_note(exp)}; {value_note(exp)}")
    column = "edge" if exp.is_edges else "component"
    width = max([len(c.label) for c in cells] + [len(column)])
    lines.append(f"  {'rank':>4}  {column:<{width}}  {'mean':>9}  {'pair std':>9}")
    for c in cells:
        std = format_number(c.pair_std, signed=False) if per_pair is not None else "n/a"
        lines.append(f"  {c.rank:>4}  {c.label:<{width}}  {format_number(c.mean):>9}  {std:>9}")
    if not cells:
        lines.append("  (no defined values)")
    return "\n".join(lines)


def faithfulness_summary(circuit: Circuit) -> str:
    """"6 edges recover 0.873 of the metric (circuit 2.49; clean 3.00, all ablated -1.00)";
    "" when the file says neither the curve's point at the circuit's size nor `recovered`."""
    recovered = circuit.recovered
    if math.isnan(recovered):
        return ""
    n = len(circuit.edges)
    text = f"{n} edges recover {recovered:.3f} of the metric"
    curve = circuit.faithfulness
    if curve is None:
        return text
    at_size = curve.metric[curve.edges == n]
    metric = f"circuit {float(at_size[0]):.4g}; " if at_size.size else ""
    return (text + f" ({metric}clean {curve.clean_metric:.4g}, all ablated "
            f"{curve.ablated_metric:.4g})")


def format_circuit(circuit: Circuit, k: int | None = None) -> str:
    """The circuit's kept edges in its own order (most important first), the first k of them
    when k is given."""
    lines = [f"circuit {circuit.title}  [{len(circuit.edges)} edges]"]
    if "ranking" in circuit.attributes:
        lines.append(f"  ranking from experiment {circuit.attributes['ranking']}")
    summary = faithfulness_summary(circuit)
    if summary:
        lines.append("  faithfulness: " + summary)
    shown = circuit.edges if k is None else circuit.edges[:k]
    width = max([len(e) for e in shown] + [len("edge")])
    lines.append(f"  {'rank':>4}  {'edge':<{width}}  {'score':>9}")
    for rank, (edge, score) in enumerate(zip(shown, circuit.scores), start=1):
        lines.append(f"  {rank:>4}  {edge:<{width}}  {format_number(float(score)):>9}")
    if len(shown) < len(circuit.edges):
        lines.append(f"  ... {len(circuit.edges) - len(shown)} more (-k to show more)")
    if not circuit.edges:
        lines.append("  (no edges kept)")
    return "\n".join(lines)
