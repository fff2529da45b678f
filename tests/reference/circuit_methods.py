"""Edge patching, EAP, EAP-IG (input and activation interpolation) and path patching on a
TransformerLens model with split receiver inputs, per pair (batch elements never interact).

Every function returns raw logit differences or scores per pair (axis 0). The model must have
use_attn_result, use_split_qkv_input and use_hook_mlp_in set (make_circuit_goldens.prepare).
Definitions: CIRCUITS.md beside this file.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Dict, List, Sequence, Tuple

import torch

import circuit_graph as cg
from circuit_graph import Graph, Node
from make_patching_goldens import logit_diff

Acts = Dict[str, torch.Tensor]


class Metric:
    """ld[b] = logits[b, -1, answer[b]] - logits[b, -1, wrong[b]] (make_patching_goldens)."""

    def __init__(self, answer: torch.Tensor, wrong: torch.Tensor):
        self.answer, self.wrong = answer, wrong

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logit_diff(logits, self.answer, self.wrong)


def cache_run(model, tokens: torch.Tensor, metric: Metric) -> Tuple[torch.Tensor, Acts]:
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    return metric(logits), {k: v.clone() for k, v in cache.items()}


def differences(graph: Graph, src: Acts, tgt: Acts) -> torch.Tensor:
    """[b, S, p, d]: src_s - tgt_s for every sender."""
    return torch.stack([cg.sender_value(s, src) - cg.sender_value(s, tgt) for s in graph.senders], 1)


# --------------------------------------------------------------------------------------------
# Edge patching
# --------------------------------------------------------------------------------------------


def edge_patch(model, graph: Graph, tokens, src: Acts, edges: Sequence[Tuple[int, int]], metric: Metric,
               scale: float = 1.0) -> torch.Tensor:
    """Run `tokens` with every receiver r of `edges` reading input_r + scale * sum_s (src_s - cur_s)
    over its patched senders s, cur_s = s's output in this same forward. [b] ld. (scale != 1
    only for the finite-difference check of EAP.)"""
    incoming: Dict[int, List[int]] = defaultdict(list)
    for i, j in edges:
        incoming[j].append(i)
    by_hook: Dict[str, List[int]] = defaultdict(list)
    for j in incoming:
        by_hook[cg.receiver_hook(graph.receivers[j], graph.n_layers)].append(j)
    needed = {cg.sender_hook(graph.senders[i]) for i, _ in edges}
    cur: Acts = {}

    def record(act, hook):
        cur[hook.name] = act.clone()
        return act

    def patch(act, hook):
        act = act.clone()
        for j in by_hook[hook.name]:
            r = graph.receivers[j]
            for i in incoming[j]:
                s = graph.senders[i]
                act[cg.receiver_index(r)] += scale * (cg.sender_value(s, src) - cg.sender_value(s, cur))
        return act

    hooks = [(n, record) for n in sorted(needed)] + [(n, patch) for n in sorted(by_hook)]
    with torch.no_grad():
        return metric(model.run_with_hooks(tokens, fwd_hooks=hooks))


def all_edge_patches(model, graph: Graph, tokens, src: Acts, metric: Metric) -> torch.Tensor:
    """[b, S, R]: ld with one edge patched, 0 where there is no edge."""
    out = torch.zeros(tokens.shape[0], len(graph.senders), len(graph.receivers), dtype=torch.float64)
    for i, j in graph.edges():
        out[:, i, j] = edge_patch(model, graph, tokens, src, [(i, j)], metric)
    return out


# --------------------------------------------------------------------------------------------
# Gradients at receiver inputs: EAP and EAP-IG
# --------------------------------------------------------------------------------------------


def receiver_grads(model, graph: Graph, tokens, metric: Metric, fwd_hooks=()) -> Tuple[torch.Tensor, torch.Tensor]:
    """d ld[b] / d input_r for every receiver, as [b, R, p, d], and ld [b]. A zero probe that
    requires grad is added at each receiver hook, so the gradient reaches every receiver
    (the residual stream itself is never detached). fwd_hooks are applied as well."""
    probes: Acts = {}

    def probe(act, hook):
        p = torch.zeros_like(act, requires_grad=True)
        probes[hook.name] = p
        return act + p

    names = sorted({cg.receiver_hook(r, graph.n_layers) for r in graph.receivers})
    logits = model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks) + [(n, probe) for n in names])
    ld = metric(logits)
    ld.sum().backward()  # row b of each gradient is pair b's own: pairs do not interact
    grads = torch.stack(
        [cg.receiver_slice(r, probes[cg.receiver_hook(r, graph.n_layers)].grad) for r in graph.receivers], 1
    )
    return grads, ld.detach()


def scores(diff: torch.Tensor, grads: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[b, S, R] = sum_{p, d} diff[b, s, p, d] * grads[b, r, p, d], 0 where no edge."""
    return torch.einsum("bspd,brpd->bsr", diff, grads) * mask


def eap(model, graph: Graph, tokens, src: Acts, tgt: Acts, metric: Metric) -> torch.Tensor:
    grads, _ = receiver_grads(model, graph, tokens, metric)
    return scores(differences(graph, src, tgt), grads, graph.mask)


