"""Reference models for causeway's golden files.

Builds small GPT-2-family models with random weights (no model hub is ever contacted), a small
but real GPT-2 byte-level BPE tokenizer, and the TransformerLens HookedTransformer that carries
exactly the same weights, so that hook values can be read from TransformerLens and logits
cross-checked against Hugging Face transformers.

Used by make_goldens.py; see README.md beside this file.

TransformerLens: the legacy `HookedTransformer` class is needed (TransformerLens 3.x;
it was removed in 4.0). `to_hooked_transformer` raises a clear error when it is missing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

# Sentences every tokenizer check encodes and decodes.
TOKENIZER_CHECK_SENTENCES: Tuple[str, ...] = (
    "When Mary and John went to the store, John gave a drink to",
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! 12345",
    "  leading spaces, tabs\tand\nnewlines; unicode: café, naïve, 日本語 🙂",
)


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable unicode character map (openai/gpt-2 encoder.py)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _read_merges(path: str) -> List[Tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = []
    for line in lines:
        if not line or line.startswith("#version"):
            continue
        a, b = line.split(" ")
        merges.append((a, b))
    return merges


def make_tiny_tokenizer(out_dir: str, shared_dir: str, vocab_size: int = 1000) -> Dict[str, int]:
    """Write a small GPT-2-style byte-level BPE tokenizer (vocab.json + merges.txt) to out_dir.

    ids 0..255: the 256 byte characters of bytes_to_unicode, in the order GPT-2's vocab.json
    gives them (sorted by their GPT-2 id); then the first GPT-2 merges (rank order, from
    shared_dir/merges.txt) whose two parts are already in the vocabulary, each merged token
    taking the next id, until vocab_size - 1 tokens; the last id is <|endoftext|>.

    Because GPT-2's own vocabulary is built the same way (byte tokens 0..255, then merge rank r
    at id 256 + r), the result is GPT-2's vocabulary truncated to ids < vocab_size - 1, plus
    <|endoftext|> = vocab_size - 1; this is asserted.

    Returns the vocabulary (token -> id).
    """
    with open(os.path.join(shared_dir, "vocab.json"), encoding="utf-8") as f:
        gpt2_vocab: Dict[str, int] = json.load(f)
    gpt2_merges = _read_merges(os.path.join(shared_dir, "merges.txt"))

    byte_chars = list(bytes_to_unicode().values())
    assert len(set(byte_chars)) == 256
    byte_chars.sort(key=lambda c: gpt2_vocab[c])

    vocab: Dict[str, int] = {c: i for i, c in enumerate(byte_chars)}
    merges: List[Tuple[str, str]] = []
    for a, b in gpt2_merges:
        if len(vocab) >= vocab_size - 1:
            break
        if a in vocab and b in vocab and (a + b) not in vocab:
            merges.append((a, b))
            vocab[a + b] = len(vocab)
    assert len(vocab) == vocab_size - 1, f"ran out of merges at {len(vocab)} tokens"
    vocab["<|endoftext|>"] = vocab_size - 1

    # The tiny vocabulary is a prefix of GPT-2's (same ids).
    for tok, i in vocab.items():
        if tok != "<|endoftext|>":
            assert gpt2_vocab[tok] == i, (tok, i, gpt2_vocab[tok])

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")

    check_tokenizer(out_dir, vocab_size)
    return vocab


def load_tokenizer(tok_dir: str):
    """transformers.GPT2Tokenizer from a local directory holding vocab.json + merges.txt."""
    from transformers import GPT2Tokenizer

    return GPT2Tokenizer.from_pretrained(tok_dir)


# GPT-2's pre-tokenization pattern (openai/gpt-2 src/encoder.py).
GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def reference_bpe_encode(text: str, tok_dir: str) -> List[int]:
    """Independent GPT-2 BPE encoder (the algorithm of openai/gpt-2 src/encoder.py).

    Used to cross-check transformers' tokenizer, so the goldens do not rest on one library.
    """
    import regex

    with open(os.path.join(tok_dir, "vocab.json"), encoding="utf-8") as f:
        vocab: Dict[str, int] = json.load(f)
    ranks = {m: r for r, m in enumerate(_read_merges(os.path.join(tok_dir, "merges.txt")))}
    b2u = bytes_to_unicode()

    def bpe(word: Tuple[str, ...]) -> Tuple[str, ...]:
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda pr: ranks.get(pr, float("inf")))
            if best not in ranks:
                break
            out: List[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        return word

    ids: List[int] = []
    for piece in regex.findall(GPT2_PAT, text):
        chars = tuple(b2u[b] for b in piece.encode("utf-8"))
        ids.extend(vocab[t] for t in bpe(chars))
    return ids


def check_tokenizer(tok_dir: str, vocab_size: int) -> None:
    """Encode/decode round trip of a few sentences; all ids < vocab_size; the ids agree with
    the independent reference_bpe_encode."""
    tok = load_tokenizer(tok_dir)
    assert len(tok) == vocab_size, (len(tok), vocab_size)
    assert tok.convert_tokens_to_ids("<|endoftext|>") == vocab_size - 1
    for s in TOKENIZER_CHECK_SENTENCES:
        ids = tok.encode(s)
        assert all(0 <= i < vocab_size for i in ids), (s, ids)
        assert ids == reference_bpe_encode(s, tok_dir), (s, ids, reference_bpe_encode(s, tok_dir))
        back = tok.decode(ids)
        assert back == s, (s, back)


def copy_gpt2_tokenizer(shared_dir: str, out_dir: str) -> None:
    """Copy the real GPT-2 vocab.json + merges.txt into out_dir and check them."""
    os.makedirs(out_dir, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(shared_dir, name), os.path.join(out_dir, name))
    check_tokenizer(out_dir, 50257)
    tok = load_tokenizer(out_dir)
    # Known GPT-2 ids.
    assert tok.convert_tokens_to_ids(["Ġthe", "ĠMary", "ĠJohn"]) == [262, 5335, 1757]


# --------------------------------------------------------------------------------------------
# Hugging Face model with random weights
# --------------------------------------------------------------------------------------------

# The random initialisation. Linear weights are scaled by 1/sqrt(fan_in) so that activations
# are O(1) at any width: with GPT-2's own std 0.02 the tiny model's attention patterns are
# almost uniform (largest weight 0.025 where uniform is 0.023) and MLP pre-activations are so
# small that GELU is nearly linear (tanh-approximate "gelu_new" and exact erf GELU then differ
# by only 4e-5 in the logits); with these scales patterns peak at 0.2-0.3 and the two GELUs
# differ by 1e-3, so goldens tell such implementation mistakes apart.
INIT_SCHEME: Dict[str, Any] = {
    "transformer.wte.weight": "normal(0, 0.1)",
    "transformer.wpe.weight": "normal(0, 0.05)",
    "attn.c_attn.weight": "normal(0, 1.5 / sqrt(n_embd))",
    "attn.c_proj.weight": "normal(0, 0.5 / sqrt(n_embd))",
    "mlp.c_fc.weight": "normal(0, 1.0 / sqrt(n_embd))",
    "mlp.c_proj.weight": "normal(0, 0.5 / sqrt(n_inner))",
    "linear biases (c_attn, c_proj, c_fc)": "normal(0, 0.02)",
    "LayerNorm weights (ln_1, ln_2, ln_f)": "1 + 0.1 * normal(0, 1)",
    "LayerNorm biases": "0.1 * normal(0, 1)",
    "lm_head.weight": "tied to transformer.wte.weight",
    "generator": "torch.Generator().manual_seed(seed); parameters filled in "
    "model.named_parameters() order, each with one torch.randn(shape) call",
}


def make_random_gpt2(config_kwargs: Dict[str, Any], seed: int):
    """transformers.GPT2LMHeadModel (float32, eval, dropout off) where every parameter is random.

    See INIT_SCHEME for the distributions (and why they are not GPT-2's std 0.02 everywhere).
    lm_head is tied to wte (as in GPT-2). Eager attention.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    kwargs = dict(
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        summary_first_dropout=0.0,
        tie_word_embeddings=True,
        scale_attn_weights=True,
        scale_attn_by_inverse_layer_idx=False,
        reorder_and_upcast_attn=False,
    )
    kwargs.update(config_kwargs)
    # <|endoftext|> is the last id (50256 for GPT-2's vocabulary).
    kwargs.setdefault("bos_token_id", kwargs["vocab_size"] - 1)
    kwargs.setdefault("eos_token_id", kwargs["vocab_size"] - 1)
    config = GPT2Config(**kwargs)
    # Eager attention: the plain softmax(QK^T/sqrt(dh)) path, no fused kernels.
    config._attn_implementation = "eager"

    torch.manual_seed(seed)  # covers anything the constructor draws; overwritten below
    model = GPT2LMHeadModel(config).to(torch.float32)

    gen = torch.Generator().manual_seed(seed)
    d = config.n_embd
    n_inner = config.n_inner if config.n_inner is not None else 4 * d

    def normal(shape, std):
        return torch.randn(shape, generator=gen, dtype=torch.float32) * std

    with torch.no_grad():
        for name, p in model.named_parameters():  # tied lm_head.weight is listed once, as wte
            leaf = name.split(".")[-2:]  # e.g. ["ln_1", "weight"], ["c_attn", "bias"]
            module, kind = leaf[0], leaf[1]
            if module == "wte":
                p.copy_(normal(p.shape, 0.1))
            elif module == "wpe":
                p.copy_(normal(p.shape, 0.05))
            elif module in ("ln_1", "ln_2", "ln_f"):
                if kind == "weight":
                    p.copy_(1.0 + normal(p.shape, 0.1))
                else:
                    p.copy_(normal(p.shape, 0.1))
            elif module in ("c_attn", "c_proj", "c_fc") and kind == "bias":
                p.copy_(normal(p.shape, 0.02))
            elif module == "c_attn":
                p.copy_(normal(p.shape, 1.5 / math.sqrt(d)))
            elif module == "c_fc":
                p.copy_(normal(p.shape, 1.0 / math.sqrt(d)))
            elif module == "c_proj" and ".attn." in name:
                p.copy_(normal(p.shape, 0.5 / math.sqrt(d)))
            elif module == "c_proj" and ".mlp." in name:
                p.copy_(normal(p.shape, 0.5 / math.sqrt(n_inner)))
            else:
                raise ValueError(f"unexpected parameter {name}")

    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    model.eval()
    return model


def save_checkpoint(model, out_dir: str) -> List[str]:
    """save_pretrained (safetensors) -> out_dir/config.json + out_dir/model.safetensors (F32).

    Returns the tensor names stored in model.safetensors.
    """
    from safetensors import safe_open

    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    path = os.path.join(out_dir, "model.safetensors")
    assert os.path.exists(path), f"{path} not written (sharded?): {os.listdir(out_dir)}"
    with safe_open(path, framework="pt") as f:
        keys = list(f.keys())
        for k in keys:
            assert f.get_slice(k).get_dtype() == "F32", (k, f.get_slice(k).get_dtype())
    # Drop files save_pretrained may add that causeway does not read.
    gen_cfg = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)
    return keys


