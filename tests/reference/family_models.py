"""Tiny random checkpoints of each model family, and the TransformerLens 3.9 model with the same
weights, built without the hub.

FAMILIES[name] describes one family: the HF config (transformers class and kwargs), the
tokenizer (family_tokenizers), how TransformerLens' config is made. make_random(name) gives the
HF model with seeded random weights (INIT below), to_hooked_transformer(name, hf, ckpt_dir)
the HookedTransformer, loaded through TransformerLens' own weight converter with no
processing. See FAMILIES.md beside this file.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

import family_tokenizers as ft
import reference_models as rm

SEED = 0

# --------------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------------


@dataclass
class Family:
    name: str
    hf_class: str  # transformers class name (= config.architectures[0])
    config: Dict[str, Any]  # HF config kwargs (vocab_size filled from the tokenizer)
    tokenizer: str  # "byte_level" | "sentencepiece"
    split_regex: Optional[str] = None  # byte_level only; None = GPT-2 regex (ByteLevel)
    specials: Sequence[str] = ()
    special_map: Dict[str, Optional[str]] = field(default_factory=dict)  # bos_token, eos_token, ...
    add_bos: bool = False  # the tokenizer prepends BOS (post-processor + add_bos_token)
    prepend_space: bool = True  # sentencepiece only: Metaspace prepend "▁" (False: Gemma)
    total_vocab: int = 384
    tl_config: str = "transformer_lens"  # "transformer_lens" | "gemma2_by_hand"
    notes: str = ""


_COMMON_DECODER = dict(
    max_position_embeddings=128,
    attention_dropout=0.0,
    tie_word_embeddings=False,
    use_cache=False,
)

FAMILIES: Dict[str, Family] = {}


def _add(f: Family) -> None:
    FAMILIES[f.name] = f


_add(
    Family(
        name="llama3",
        hf_class="LlamaForCausalLM",
        config=dict(
            _COMMON_DECODER,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,  # TL 3.9 Llama branch: d_head = hidden_size // heads (ignores head_dim)
            hidden_act="silu",
            rms_norm_eps=1e-5,
            attention_bias=False,
            mlp_bias=False,
            rope_parameters=dict(
                rope_type="llama3",
                rope_theta=500000.0,
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=32,
            ),
        ),
        tokenizer="byte_level",
        split_regex=ft.LLAMA3_SPLIT,
        specials=("<|begin_of_text|>", "<|end_of_text|>"),
        special_map=dict(bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>"),
        add_bos=True,
        notes="Llama 3.x: rope_scaling llama3 (original_max_position_embeddings 32 so that the "
        "NTK-by-parts frequency change touches the tiny d_head's frequencies), GQA 4/2, untied lm_head",
    )
)
_add(
    Family(
        name="llama2",
        hf_class="LlamaForCausalLM",
        config=dict(
            _COMMON_DECODER,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            head_dim=8,  # TL 3.9 Llama branch: d_head = hidden_size // heads (ignores head_dim)
            hidden_act="silu",
            rms_norm_eps=1e-5,
            attention_bias=False,
            mlp_bias=False,
            rope_parameters=dict(rope_type="default", rope_theta=10000.0),
        ),
        tokenizer="sentencepiece",
        specials=("<unk>", "<s>", "</s>"),
        special_map=dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>"),
        add_bos=True,
        prepend_space=True,
        notes="Llama 2: plain multi-head attention (n_kv_heads == n_heads), SentencePiece BPE with byte fallback",
    )
)
_add(
    Family(
        name="mistral",
        hf_class="MistralForCausalLM",
        config=dict(
            _COMMON_DECODER,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            hidden_act="silu",
            rms_norm_eps=1e-5,
            sliding_window=None,
            rope_parameters=dict(rope_type="default", rope_theta=10000.0),
        ),
        tokenizer="sentencepiece",
        specials=("<unk>", "<s>", "</s>"),
        special_map=dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>"),
        add_bos=True,
        prepend_space=True,
        notes="Mistral 7B v0.2+ style: sliding_window null (v0.1's 4096 window is longer than any test prompt)",
    )
)
_add(
    Family(
        name="qwen2",
        hf_class="Qwen2ForCausalLM",
        config=dict(
            _COMMON_DECODER,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            hidden_act="silu",
            rms_norm_eps=1e-6,
            rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
            use_sliding_window=False,
        ),
        tokenizer="byte_level",
        split_regex=ft.QWEN2_SPLIT,
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        special_map=dict(bos_token=None, eos_token="<|endoftext|>", pad_token="<|endoftext|>"),
        add_bos=False,
        notes="Qwen2 / Qwen2.5: q/k/v biases, no BOS",
    )
)
_add(
    Family(
        name="qwen3",
        hf_class="Qwen3ForCausalLM",
        config=dict(
            _COMMON_DECODER,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            hidden_act="silu",
            rms_norm_eps=1e-6,
            attention_bias=False,
            rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
            use_sliding_window=False,
        ),
        tokenizer="byte_level",
        split_regex=ft.QWEN2_SPLIT,
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        special_map=dict(bos_token=None, eos_token="<|endoftext|>", pad_token="<|endoftext|>"),
        add_bos=False,
        notes="Qwen3: per-head RMSNorm on q and k (before RoPE), no q/k/v biases, no BOS",
    )
)
_add(
    Family(
        name="gpt_neox",
        hf_class="GPTNeoXForCausalLM",
        config=dict(
            hidden_size=32,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            hidden_act="gelu",
            layer_norm_eps=1e-5,
            max_position_embeddings=128,
            # rotary_pct 0.5 (Pythia: 0.25): with d_head 8 that rotates 4 dims = 2 pairs, where
            # rotate_half and interleaved layouts differ (0.25 would leave one pair)
            rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5),
            use_parallel_residual=True,
            attention_bias=True,
            attention_dropout=0.0,
            hidden_dropout=0.0,
            tie_word_embeddings=False,
            use_cache=False,
        ),
        tokenizer="byte_level",
        split_regex=None,
        specials=("<|endoftext|>", "<|padding|>"),
        special_map=dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"),
        add_bos=False,
        notes="Pythia: parallel attention + MLP, rotary on the first half of each head (rotary_pct 0.5; Pythia uses 0.25), LayerNorm with biases, exact-erf GELU",
    )
)
_add(
    Family(
        name="gemma2",
        hf_class="Gemma2ForCausalLM",
        config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            hidden_activation="gelu_pytorch_tanh",
            rms_norm_eps=1e-6,
            max_position_embeddings=128,
            rope_parameters=dict(rope_type="default", rope_theta=10000.0),
            attention_bias=False,
            attention_dropout=0.0,
            query_pre_attn_scalar=24,
            sliding_window=6,
            final_logit_softcapping=3.0,
            attn_logit_softcapping=5.0,
            tie_word_embeddings=True,
            use_cache=False,
        ),
        tokenizer="sentencepiece",
        specials=("<pad>", "<eos>", "<bos>", "<unk>"),
        special_map=dict(bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>"),
        add_bos=True,
        prepend_space=False,
        tl_config="gemma2_by_hand",
        notes="Gemma 2: layer 0 sliding (window 6, shorter than the test prompts), layer 1 "
        "global (HF: even layers slide); query_pre_attn_scalar 24 != d_head 16 (as Gemma 2 27B: 144 != 128); soft-caps "
        "small enough (attention 5, final 3) to bite on the random logits; tied embeddings",
    )
)


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def make_tokenizer(fam: Family):
    if fam.tokenizer == "byte_level":
        tok = ft.train_byte_level(fam.split_regex, fam.total_vocab, fam.specials)
    else:
        unk = fam.special_map.get("unk_token") or "<unk>"
        tok = ft.train_sentencepiece_bpe(fam.total_vocab, fam.specials, unk, fam.prepend_space)
    if fam.add_bos:
        ft.add_bos_template(tok, fam.special_map["bos_token"])
    return tok


# --------------------------------------------------------------------------------------------
# Random HF model
# --------------------------------------------------------------------------------------------

# Seeded init. Linear weights are scaled by 1/sqrt(fan_in) (see reference_models.INIT_SCHEME
# for why GPT-2's std 0.02 gives near-uniform attention on tiny models).
INIT_SCHEME: Dict[str, str] = {
    "embeddings (embed_tokens / embed_in)": "normal(0, 1.0); gemma2: normal(0, 0.2) (times sqrt(d_model) in the forward)",
    "q / k projections (incl. NeoX query_key_value)": "normal(0, 1.5 / sqrt(fan_in))",
    "v, gate, up projections": "normal(0, 1.0 / sqrt(fan_in))",
    "o_proj / dense / down_proj / dense_4h_to_h": "normal(0, 0.5 / sqrt(fan_in))",
    "lm_head / embed_out (untied)": "normal(0, 1.0 / sqrt(d_model))",
    "linear biases": "normal(0, 0.1)",
    "norm weights": "1 + 0.1 * normal (gemma2, which adds 1 itself: 0.1 * normal)",
    "norm biases (NeoX LayerNorm)": "0.1 * normal",
    "generator": "torch.Generator().manual_seed(0); parameters in model.named_parameters() order, one torch.randn(shape) each",
}


def hf_config(fam: Family, vocab_size: int):
    import transformers

    cls = getattr(transformers, fam.hf_class)
    cfg_cls = cls.config_class
    kw = dict(fam.config)
    kw["vocab_size"] = vocab_size
    kw["architectures"] = [fam.hf_class]
    sm = fam.special_map
    # token ids go into config.json as the real checkpoints have them
    return cfg_cls, kw


def make_random(fam: Family, tok) -> Any:
    import transformers

    cfg_cls, kw = hf_config(fam, tok.get_vocab_size())
    for key in ("bos_token", "eos_token", "pad_token"):
        v = fam.special_map.get(key)
        kw[key + "_id"] = tok.token_to_id(v) if v else None
    config = cfg_cls(**kw)
    config._attn_implementation = "eager"
    torch.manual_seed(SEED)
    model = getattr(transformers, fam.hf_class)(config).to(torch.float32)
    gen = torch.Generator().manual_seed(SEED)
    gemma = fam.name == "gemma2"

    def normal(shape, std):
        return torch.randn(shape, generator=gen, dtype=torch.float32) * std

    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.split(".")[-2]
            kind = name.split(".")[-1]
            if leaf in ("embed_tokens", "embed_in"):
                p.copy_(normal(p.shape, 0.2 if gemma else 1.0))
            elif "norm" in leaf:
                if kind == "bias":
                    p.copy_(normal(p.shape, 0.1))
                else:
                    p.copy_(normal(p.shape, 0.1) + (0.0 if gemma else 1.0))
            elif kind == "bias":
                p.copy_(normal(p.shape, 0.1))
            elif leaf in ("lm_head", "embed_out"):
                p.copy_(normal(p.shape, 1.0 / math.sqrt(p.shape[1])))
            elif leaf in ("q_proj", "k_proj", "query_key_value"):
                p.copy_(normal(p.shape, 1.5 / math.sqrt(p.shape[1])))
            elif leaf in ("v_proj", "gate_proj", "up_proj", "dense_h_to_4h"):
                p.copy_(normal(p.shape, 1.0 / math.sqrt(p.shape[1])))
            elif leaf in ("o_proj", "dense", "down_proj", "dense_4h_to_h"):
                p.copy_(normal(p.shape, 0.5 / math.sqrt(p.shape[1])))
            else:
                raise ValueError(f"unexpected parameter {name}")
    model.eval()
    return model


def save_checkpoint(model, tok, fam: Family, out_dir: str) -> List[str]:
    from safetensors import safe_open

    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    gen_cfg = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)
    ft.save_hf(tok, out_dir, dict(fam.special_map), add_bos=fam.add_bos)
    with safe_open(os.path.join(out_dir, "model.safetensors"), framework="pt") as f:
        keys = sorted(f.keys())
        for k in keys:
            assert f.get_slice(k).get_dtype() == "F32", k
    return keys


def load_hf(fam: Family, ckpt: str):
    import transformers

    cls = getattr(transformers, fam.hf_class)
    return cls.from_pretrained(ckpt, attn_implementation="eager").to(torch.float32).eval()


# --------------------------------------------------------------------------------------------
# TransformerLens
# --------------------------------------------------------------------------------------------

TL_OVERRIDES = dict(
    use_attn_result=True,
    use_split_qkv_input=False,
    device="cpu",
    n_devices=1,
    dtype=torch.float32,
    seed=None,
    init_weights=False,
)


def tl_config_dict(fam: Family, hf_model, ckpt: str) -> Dict[str, Any]:
    """The HookedTransformerConfig fields, as TransformerLens 3.9 derives them.

    Families whose convert_hf_model_config branch reads the HF config (Llama, Mistral, Qwen2,
    Qwen3, GPT-NeoX) go through TransformerLens' own get_pretrained_model_config on a copy of
    config.json in a folder whose name holds no family name (a path containing "llama" or
    "gemma" selects TL's name-based branches, which need the hub). Gemma 2 has only name-based
    branches (google/gemma-2-2b / 9b / 27b, fixed shapes): its dict is the gemma-2 branch's with
    the shape fields read from the HF config (gemma2_by_hand)."""
    if fam.tl_config == "gemma2_by_hand":
        c = hf_model.config
        layer_types = list(c.layer_types)
        d = {
            "d_model": c.hidden_size,
            "d_head": c.head_dim,
            "n_heads": c.num_attention_heads,
            "d_mlp": c.intermediate_size,
            "n_layers": c.num_hidden_layers,
            "n_ctx": c.max_position_embeddings,
            "eps": c.rms_norm_eps,
            "d_vocab": c.vocab_size,
            "act_fn": c.hidden_activation,
            "initializer_range": c.initializer_range,
            "normalization_type": "RMS",
            "rotary_base": c.rope_parameters["rope_theta"],
            "positional_embedding_type": "rotary",
            "use_attn_scale": True,
            "attn_scale": math.sqrt(c.query_pre_attn_scalar),
            "n_key_value_heads": c.num_key_value_heads,
            "window_size": c.sliding_window,
            "use_local_attn": True,
            "attn_types": ["local" if t == "sliding_attention" else "global" for t in layer_types],
            "attn_scores_soft_cap": c.attn_logit_softcapping,
            "output_logits_soft_cap": c.final_logit_softcapping,
            "gated_mlp": True,
            "final_rms": True,
            "use_normalization_before_and_after": True,
            "original_architecture": "Gemma2ForCausalLM",
            "default_prepend_bos": True,
            "rotary_dim": c.head_dim,
        }
        from transformer_lens import HookedTransformerConfig

        return d
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    tmp = tempfile.mkdtemp(prefix="tlcfg-")
    try:
        neutral = os.path.join(tmp, "checkpoint")
        os.makedirs(neutral)
        shutil.copyfile(os.path.join(ckpt, "config.json"), os.path.join(neutral, "config.json"))
        cfg = get_pretrained_model_config(
            neutral, hf_cfg=hf_model.config.to_dict(), fold_ln=False, device="cpu", dtype=torch.float32
        )
    finally:
        shutil.rmtree(tmp)
    d = cfg.to_dict()
    for k, v in d.items():  # the temporary folder name is not part of the config
        if isinstance(v, str) and tmp in v:
            d[k] = v.replace(neutral, "<copy of F/config.json in a folder named checkpoint>")
    return d


def convert_weights(fam: Family, hf_model, cfg):
    from transformer_lens.pretrained.weight_conversions.gemma import convert_gemma_weights
    from transformer_lens.pretrained.weight_conversions.llama import convert_llama_weights
    from transformer_lens.pretrained.weight_conversions.mistral import convert_mistral_weights
    from transformer_lens.pretrained.weight_conversions.neox import convert_neox_weights
    from transformer_lens.pretrained.weight_conversions.qwen2 import convert_qwen2_weights
    from transformer_lens.pretrained.weight_conversions.qwen3 import convert_qwen3_weights

    fn = {
        "LlamaForCausalLM": convert_llama_weights,
        "MistralForCausalLM": convert_mistral_weights,
        "Qwen2ForCausalLM": convert_qwen2_weights,
        "Qwen3ForCausalLM": convert_qwen3_weights,
        "GPTNeoXForCausalLM": convert_neox_weights,
        "Gemma2ForCausalLM": convert_gemma_weights,
    }[cfg.original_architecture]
    return fn, fn(hf_model, cfg)


def to_hooked_transformer(fam: Family, hf_model, ckpt: str):
    """HookedTransformer with hf_model's weights (TL's converter, no processing); returns
    (model, cfg_dict as TL derived it, converter name)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    d = tl_config_dict(fam, hf_model, ckpt)
    derived = {k: (str(v) if isinstance(v, torch.dtype) else v) for k, v in d.items()}
    d = dict(d)
    d.update(TL_OVERRIDES)
    d["tokenizer_name"] = None
    for k in ("n_params", "d_vocab_out"):  # recomputed by the config
        d.pop(k, None)
    fields = HookedTransformerConfig.__dataclass_fields__
    d = {k: v for k, v in d.items() if k in fields}
    cfg = HookedTransformerConfig(**d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HookedTransformer(cfg, tokenizer=None, move_to_device=True)
    fn, sd = convert_weights(fam, hf_model, cfg)
    sd = {k: v.detach().clone().float() for k, v in sd.items()}
    rm.load_unprocessed(model, sd)
    return model, derived, f"{fn.__module__}.{fn.__name__}"