def embed_hooks(tgt: Acts, src: Acts, alpha: float, straight_through: bool) -> List[Tuple[str, Callable]]:
    """hook_embed (and hook_pos_embed where positions are learned) set to the interpolation."""
    return [
        (n, interpolate_hook(tgt[n], src[n], alpha, straight_through))
        for n in ("hook_embed", "hook_pos_embed")
        if n in tgt
    ]


def interpolate_hook(tgt: torch.Tensor, src: torch.Tensor, alpha: float, straight_through: bool):
    value = (1.0 - alpha) * tgt + alpha * src

    def hook(act, hook):
        # straight-through: the value is the interpolation, the derivative is the live
        # computation's (so MLP L's input keeps its gradient when MLP L's output is replaced)
        return act + (value - act).detach() if straight_through else value.clone()

    return hook


def eap_ig_inputs(model, graph: Graph, tokens, src: Acts, tgt: Acts, metric: Metric, k: int) -> torch.Tensor:
    total = None
    for j in range(k):
        grads, _ = receiver_grads(model, graph, tokens, metric, embed_hooks(tgt, src, j / k, False))
        total = grads if total is None else total + grads
    return scores(differences(graph, src, tgt), total / k, graph.mask)


def layer_hooks(graph: Graph, layer: int, tgt: Acts, src: Acts, alpha: float) -> List[Tuple[str, Callable]]:
    """Every sender output of `layer` (-1: the embeddings) set to the interpolation."""
    if layer < 0:
        return embed_hooks(tgt, src, alpha, True)
    names = (f"blocks.{layer}.attn.hook_result", f"blocks.{layer}.hook_mlp_out")
    return [(n, interpolate_hook(tgt[n], src[n], alpha, True)) for n in names]


def eap_ig_activations(model, graph: Graph, tokens, src: Acts, tgt: Acts, metric: Metric, k: int) -> torch.Tensor:
    diff = differences(graph, src, tgt)
    mask = graph.mask
    out = torch.zeros(tokens.shape[0], len(graph.senders), len(graph.receivers), dtype=torch.float64)
    for layer in range(-1, graph.n_layers):
        rows = [i for i, s in enumerate(graph.senders) if s.layer == layer]
        total = None
        for j in range(k):
            grads, _ = receiver_grads(model, graph, tokens, metric, layer_hooks(graph, layer, tgt, src, j / k))
            total = grads if total is None else total + grads
        out[:, rows] = scores(diff[:, rows], total / k, mask[rows])
    return out


# --------------------------------------------------------------------------------------------
# Path patching (Wang et al.)
# --------------------------------------------------------------------------------------------


def path_value_hook(r: Node, n_layers: int) -> str:
    """Where path patching records and writes receiver r: the head's q / k / v, MLP L's input,
    the final residual."""
    if r.kind in ("q", "k", "v"):
        return f"blocks.{r.layer}.attn.hook_{r.kind}"
    return cg.receiver_hook(r, n_layers)


def path_patch(model, graph: Graph, tokens, src: Acts, tgt: Acts, sender_heads: Sequence[Tuple[int, int]],
               receivers: Sequence[Node], freeze: str, metric: Metric) -> torch.Tensor:
    """[b] ld. Step 2: tokens with every hook_z frozen to tgt except the sender heads (src);
    freeze 'all' also freezes every hook_mlp_out to tgt except the receivers' MLPs; the
    receivers' values are recorded. Step 3: tokens with only those values written."""
    assert freeze in ("heads", "all")
    L = graph.n_layers
    recorded: Acts = {}
    hooks = []
    for l in range(L):
        z = tgt[f"blocks.{l}.attn.hook_z"].clone()
        for sl, h in sender_heads:
            if sl == l:
                z[:, :, h] = src[f"blocks.{l}.attn.hook_z"][:, :, h]
        hooks.append((f"blocks.{l}.attn.hook_z", lambda act, hook, z=z: z.clone()))
        if freeze == "all" and not any(r.kind == "mlp" and r.layer == l for r in receivers):
            m = tgt[f"blocks.{l}.hook_mlp_out"]
            hooks.append((f"blocks.{l}.hook_mlp_out", lambda act, hook, m=m: m.clone()))
    names = sorted({path_value_hook(r, L) for r in receivers})

    def record(act, hook):
        recorded[hook.name] = act.clone()
        return act

    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=hooks + [(n, record) for n in names])

    def write(act, hook):
        act = act.clone()
        for r in receivers:
            if path_value_hook(r, L) == hook.name:
                idx = cg.receiver_index(r)
                act[idx] = recorded[hook.name][idx]
        return act

    with torch.no_grad():
        return metric(model.run_with_hooks(tokens, fwd_hooks=[(n, write) for n in names]))


def path_grid(model, graph: Graph, tokens, src: Acts, tgt: Acts, receivers: Sequence[Node], freeze: str,
              metric: Metric) -> torch.Tensor:
    """[b, L, H]: one sender head at a time."""
    out = torch.zeros(tokens.shape[0], graph.n_layers, graph.n_heads, dtype=torch.float64)
    for l in range(graph.n_layers):
        for h in range(graph.n_heads):
            out[:, l, h] = path_patch(model, graph, tokens, src, tgt, [(l, h)], receivers, freeze, metric)
    return out
