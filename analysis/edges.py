"""Nodes and edges of a model's computational graph, from their names alone.

Names follow ACDC and auto-circuit: senders "Resid Start", "A{L}.{h}", "MLP {L}"; receivers
"A{L}.{h}.Q", "A{L}.{h}.K", "A{L}.{h}.V", "MLP {L}", "Resid End"; an edge "sender->receiver".
A head's three inputs are one node with three ends, so a drawing shows one box per head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EDGE_SEPARATOR = "->"
HEAD_INPUTS = ("Q", "K", "V")

RESID_START = "Resid Start"
RESID_END = "Resid End"

_HEAD = re.compile(r"A(\d+)\.(\d+)(?:\.([QKV]))?")
_MLP = re.compile(r"MLP (\d+)")


@dataclass(frozen=True)
class Node:
    name: str  # "A1.2", "MLP 0", "Resid Start": a receiver's name without its .Q/.K/.V
    kind: str  # "resid_start", "head", "mlp", "resid_end", or "other" for names not in this form
    layer: int | None = None  # -1 for Resid Start; None for Resid End (its layer is the model's
    # layer count, which the name does not say) and for other names
    head: int | None = None


@dataclass(frozen=True)
class Edge:
    name: str
    sender: Node
    receiver: Node
    head_input: str  # "Q", "K" or "V" where the receiver is a head; "" otherwise


def parse_node(text: str) -> tuple[Node, str]:
    """The node a sender or receiver name belongs to, and the head input it names ("" if
    none)."""
    text = text.strip()
    if text == RESID_START:
        return Node(text, "resid_start", -1), ""
    if text == RESID_END:
        return Node(text, "resid_end"), ""
    head = _HEAD.fullmatch(text)
    if head:
        layer, index = int(head.group(1)), int(head.group(2))
        return Node(f"A{layer}.{index}", "head", layer, index), head.group(3) or ""
    mlp = _MLP.fullmatch(text)
    if mlp:
        return Node(text, "mlp", int(mlp.group(1))), ""
    return Node(text, "other"), ""


def parse_edge(name: str) -> Edge | None:
    """The edge "sender->receiver"; None for a name without the separator."""
    sender, separator, receiver = name.partition(EDGE_SEPARATOR)
    if not separator:
        return None
    sender_node, _ = parse_node(sender)
    receiver_node, head_input = parse_node(receiver)
    return Edge(name, sender_node, receiver_node, head_input)


def edge_name(sender: str, receiver: str) -> str:
    return f"{sender}{EDGE_SEPARATOR}{receiver}"
