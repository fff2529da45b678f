"""`python -m analysis top`: the strongest cells of each experiment, and the kept edges of each
circuit, as terminal text."""

from __future__ import annotations

import math

from .circuits import Circuit
from .labels import experiment_title
from .loader import Experiment
from .ranking import per_pair_on_mean_scale, ranking_summary, top_cells
from .self_repair import format_self_repair_top, is_self_repair
from .tables import baseline_summary, format_number
from .wording import counted, without_negative_zero


def format_top(exp: Experiment, k: int) -> str:
    if is_self_repair(exp):  # components by self-repair, each with all its quantities
        return format_self_repair_top(exp, k)
    per_pair = per_pair_on_mean_scale(exp)
    cells = top_cells(exp, k, per_pair)
    lines = [f"{experiment_title(exp.name, exp.attributes)}  "
             f"[{exp.metric}, {counted(exp.n_pairs, 'pair')}]"]
    done, total = exp.items_done
    if done < total:
        lines.append(f"  incomplete: {done} of {total} items done")
    baselines = baseline_summary(exp)
    if baselines:
        lines.append("  baselines: " + baselines)
    lines.append(f"  {ranking_summary(exp)}")
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
    "" when the file says neither the curve's point at the circuit's size nor `recovered`;
    "recovered undefined: ..." when the clean and all-ablated metrics agree."""
    if not circuit.recovery_defined:
        curve = circuit.faithfulness
        clean, ablated = ((curve.clean_metric, curve.ablated_metric) if curve is not None else
                          (circuit.values.get("clean_metric"), circuit.values.get("ablated_metric")))
        return (f"recovered undefined: the clean and all-ablated metrics agree (clean "
                f"{float(clean):.4g}, all ablated {float(ablated):.4g}), so no share of the "
                "difference can be measured")
    recovered = circuit.recovered
    if math.isnan(recovered):
        return ""
    n = len(circuit.edges)
    recovered = without_negative_zero(recovered, 3)
    text = f"{counted(n, 'edge')} {'recovers' if n == 1 else 'recover'} {recovered:.3f} of the metric"
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
    lines = [f"circuit {circuit.title}  [{counted(len(circuit.edges), 'edge')}]"]
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
