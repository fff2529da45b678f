"""`python -m analysis top`: the strongest cells of each experiment, as terminal text."""

from __future__ import annotations

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
    width = max([len(c.label) for c in cells] + [len("component")])
    lines.append(f"  {'rank':>4}  {'component':<{width}}  {'mean':>9}  {'pair std':>9}")
    for c in cells:
        std = format_number(c.pair_std, signed=False) if per_pair is not None else "n/a"
        lines.append(f"  {c.rank:>4}  {c.label:<{width}}  {format_number(c.mean):>9}  {std:>9}")
    if not cells:
        lines.append("  (no defined values)")
    return "\n".join(lines)
