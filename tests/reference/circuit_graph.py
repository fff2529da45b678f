"""The head-granularity computational graph of a TransformerLens model (issue 13): senders,
receivers, edges, and where each lives among the TransformerLens hooks.

Senders write into the residual stream, receivers read from it; an edge s -> r exists when s
is computed before r reads the stream. See CIRCUITS.md beside this file for the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

RESID_START = "Resid Start"
RESID_END = "Resid End"


@dataclass(frozen=True)
class Node:
    name: str
    layer: int  # -1 for Resid Start, n_layers for Resid End
    kind: str  # senders: "embed" | "head" | "mlp"; receivers: "q" | "k" | "v" | "mlp" | "end"
    head: Optional[int] = None  # query head (senders, q) or key/value head (k, v)


@dataclass
class Graph:
    n_layers: int
    n_heads: int
    n_kv_heads: int
    parallel: bool  # GPT-NeoX: attention and MLP of a block both read resid_pre
    senders: List[Node]
    receivers: List[Node]

    @property
    def mask(self) -> torch.Tensor:
        """[S, R] bool, True where the edge exists."""
        m = torch.zeros(len(self.senders), len(self.receivers), dtype=torch.bool)
        for i, s in enumerate(self.senders):
            for j, r in enumerate(self.receivers):
                m[i, j] = edge_exists(s, r, self.parallel)
        return m

    def edges(self) -> List[Tuple[int, int]]:
        """(sender index, receiver index) of every edge, senders-major in forward order."""
        m = self.mask
        return [(i, j) for i in range(m.shape[0]) for j in range(m.shape[1]) if m[i, j]]

    def sender_index(self, name: str) -> int:
        return [s.name for s in self.senders].index(name)

    def receiver_index(self, name: str) -> int:
        return [r.name for r in self.receivers].index(name)


def edge_exists(s: Node, r: Node, parallel: bool) -> bool:
    if r.kind == "end":
        return True
    if r.kind in ("q", "k", "v"):
        return s.layer < r.layer
    # MLP L reads resid_mid (heads of layer L included) unless the block is parallel.
    return s.layer < r.layer or (s.layer == r.layer and s.kind == "head" and not parallel)


def build_graph(cfg) -> Graph:
    L, H = cfg.n_layers, cfg.n_heads
    KV = cfg.n_key_value_heads or H
    senders = [Node(RESID_START, -1, "embed")]
    receivers: List[Node] = []
    for l in range(L):
        senders += [Node(f"A{l}.{h}", l, "head", h) for h in range(H)]
        senders.append(Node(f"MLP {l}", l, "mlp"))
        receivers += [Node(f"A{l}.{h}.Q", l, "q", h) for h in range(H)]
        receivers += [Node(f"A{l}.{g}.K", l, "k", g) for g in range(KV)]
        receivers += [Node(f"A{l}.{g}.V", l, "v", g) for g in range(KV)]
        receivers.append(Node(f"MLP {l}", l, "mlp"))
    receivers.append(Node(RESID_END, L, "end"))
    return Graph(L, H, KV, bool(cfg.parallel_attn_mlp), senders, receivers)


# --------------------------------------------------------------------------------------------
# Where nodes live in TransformerLens (use_attn_result, use_split_qkv_input, use_hook_mlp_in)
# --------------------------------------------------------------------------------------------


def sender_hook(s: Node) -> str:
    if s.kind == "embed":
        return "blocks.0.hook_resid_pre"
    if s.kind == "head":
        return f"blocks.{s.layer}.attn.hook_result"  # [b, p, H, d], without b_O
    return f"blocks.{s.layer}.hook_mlp_out"


def sender_value(s: Node, acts: Dict[str, torch.Tensor]) -> torch.Tensor:
    """[b, p, d] output of sender s, from hook name -> activation."""
    a = acts[sender_hook(s)]
    return a[:, :, s.head, :] if s.kind == "head" else a


def receiver_hook(r: Node, n_layers: int) -> str:
    if r.kind == "end":
        return f"blocks.{n_layers - 1}.hook_resid_post"  # the input of ln_final
    if r.kind == "mlp":
        return f"blocks.{r.layer}.hook_mlp_in"  # [b, p, d]
    return f"blocks.{r.layer}.hook_{r.kind}_input"  # q: [b, p, H, d]; k, v: [b, p, KV, d]


def receiver_slice(r: Node, act: torch.Tensor) -> torch.Tensor:
    """[b, p, d] input of receiver r within its hook's activation."""
    return act[:, :, r.head, :] if r.kind in ("q", "k", "v") else act


def receiver_index(r: Node) -> tuple:
    """Index of receiver r's input inside its hook activation (for in-place writes)."""
    return (slice(None), slice(None), r.head) if r.kind in ("q", "k", "v") else (Ellipsis,)