def hf_logits(model, tokens: torch.Tensor) -> torch.Tensor:
    """HF logits [B,T,V] for int tokens [B,T], attention mask of ones (no padding mask)."""
    with torch.no_grad():
        out = model(input_ids=tokens.long(), attention_mask=torch.ones_like(tokens, dtype=torch.long))
    return out.logits.float()


# --------------------------------------------------------------------------------------------
# TransformerLens
# --------------------------------------------------------------------------------------------


def _import_hooked_transformer():
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig  # type: ignore
    except ImportError as e:  # TransformerLens >= 4.0 removed the class
        import transformer_lens

        raise ImportError(
            "tests/reference needs TransformerLens' legacy HookedTransformer, removed in "
            f"TransformerLens 4.0 (found {getattr(transformer_lens, '__file__', '?')}). "
            "Install transformer_lens==3.9.0 (see tests/reference/README.md)."
        ) from e
    try:
        from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
    except ImportError:  # TransformerLens 2.x layout
        from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights  # type: ignore
    return HookedTransformer, HookedTransformerConfig, convert_gpt2_weights


def load_unprocessed(model, state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Loads converted weights into a HookedTransformer with every TransformerLens processing
    step off (hooks then equal the unprocessed model's), checks that each tensor landed
    unchanged, and returns the model's state dict."""
    model.load_and_process_state_dict(
        state_dict,
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
        refactor_factored_attn_matrices=False,
    )
    model.eval()
    own = model.state_dict()
    for k, v in state_dict.items():
        assert torch.equal(own[k], v), f"weight {k} changed on load"
    return own


def to_hooked_transformer(hf_model, check_tokens: Optional[torch.Tensor] = None, atol: float = 1e-4):
    """A TransformerLens HookedTransformer with the same weights as hf_model, no hub access.

    Weights go through TransformerLens' own GPT-2 conversion (convert_gpt2_weights) and are
    loaded with NO processing (no fold_ln, no centering, no value-bias folding), so hook values
    are those of the raw model. use_attn_result=True so blocks.L.attn.hook_result exists.
    Asserts the logits equal HF's within atol on check_tokens (a default sample if None).
    """
    import warnings

    HookedTransformer, HookedTransformerConfig, convert_gpt2_weights = _import_hooked_transformer()
    c = hf_model.config
    n_inner = c.n_inner if c.n_inner is not None else 4 * c.n_embd
    assert c.n_embd % c.n_head == 0
    assert c.activation_function == "gelu_new", c.activation_function
    cfg = HookedTransformerConfig(
        n_layers=c.n_layer,
        d_model=c.n_embd,
        n_ctx=c.n_positions,
        d_head=c.n_embd // c.n_head,
        n_heads=c.n_head,
        d_mlp=n_inner,
        d_vocab=c.vocab_size,
        d_vocab_out=c.vocab_size,
        act_fn="gelu_new",
        normalization_type="LN",
        eps=c.layer_norm_epsilon,
        positional_embedding_type="standard",
        attention_dir="causal",
        original_architecture="GPT2LMHeadModel",
        tokenizer_name=None,
        default_prepend_bos=False,
        use_attn_result=True,
        use_split_qkv_input=False,
        device="cpu",
        dtype=torch.float32,
        seed=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(cfg, tokenizer=None, move_to_device=True)
    state_dict = convert_gpt2_weights(hf_model, cfg)
    state_dict = {k: v.detach().clone() for k, v in state_dict.items()}
    own = load_unprocessed(model, state_dict)
    # unembed.b_U is not in GPT-2 (convert_gpt2_weights omits it): filled with zeros.
    if "unembed.b_U" in own:
        assert torch.count_nonzero(own["unembed.b_U"]) == 0

    if check_tokens is None:
        g = torch.Generator().manual_seed(1234)
        check_tokens = torch.randint(0, c.vocab_size, (2, 12), generator=g)
    diff = max_logit_diff(hf_model, model, check_tokens)
    assert diff <= atol, f"TransformerLens vs HF logits differ by {diff} > {atol}"
    return model


def max_logit_diff(hf_model, tl_model, tokens: torch.Tensor) -> float:
    with torch.no_grad():
        a = hf_logits(hf_model, tokens)
        b = tl_model(tokens.long(), return_type="logits").float()
    return float((a - b).abs().max())


def transformer_lens_version() -> str:
    try:
        from importlib.metadata import version

        return version("transformer_lens")
    except Exception:  # pragma: no cover
        return "unknown"
