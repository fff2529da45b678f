"""Self-repair experiments (kind "self_repair", issue 24): components ranked by how much of
their direct effect the rest of the model gave back, and the total-vs-direct scatter of
Rushing and Nanda. The grid's last axis, "quantity", holds total, direct, ln_share,
self_repair and repair_rest for each component (see the README section "Self-repair")."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import figures
from .figures import plt
from .labels import cell_label
from .loader import Experiment
from .tables import format_number
from .wording import counted

QUANTITIES = ("total", "direct", "ln_share", "self_repair", "repair_rest")


def is_self_repair(exp: Experiment) -> bool:
    return (exp.kind == "self_repair" and bool(exp.axes) and exp.axes[-1].name == "quantity"
            and tuple(exp.axes[-1].labels) == QUANTITIES)


def component_means(exp: Experiment) -> tuple[list[str], dict[str, np.ndarray]]:
    """Each component's label and, per quantity, its mean over pairs (flat over components)."""
    parts = exp.axes[:-1]
    n = int(np.prod([a.size for a in parts])) if parts else 1
    flat = exp.mean.reshape(n, len(QUANTITIES))
    labels = [cell_label(parts, np.unravel_index(i, [a.size for a in parts])) for i in range(n)]
    return labels, {q: flat[:, j] for j, q in enumerate(QUANTITIES)}


def ranked_components(exp: Experiment, k: int) -> list[int]:
    """Components by |self_repair| (NaN last), the k strongest."""
    _, q = component_means(exp)
    key = np.where(np.isnan(q["self_repair"]), -1.0, np.abs(q["self_repair"]))
    return [int(i) for i in np.argsort(-key, kind="stable")[:k]]


def format_self_repair_top(exp: Experiment, k: int) -> str:
    labels, q = component_means(exp)
    how = exp.attributes.get("ablation")
    how = f"{how} ablation" if how else exp.attributes.get("direction", "patching")
    lines = [f"{exp.name}: self_repair, {exp.attributes.get('sweep', '?')}, {how}  "
             f"[logit_diff, {counted(exp.n_pairs, 'pair')}]",
             "  ranked by |self_repair| = |total - direct| (means over pairs; positive: given back)"]
    width = max([len(labels[i]) for i in ranked_components(exp, k)] + [len("component")])
    lines.append(f"  {'rank':>4}  {'component':<{width}}  " + "  ".join(f"{n:>11}" for n in QUANTITIES))
    for rank, i in enumerate(ranked_components(exp, k), start=1):
        values = "  ".join(f"{format_number(float(q[n][i])):>11}" for n in QUANTITIES)
        lines.append(f"  {rank:>4}  {labels[i]:<{width}}  {values}")
    return "\n".join(lines)


def plot_total_vs_direct(exp: Experiment, path: Path, annotate: int = 8) -> Path:
    """Total against direct effect of every component (means over pairs), with y = x: points
    off the diagonal were repaired (towards 0) or amplified by the rest of the model."""
    labels, q = component_means(exp)
    x, y = q["direct"], q["total"]
    keep = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
    ax.scatter(x[keep], y[keep], s=18, color=figures.POSITIVE_COLOUR, alpha=0.8, linewidths=0)
    if keep.any():
        low = float(min(x[keep].min(), y[keep].min()))
        high = float(max(x[keep].max(), y[keep].max()))
        ax.plot([low, high], [low, high], color="#888888", linewidth=0.8, linestyle="--",
                label="total = direct (no self-repair)")
        ax.legend(loc="upper left", fontsize=8)
    for i in ranked_components(exp, annotate):
        if keep[i]:
            ax.annotate(labels[i], (x[i], y[i]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.axhline(0.0, color="#cccccc", linewidth=0.6)
    ax.axvline(0.0, color="#cccccc", linewidth=0.6)
    ax.set_xlabel("direct effect (final norm frozen), change of logit_diff")
    ax.set_ylabel("total effect (everything recomputed), change of logit_diff")
    ax.set_title(f"{exp.name}: total vs direct effect per component", fontsize=10)
    return figures.save(fig, path)


def scatter_caption(exp: Experiment) -> str:
    return (f"{exp.name}: each component's total effect against its direct effect (means over "
            "pairs). On the dashed line nothing was given back; the vertical distance is the "
            "self-repair (total - direct), of which ln_share is the final norm's part.")
