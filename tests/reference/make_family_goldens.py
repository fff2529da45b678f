#!/usr/bin/env python3
"""Goldens for every model family beside GPT-2 (issue 11): tiny random checkpoints of Llama 3,
Llama 2, Mistral, Qwen2, Qwen3, GPT-NeoX (Pythia) and Gemma 2, their tokenizers, and forward,
gradient and patching goldens from TransformerLens 3.9 and Hugging Face transformers.

    HF_HUB_OFFLINE=1 /opt/refvenv/bin/python tests/reference/make_family_goldens.py [--out tests/data/families] [--families llama3,gemma2]

Writes, per family F (under --out, default tests/data/families):
  F/                              config.json, model.safetensors, tokenizer.json,
                                  tokenizer_config.json (a Hugging Face folder)
  F-goldens.safetensors / .json   tokens, HF logits, every TL hook, batch, hard-string ids
  F-gradient-goldens.safetensors  hook gradients of a logit difference, weight gradients
  F-gradient-goldens.json
  F-patching-goldens.safetensors  every transformer_lens.patching function, both directions
  F-patching-goldens.json

No model hub is contacted. Single-threaded, deterministic torch. See FAMILIES.md beside this
file for each family's conventions and README.md for how to run it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import family_forward as ff  # noqa: E402
import family_gradients as fg  # noqa: E402
import family_models as fm  # noqa: E402
import family_patching as fp  # noqa: E402
from make_goldens import versions  # noqa: E402


def jsonable(x):
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, torch.dtype):
        return str(x)
    if hasattr(x, "item") and not isinstance(x, torch.Tensor):  # numpy scalars
        return x.item()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def write_json(path: str, obj: Dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(jsonable(obj), f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_st(path: str, tensors: Dict[str, torch.Tensor], producer: str) -> None:
    from safetensors.torch import save_file

    for k, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int32), (k, v.dtype)
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, path, metadata={"producer": producer})
    os.chmod(path, 0o644)


def hub_style_config(path: str, fam) -> Dict[str, Any]:
    """Rewrite config.json the way the released checkpoints have it (transformers 5 writes
    rope_parameters; hub files have rope_theta / rope_scaling, Pythia rotary_pct /
    rotary_emb_base). Returns the final dict."""
    with open(path, encoding="utf-8") as f:
        c = json.load(f)
    rp = c.pop("rope_parameters")
    if fam.hf_class == "GPTNeoXForCausalLM":
        c["rotary_emb_base"] = rp["rope_theta"]
        c["rotary_pct"] = rp["partial_rotary_factor"]
    else:
        c["rope_theta"] = rp["rope_theta"]
        if rp.get("rope_type", "default") != "default":
            c["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
        else:
            c["rope_scaling"] = None
    c["torch_dtype"] = c.pop("dtype")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")
    return c


def do_family(name: str, out_dir: str, quick: bool = False, stages: Sequence[str] = ("patching", "gradients")) -> Dict[str, Any]:
    fam = fm.FAMILIES[name]
    ckpt = os.path.join(out_dir, name)
    tok = fm.make_tokenizer(fam)
    hf0 = fm.make_random(fam, tok)
    st_keys = fm.save_checkpoint(hf0, tok, fam, ckpt)
    os.chmod(os.path.join(ckpt, "model.safetensors"), 0o644)
    hub_cfg = hub_style_config(os.path.join(ckpt, "config.json"), fam)
    hf = fm.load_hf(fam, ckpt)  # from the hub-style folder: what causeway will read
    probe = torch.randint(0, tok.get_vocab_size(), (2, 16), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(hf(input_ids=probe).logits, hf0(input_ids=probe).logits), "config round trip changed the model"
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(ckpt, "tokenizer.json"))
    tl, tl_derived, converter = fm.to_hooked_transformer(fam, hf, ckpt)

    # ---- forward ----
    gold: Dict[str, torch.Tensor] = {}
    fwd = ff.forward_goldens(fam, tok, hf, tl, gold, ckpt)
    write_st(os.path.join(out_dir, f"{name}-goldens.safetensors"), gold, "tests/reference/make_family_goldens.py")
    tl_logits = max(c["TL vs HF logits"] for c in fwd["checks_max_abs_diff"]["single"])
    meta = {
        "producer": "tests/reference/make_family_goldens.py (see tests/reference/FAMILIES.md)",
        "family": name,
        "notes": fam.notes,
        "model": {
            "dir": name,
            "hf_class": fam.hf_class,
            "config_json": hub_cfg,
            "seed": fm.SEED,
            "init": fm.INIT_SCHEME,
            "model_safetensors_keys": st_keys,
        },
        "transformer_lens": {
            "config_as_derived": tl_derived,
            "overrides": {k: v for k, v in fm.TL_OVERRIDES.items()},
            "weight_converter": converter,
            "processing": "none (fold_ln, center_writing_weights, center_unembed, fold_value_biases all False)",
        },
        "tokenizer": {
            "kind": fam.tokenizer,
            "vocab_size": tok.get_vocab_size(),
            "specials": {s: tok.token_to_id(s) for s in fam.specials},
            "special_map": fam.special_map,
            "adds_bos": fam.add_bos,
            "encoded_with": "tokenizers.Tokenizer.from_file(F/tokenizer.json).encode(text) (add_special_tokens=True)",
        },
        **fwd,
        "tl_vs_hf_logits_max": tl_logits,
        "versions": {**versions(), "tokenizers": __import__("tokenizers").__version__},
    }
    write_json(os.path.join(out_dir, f"{name}-goldens.json"), meta)

    # ---- patching (makes the pairs the gradients use) ----
    pat: Dict[str, torch.Tensor] = {}
    ppath = os.path.join(out_dir, f"{name}-patching-goldens.safetensors")
    if "patching" in stages:
        pmeta = fp.patching_goldens(fam, tok, tl, pat, only=["get_act_patch_resid_pre", "get_act_patch_attn_head_all_pos_every"] if quick else None)
        write_st(ppath, pat, "tests/reference/make_family_goldens.py")
        write_json(os.path.join(out_dir, f"{name}-patching-goldens.json"), {"family": name, **pmeta, "versions": meta["versions"]})
    else:  # gradients only: the pairs of the existing patching goldens
        from safetensors.torch import load_file

        pat = load_file(ppath)
    if "gradients" not in stages:
        return {"tl_vs_hf_logits": tl_logits, "sizes": {}, "total": 0, "grad_checks": {}, "weight_checks": {}, "forward_checks": fwd["checks_max_abs_diff"]}

    # ---- gradients ----
    grad: Dict[str, torch.Tensor] = {}
    clean, answer, wrong = (pat["pairs.clean"].long(), pat["pairs.answer"].long(), pat["pairs.wrong"].long())
    gmeta = fg.hook_gradient_goldens(tl, fwd["hooks"], clean, answer, wrong, grad)
    wmeta = fg.weight_gradient_goldens(hf, tok.get_vocab_size(), grad)
    assert float((grad["metric.clean"] - pat["baseline.clean_logit_diff"][: fg.N_GRAD_PAIRS]).abs().max()) < 1e-5
    write_st(os.path.join(out_dir, f"{name}-gradient-goldens.safetensors"), grad, "tests/reference/make_family_goldens.py")
    write_json(
        os.path.join(out_dir, f"{name}-gradient-goldens.json"),
        {
            "family": name,
            "metric": "sum_b ld[b], ld[b] = logits[b, -1, answer[b]] - logits[b, -1, wrong[b]], b over the first N_GRAD_PAIRS = 3 pairs of F-patching-goldens (pairs.clean / answer / wrong); row b of grad.clean.* is pair b's own gradient",
            **gmeta,
            **wmeta,
            "shapes": {k: list(v.shape) for k, v in sorted(grad.items())},
            "versions": meta["versions"],
        },
    )
    sizes = {}
    for root, _, files in os.walk(out_dir):
        for fn in files:
            p = os.path.join(root, fn)
            rel = os.path.relpath(p, out_dir)
            if rel.startswith(name + "/") or rel.startswith(name + "-"):
                sizes[rel] = os.path.getsize(p)
    return {"tl_vs_hf_logits": tl_logits, "sizes": sizes, "total": sum(sizes.values()),
            "grad_checks": gmeta["hook_checks"], "weight_checks": wmeta["weight_checks"], "forward_checks": fwd["checks_max_abs_diff"]}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "families"))
    ap.add_argument("--families", default=",".join(fm.FAMILIES), help="comma-separated subset of " + ",".join(fm.FAMILIES))
    ap.add_argument("--stages", default="patching,gradients", help="besides the checkpoint and forward goldens (always): patching,gradients (gradients alone reuses the pairs of the existing F-patching-goldens)")
    ap.add_argument("--quick", action="store_true", help="development: only 2 patching functions (do not commit the output)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    for name in args.families.split(","):
        r = do_family(name, args.out, args.quick, args.stages.split(","))
        print(f"{name}: TL vs HF logits {r['tl_vs_hf_logits']:.3g}; {r['total']:,d} bytes", flush=True)
        for k, v in sorted(r["sizes"].items()):
            print(f"    {k:45s} {v:>10,d}")
        print("    forward:", json.dumps(r["forward_checks"]))
        print("    gradients:", json.dumps(r["grad_checks"]), json.dumps(r["weight_checks"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
