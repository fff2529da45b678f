"""Synthetic result files with edge experiments and circuits (issue 13's schema), written with
h5py so the analysis tests need no C++ build for them.

The graph is a 3-layer, 2-head model's: senders Resid Start, A{L}.{h}, MLP {L}; receivers
A{L}.{h}.Q/K/V, MLP {L}, Resid End. Scores are small noise except two planted edges, so the
strongest edges are known: A0.1->A2.0.K (+2.5), then MLP 1->Resid End (-1.5).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

N_LAYER, N_HEAD, N_PAIRS = 3, 2, 4
STRONGEST_EDGE, STRONGEST_MEAN = "A0.1->A2.0.K", 2.5
SECOND_EDGE, SECOND_MEAN = "MLP 1->Resid End", -1.5

ACDC_EDGES = ("A0.1->A2.0.K", "MLP 1->Resid End", "Resid Start->A0.1.Q", "A1.0->MLP 1",
              "A2.0->Resid End", "A0.0->A1.0.V")
ACDC_SCORES = (0.9, 0.7, 0.4, 0.3, 0.2, 0.05)
ACDC_RATE, EAP_RATE = 2.0, 6.0  # faithfulness curves: recovered = 1 - exp(-edges / rate)

CONFIG = """[model]
path = "tiny"
[[experiment]]
name = "eap_edges"
kind = "edges"
[[experiment]]
name = "eap_ig_edges"
kind = "edges"
"""


def sender_names() -> list[str]:
    names = ["Resid Start"]
    for layer in range(N_LAYER):
        names += [f"A{layer}.{h}" for h in range(N_HEAD)] + [f"MLP {layer}"]
    return names


def receiver_names() -> list[str]:
    names = []
    for layer in range(N_LAYER):
        names += [f"A{layer}.{h}.{q}" for h in range(N_HEAD) for q in "QKV"]
        names.append(f"MLP {layer}")
    return names + ["Resid End"]


def _order(name: str) -> tuple[int, int]:
    """(layer, 0 for heads / 1 for the MLP): an edge runs from a smaller to a larger order."""
    if name == "Resid Start":
        return (-1, 1)
    if name == "Resid End":
        return (N_LAYER, 0)
    if name.startswith("MLP "):
        return (int(name.split()[1]), 1)
    return (int(name[1:].split(".")[0]), 0)


def edge_mask() -> np.ndarray:
    return np.array([[_order(s) < _order(r) for r in receiver_names()] for s in sender_names()],
                    dtype=np.uint8)


def edge_effect(seed: int = 0) -> np.ndarray:
    """Per-pair scores (pair, sender, receiver): noise below 0.3, two planted edges, 0 where no
    edge exists."""
    senders, receivers = sender_names(), receiver_names()
    rng = np.random.default_rng(seed)
    effect = rng.uniform(-0.3, 0.3, size=(N_PAIRS, len(senders), len(receivers)))
    for edge, mean in ((STRONGEST_EDGE, STRONGEST_MEAN), (SECOND_EDGE, SECOND_MEAN)):
        sender, receiver = edge.split("->")
        spread = np.array([-0.2, 0.2, -0.1, 0.1])
        effect[:, senders.index(sender), receivers.index(receiver)] = mean + spread
    return (effect * edge_mask()).astype(np.float32)


def _strings(group: h5py.Group, name: str, values) -> h5py.Dataset:
    return group.create_dataset(name, data=list(values), dtype=h5py.string_dtype("utf-8"))


def write_edge_experiment(f: h5py.File, name: str, method: str, seed: int = 0,
                          kind: str = "edges", scales_under_axes: bool = False) -> None:
    """With `scales_under_axes`, the names are dimension scales axes/sender and axes/receiver
    (as causeway's ResultStore writes every grid axis) rather than sender_names and
    receiver_names in the group, and the edge mask is int32."""
    group = f.create_group(f"experiments/{name}")
    for key, value in (("kind", kind), ("method", method), ("direction", "denoising"),
                       ("metric", "logit_diff")):
        group.attrs[key] = value
    if method.startswith("eap_ig"):
        group.attrs["steps"] = np.int64(5)
    prefix = "axes/" if scales_under_axes else ""
    suffix = "" if scales_under_axes else "_names"
    senders = _strings(group, f"{prefix}sender{suffix}", sender_names())
    receivers = _strings(group, f"{prefix}receiver{suffix}", receiver_names())
    senders.make_scale("sender")
    receivers.make_scale("receiver")
    effect = edge_effect(seed)
    effect_ds = group.create_dataset("effect", data=effect)
    mean_ds = group.create_dataset("mean", data=effect.mean(axis=0))
    for ds, labels in ((effect_ds, ("pair", "sender", "receiver")),
                       (mean_ds, ("sender", "receiver"))):
        for d, label in enumerate(labels):
            ds.dims[d].label = label
        ds.dims[ds.ndim - 2].attach_scale(senders)
        ds.dims[ds.ndim - 1].attach_scale(receivers)
    group.create_dataset("edge_mask", data=edge_mask().astype(np.int32 if scales_under_axes
                                                              else np.uint8))
    group.create_dataset("done", data=np.ones(2, dtype=np.uint8))


def write_circuit(f: h5py.File, name: str, attributes: dict, edges, scores,
                  curve_edges: np.ndarray, rate: float, clean: float = 3.0,
                  ablated: float = -1.0, metrics_on_group: bool = False) -> None:
    """A circuit whose curve recovers 1 - exp(-edges / rate) of the metric. With
    `metrics_on_group`, the clean and ablated metrics and the kept edges' `recovered` are
    attributes of the circuit group, not the curve (as causeway's circuit step writes them)."""
    group = f.create_group(f"circuits/{name}")
    for key, value in attributes.items():
        group.attrs[key] = value
    _strings(group, "edges", edges)
    group.create_dataset("scores", data=np.asarray(scores, dtype=np.float32))
    curve = group.create_group("faithfulness")
    curve_edges = np.asarray(curve_edges, dtype=np.int64)
    recovered = 1.0 - np.exp(-curve_edges / rate)
    curve.create_dataset("edges", data=curve_edges)
    curve.create_dataset("metric", data=ablated + recovered * (clean - ablated))
    curve.create_dataset("recovered", data=recovered)
    where = group if metrics_on_group else curve
    where.attrs["clean_metric"] = clean
    where.attrs["ablated_metric"] = ablated
    if metrics_on_group:
        group.attrs["recovered"] = 1.0 - np.exp(-len(edges) / rate)


def write_edges_file(path: Path, circuits: bool = True) -> Path:
    """Two edge experiments (EAP and EAP-IG); with `circuits`, an ACDC circuit and an EAP
    top-k circuit, each with its faithfulness curve (the EAP one reaching past 100 edges)."""
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = "causeway-results/1"
        f.create_group("meta").attrs["config"] = CONFIG
        data = f.create_group("data")
        data.create_dataset("lengths", data=np.full(N_PAIRS, 5, dtype=np.int32))
        write_edge_experiment(f, "eap_edges", "eap", seed=0)
        write_edge_experiment(f, "eap_ig_edges", "eap_ig_inputs", seed=1)
        if circuits:
            write_circuit(f, "ioi_acdc", {"method": "acdc", "threshold": 0.05,
                                          "metric": "logit_diff", "ablation": "corrupted"},
                          ACDC_EDGES, ACDC_SCORES, np.arange(len(ACDC_EDGES) + 1), ACDC_RATE)
            n_edges = int(edge_mask().sum())
            ranked = _eap_ranking()
            write_circuit(f, "ioi_eap", {"method": "eap", "size": np.int64(4),
                                         "metric": "logit_diff", "ablation": "mean",
                                         "ranking": "eap_edges"},
                          [e for e, _ in ranked[:4]], [s for _, s in ranked[:4]],
                          np.union1d(np.geomspace(1, n_edges, 12).astype(np.int64), [0, 4]),
                          EAP_RATE)
    return path


def _eap_ranking() -> list[tuple[str, float]]:
    """eap_edges' edges by |mean|, strongest first."""
    mean = edge_effect(0).mean(axis=0)
    senders, receivers = sender_names(), receiver_names()
    mask = edge_mask().astype(bool)
    cells = [(abs(mean[s, r]), f"{senders[s]}->{receivers[r]}", float(mean[s, r]))
             for s in range(len(senders)) for r in range(len(receivers)) if mask[s, r]]
    return [(name, score) for _, name, score in sorted(cells, reverse=True)]
