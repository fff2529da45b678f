#!/usr/bin/env python3
"""Writes a random GPT-2 checkpoint (config.json + model.safetensors, F32) with the standard
library only, for timing causeway where torch is not installed (forward_vs_pytorch.py needs
torch and makes its own). Values are N(0, 0.02) drawn once into a pool and reused at shifting
offsets: fine for timing, meaningless as a model. No tokenizer is written.

    python3 bench/make_random_checkpoint.py OUT_DIR            # GPT-2 small's shape
    python3 bench/make_random_checkpoint.py OUT_DIR --layers 2 --d-model 64 --heads 4 --vocab 1000
"""
import argparse
import array
import json
import pathlib
import random
import struct
import sys


def tensors(layers, d, vocab, n_pos):
    """(HF name, shape, kind) in GPT-2's order; kind: 'w' random, 'one' or 'zero'."""
    yield "transformer.wte.weight", [vocab, d], "w"
    yield "transformer.wpe.weight", [n_pos, d], "w"
    for layer in range(layers):
        p = f"transformer.h.{layer}."
        yield p + "ln_1.weight", [d], "one"
        yield p + "ln_1.bias", [d], "zero"
        yield p + "attn.c_attn.weight", [d, 3 * d], "w"
        yield p + "attn.c_attn.bias", [3 * d], "zero"
        yield p + "attn.c_proj.weight", [d, d], "w"
        yield p + "attn.c_proj.bias", [d], "zero"
        yield p + "ln_2.weight", [d], "one"
        yield p + "ln_2.bias", [d], "zero"
        yield p + "mlp.c_fc.weight", [d, 4 * d], "w"
        yield p + "mlp.c_fc.bias", [4 * d], "zero"
        yield p + "mlp.c_proj.weight", [4 * d, d], "w"
        yield p + "mlp.c_proj.bias", [d], "zero"
    yield "transformer.ln_f.weight", [d], "one"
    yield "transformer.ln_f.bias", [d], "zero"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--positions", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.d_model % a.heads:
        sys.exit(f"--heads {a.heads} does not divide --d-model {a.d_model}")

    rng = random.Random(a.seed)
    pool = array.array("f", (rng.gauss(0.0, 0.02) for _ in range(1 << 20)))
    pool += pool  # a window of any offset < 2^20 is one slice
    specs = list(tensors(a.layers, a.d_model, a.vocab, a.positions))
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in specs:
        n = 4
        for s in shape:
            n *= s
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)

    a.out.mkdir(parents=True, exist_ok=True)
    with open(a.out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for name, shape, kind in specs:
            count = 1
            for s in shape:
                count *= s
            if kind != "w":
                f.write(array.array("f", [1.0 if kind == "one" else 0.0]) * count)
                continue
            while count:
                take = min(count, 1 << 20)
                start = rng.randrange(1 << 20)
                f.write(pool[start:start + take])
                count -= take
    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
        "n_layer": a.layers, "n_embd": a.d_model, "n_head": a.heads, "n_inner": None,
        "n_positions": a.positions, "vocab_size": a.vocab, "tie_word_embeddings": True,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
    }
    (a.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {a.out}/model.safetensors ({offset / 2**20:.0f} MiB) and config.json")


if __name__ == "__main__":
    main()
