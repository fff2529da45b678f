#!/usr/bin/env python3
"""Edge and circuit goldens (issue 13): edge patching, EAP, EAP-IG and path patching on the tiny
random models, from TransformerLens 3.9 with split receiver inputs.

    /opt/refvenv/bin/python tests/reference/make_circuit_goldens.py [--families gpt2,llama3,gpt_neox] [--out tests/data/circuits]

Reads the committed checkpoints (tests/data/tiny-gpt2, tests/data/families/F) and the pairs of
the existing patching goldens (first N_PAIRS); never writes them. Writes, per family F:
  F-circuit-goldens.safetensors   [pairs, senders, receivers] edge tensors, path-patching
                                  grids [pairs, layer, head], baselines (float32; computed in
                                  float64)
  F-circuit-goldens.json          sender / receiver names, edges, pairs, shapes, checks, versions

Definitions, index conventions and the checks: CIRCUITS.md beside this file. Every run asserts
its invariants and fails otherwise. Single-threaded, deterministic torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Sequence, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import circuit_graph as cg  # noqa: E402
import circuit_methods as cm  # noqa: E402
import family_models as fm  # noqa: E402
import reference_models as rm  # noqa: E402
from make_family_goldens import write_json  # noqa: E402
from make_goldens import versions  # noqa: E402

N_PAIRS = 4  # the first 4 pairs of the patching goldens (file size)
IG_STEPS = (1, 3)
DATA = os.path.join(REPO, "tests", "data")
DIRECTIONS = ("noising", "denoising")  # noising: target clean, source corrupted
FD_EPS = 1e-4  # central difference step for the EAP check (float64)

TOL = {
    "baseline_vs_patching_goldens": 1e-5,  # float64 here vs float32 there
    "split_inputs_vs_plain_logits": 1e-5,
    "all_edges_vs_source": 1e-4,
    "eap_vs_finite_difference": 1e-6,
    "eap_ig_inputs_k1_vs_eap": 1e-10,
    "eap_ig_acts_k1_vs_eap": 1e-10,
    "path_all_vs_edge_patch": 1e-4,
    "path_last_q_last_layer_vs_target": 1e-10,
    "edge_resid_end_vs_by_hand": 1e-10,
    "path_heads_resid_end_last_layer_vs_by_hand": 1e-10,
    "eap_ig_acts_vs_inputs_resid_start_rows": 1e-10,
}


# --------------------------------------------------------------------------------------------
# Models and pairs
# --------------------------------------------------------------------------------------------


def load_gpt2():
    from safetensors.torch import load_file
    from transformers import GPT2LMHeadModel

    ckpt = os.path.join(DATA, "tiny-gpt2")
    hf = GPT2LMHeadModel.from_pretrained(ckpt, attn_implementation="eager").to(torch.float32).eval()
    model = rm.to_hooked_transformer(hf)
    with open(os.path.join(DATA, "tiny-gpt2-patching-pairs.jsonl"), encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    gold = load_file(os.path.join(DATA, "tiny-gpt2-patching-goldens.safetensors"))
    return model, pairs, gold, {"checkpoint": "tests/data/tiny-gpt2", "pairs_from": "tests/data/tiny-gpt2-patching-pairs.jsonl"}


def load_family(name: str):
    from safetensors.torch import load_file

    fam = fm.FAMILIES[name]
    ckpt = os.path.join(DATA, "families", name)
    hf = fm.load_hf(fam, ckpt)
    model, _, _ = fm.to_hooked_transformer(fam, hf, ckpt)
    with open(os.path.join(DATA, "families", f"{name}-patching-goldens.json"), encoding="utf-8") as f:
        pairs = json.load(f)["pairs"]
    gold = load_file(os.path.join(DATA, "families", f"{name}-patching-goldens.safetensors"))
    return model, pairs, gold, {"checkpoint": f"tests/data/families/{name}", "pairs_from": f"tests/data/families/{name}-patching-goldens.json"}


def prepare(model, tokens: torch.Tensor) -> float:
    """Split receiver inputs on, float64, no parameter gradients. Returns the largest logit
    change the split inputs make (float32, before the cast)."""
    with torch.no_grad():
        before = model(tokens, return_type="logits")
    model.set_use_attn_result(True)
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)
    with torch.no_grad():
        after = model(tokens, return_type="logits")
    model.to(torch.float64, print_details=False)
    for p in model.parameters():
        p.requires_grad_(False)
    return float((before - after).abs().max())


# --------------------------------------------------------------------------------------------
# Goldens of one family
# --------------------------------------------------------------------------------------------


def receiver_sets(graph: cg.Graph) -> Dict[str, List[cg.Node]]:
    last = graph.n_layers - 1
    return {
        "resid_end": [r for r in graph.receivers if r.kind == "end"],
        "last_q": [r for r in graph.receivers if r.kind == "q" and r.layer == last],
        "last_mlp": [r for r in graph.receivers if r.kind == "mlp" and r.layer == last],
    }


def fd_edges(graph: cg.Graph) -> List[Tuple[int, int]]:
    """A few edges for the finite-difference check: one into each receiver kind, and the
    first and last edge."""
    edges = graph.edges()
    picks = [edges[0], edges[-1]]
    for kind in ("q", "k", "v", "mlp", "end"):
        for sender_kind in ("embed", "head", "mlp"):
            for i, j in reversed(edges):
                if graph.receivers[j].kind == kind and graph.senders[i].kind == sender_kind:
                    picks.append((i, j))
                    break
    return sorted(set(picks))


def by_hand_checks(model, graph: cg.Graph, tgt, src, out_edge, out_path, metric) -> Tuple[float, float]:
    """Recompute two things with the model's own modules instead of hooks: every edge
    s -> Resid End (ln_final and unembed of tgt's final residual + src_s - tgt_s), and the
    path-patching (freeze heads) cells of the last layer's heads into Resid End (the last MLP
    recomputed on its shifted input, unless the block is parallel)."""
    L = graph.n_layers
    final = tgt[f"blocks.{L - 1}.hook_resid_post"]
    end = graph.receiver_index(cg.RESID_END)
    blk = model.blocks[L - 1]
    edge_worst = path_worst = 0.0
    with torch.no_grad():
        for i, s in enumerate(graph.senders):
            delta = cg.sender_value(s, src) - cg.sender_value(s, tgt)
            ld = metric(model.unembed(model.ln_final(final + delta)))
            edge_worst = max(edge_worst, float((ld - out_edge[:, i, end]).abs().max()))
            if s.kind == "head" and s.layer == L - 1:
                moved = final + delta
                if not graph.parallel:
                    mlp_in = tgt[f"blocks.{L - 1}.hook_mlp_in"] + delta
                    moved = moved + blk.mlp(blk.ln2(mlp_in)) - tgt[f"blocks.{L - 1}.hook_mlp_out"]
                ld = metric(model.unembed(model.ln_final(moved)))
                path_worst = max(path_worst, float((ld - out_path[:, L - 1, s.head]).abs().max()))
    return edge_worst, path_worst


def family_goldens(model, pairs, gold) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    pairs = pairs[:N_PAIRS]
    clean = torch.tensor([p["clean"] for p in pairs], dtype=torch.long)
    corrupted = torch.tensor([p["corrupted"] for p in pairs], dtype=torch.long)
    answer = torch.tensor([p["answer"] for p in pairs], dtype=torch.long)
    wrong = torch.tensor([p["wrong"] for p in pairs], dtype=torch.long)
    metric = cm.Metric(answer, wrong)
    checks: Dict[str, Any] = {}

    with torch.no_grad():
        ld32 = {"clean": metric(model(clean)), "corrupted": metric(model(corrupted))}
    checks["split_inputs_vs_plain_logits"] = prepare(model, torch.cat([clean, corrupted]))
    graph = cg.build_graph(model.cfg)
    mask = graph.mask

    ld_clean, acts_clean = cm.cache_run(model, clean, metric)
    ld_corr, acts_corr = cm.cache_run(model, corrupted, metric)
    out: Dict[str, torch.Tensor] = {"baseline/clean": ld_clean, "baseline/corrupted": ld_corr}
    ref = torch.cat([gold["baseline.clean_logit_diff"][:N_PAIRS], gold["baseline.corrupted_logit_diff"][:N_PAIRS]])
    checks["baseline_vs_patching_goldens"] = float((torch.cat([ld_clean, ld_corr]) - ref.double()).abs().max())
    checks["float32_vs_float64_baseline"] = float(
        (torch.cat([ld32["clean"], ld32["corrupted"]]).double() - torch.cat([ld_clean, ld_corr])).abs().max()
    )

    runs = {
        "noising": (clean, acts_clean, ld_clean, acts_corr, ld_corr),
        "denoising": (corrupted, acts_corr, ld_corr, acts_clean, ld_clean),
    }
    sets = receiver_sets(graph)
    for d, (tokens, tgt, ld_tgt, src, ld_src) in runs.items():
        out[f"edge_patch/{d}"] = cm.all_edge_patches(model, graph, tokens, src, metric)
        all_edges = cm.edge_patch(model, graph, tokens, src, graph.edges(), metric)
        out[f"edge_patch_all/{d}"] = all_edges
        checks[f"all_edges_vs_source/{d}"] = float((all_edges - ld_src).abs().max())
        out[f"eap/{d}"] = cm.eap(model, graph, tokens, src, tgt, metric)

        fd = 0.0
        for i, j in fd_edges(graph):
            plus = cm.edge_patch(model, graph, tokens, src, [(i, j)], metric, FD_EPS)
            minus = cm.edge_patch(model, graph, tokens, src, [(i, j)], metric, -FD_EPS)
            fd = max(fd, float(((plus - minus) / (2 * FD_EPS) - out[f"eap/{d}"][:, i, j]).abs().max()))
        checks[f"eap_vs_finite_difference/{d}"] = fd
        checks["eap_finite_difference_edges"] = [
            f"{graph.senders[i].name}->{graph.receivers[j].name}" for i, j in fd_edges(graph)
        ]

        for name, recv in sets.items():
            out[f"path_heads_{name}/{d}"] = cm.path_grid(model, graph, tokens, src, tgt, recv, "heads", metric)
        # freeze "all" = direct paths only = patching the edges {s -> r, r in R} together
        worst = 0.0
        for name, recv in sets.items():
            grid = cm.path_grid(model, graph, tokens, src, tgt, recv, "all", metric)
            if name == "resid_end":
                out[f"path_all_resid_end/{d}"] = grid
            for l in range(graph.n_layers):
                for h in range(graph.n_heads):
                    i = graph.sender_index(f"A{l}.{h}")
                    edges = [(i, graph.receiver_index(r.name)) for r in recv if mask[i, graph.receiver_index(r.name)]]
                    ref_ld = cm.edge_patch(model, graph, tokens, src, edges, metric) if edges else ld_tgt
                    worst = max(worst, float((grid[:, l, h] - ref_ld).abs().max()))
        checks[f"path_all_vs_edge_patch/{d}"] = worst
        checks[f"edge_resid_end_vs_by_hand/{d}"], checks[f"path_heads_resid_end_last_layer_vs_by_hand/{d}"] = by_hand_checks(
            model, graph, tgt, src, out[f"edge_patch/{d}"], out[f"path_heads_resid_end/{d}"], metric
        )
        # a sender in the last layer cannot reach the last layer's queries
        last_q = out[f"path_heads_last_q/{d}"][:, -1, :]
        checks[f"path_last_q_last_layer_vs_target/{d}"] = float((last_q - ld_tgt[:, None]).abs().max())
        if graph.parallel:  # nor, in a parallel block, its own MLP
            last_mlp = out[f"path_heads_last_mlp/{d}"][:, -1, :]
            checks[f"path_last_q_last_layer_vs_target/{d}"] = max(
                checks[f"path_last_q_last_layer_vs_target/{d}"], float((last_mlp - ld_tgt[:, None]).abs().max())
            )

        if d == "noising":
            for k in IG_STEPS:
                out[f"eap_ig_inputs_k{k}/{d}"] = cm.eap_ig_inputs(model, graph, tokens, src, tgt, metric, k)
                out[f"eap_ig_acts_k{k}/{d}"] = cm.eap_ig_activations(model, graph, tokens, src, tgt, metric, k)
            # Resid Start's layer (-1) interpolates the same embedding hooks in both variants
            checks[f"eap_ig_acts_vs_inputs_resid_start_rows/{d}"] = max(
                float((out[f"eap_ig_acts_k{k}/{d}"][:, 0] - out[f"eap_ig_inputs_k{k}/{d}"][:, 0]).abs().max()) for k in IG_STEPS
            )
            checks[f"eap_ig_acts_vs_inputs_other_rows_max_abs/{d}"] = float(
                (out[f"eap_ig_acts_k3/{d}"][:, 1:] - out[f"eap_ig_inputs_k3/{d}"][:, 1:]).abs().max()
            )
            for v in ("inputs", "acts"):
                checks[f"eap_ig_{v}_k1_vs_eap/{d}"] = float((out[f"eap_ig_{v}_k1/{d}"] - out[f"eap/{d}"]).abs().max())
                checks[f"eap_ig_{v}_k3_minus_eap_max_abs/{d}"] = float(
                    (out[f"eap_ig_{v}_k3/{d}"] - out[f"eap/{d}"]).abs().max()
                )

    asserted = set()
    for key, value in checks.items():
        base = key.split("/")[0]
        if base in TOL:
            assert value <= TOL[base], f"check {key}: {value} > {TOL[base]}"
            asserted.add(base)
    assert asserted == set(TOL), f"tolerances without a check: {set(TOL) - asserted}"
    # no-edge cells are exactly 0 in every edge tensor
    for key, t in out.items():
        if t.dim() == 3 and t.shape[1:] == mask.shape:
            assert torch.count_nonzero(t[:, ~mask]) == 0, key

    tensors = {k: v.to(torch.float32).contiguous() for k, v in out.items()}
    tensors["graph/edge_mask"] = mask.to(torch.int32)
    tensors["pairs/clean"] = clean.to(torch.int32)
    tensors["pairs/corrupted"] = corrupted.to(torch.int32)
    tensors["pairs/answer"] = answer.to(torch.int32)
    tensors["pairs/wrong"] = wrong.to(torch.int32)

    meta = {
        "n_layers": graph.n_layers,
        "n_heads": graph.n_heads,
        "n_key_value_heads": graph.n_kv_heads,
        "parallel_attn_mlp": graph.parallel,
        "positional_embedding_type": model.cfg.positional_embedding_type,
        "senders": [s.name for s in graph.senders],
        "receivers": [r.name for r in graph.receivers],
        "n_edges": len(graph.edges()),
        "edges": [f"{graph.senders[i].name}->{graph.receivers[j].name}" for i, j in graph.edges()],
        "receiver_sets": {k: [r.name for r in v] for k, v in sets.items()},
        "hooks": {
            "senders": {s.name: cg.sender_hook(s) + (f"[:, :, {s.head}, :]" if s.kind == "head" else "") for s in graph.senders},
            "receivers": {r.name: cg.receiver_hook(r, graph.n_layers) + (f"[:, :, {r.head}, :]" if r.head is not None else "") for r in graph.receivers},
        },
        "pairs": [{k: p[k] for k in ("clean", "corrupted", "answer", "wrong")} for p in pairs],
        "checks": checks,
        "tolerances": TOL,
        "fd_eps": FD_EPS,
    }
    return tensors, meta


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="gpt2,llama3,gpt_neox")
    ap.add_argument("--out", default=os.path.join(DATA, "circuits"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    from safetensors.torch import save_file

    for name in args.families.split(","):
        model, pairs, gold, source = load_gpt2() if name == "gpt2" else load_family(name)
        tensors, meta = family_goldens(model, pairs, gold)
        st = os.path.join(args.out, f"{name}-circuit-goldens.safetensors")
        save_file(dict(sorted(tensors.items())), st, metadata={"producer": "tests/reference/make_circuit_goldens.py"})
        os.chmod(st, 0o644)
        write_json(
            os.path.join(args.out, f"{name}-circuit-goldens.json"),
            {
                "family": name,
                "producer": "tests/reference/make_circuit_goldens.py (definitions: tests/reference/CIRCUITS.md)",
                **source,
                "dtype": "computed in float64 (the TransformerLens model cast to float64 after loading the float32 weights), stored float32",
                "metric": "ld[b] = logits[b, -1, answer[b]] - logits[b, -1, wrong[b]], raw (not normalized), per pair",
                "directions": {"noising": "target = clean, source = corrupted", "denoising": "target = corrupted, source = clean"},
                "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in sorted(tensors.items())},
                **meta,
                "versions": versions(),
            },
        )
        print(f"{name}: {meta['n_edges']} edges, {len(meta['senders'])} senders x {len(meta['receivers'])} receivers; "
              f"{os.path.getsize(st):,d} B", flush=True)
        print("  checks:", json.dumps(meta["checks"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
