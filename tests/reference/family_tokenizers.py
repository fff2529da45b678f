"""Tiny tokenizers of each model family, trained with the `tokenizers` library (no hub).

Two kinds, as the real checkpoints ship them in tokenizer.json:

* byte-level BPE (Llama 3, Qwen2/Qwen3, GPT-NeoX): a Split pre-tokenizer with the family's
  regex (GPT-NeoX: ByteLevel's own GPT-2 regex), then ByteLevel byte -> unicode mapping; the
  vocabulary is the 256 byte characters, the learned merges, then the special tokens.
* SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma 2): spaces become U+2581
  "▁" (Llama 2 / Mistral: Metaspace, prepend_scheme "first", so a "▁" is prepended to the
  text; Gemma: a Replace normalizer, nothing prepended), no further pre-tokenization; unknown
  characters fall back to <0xNN> byte tokens. Vocabulary: the special tokens, the 256 <0xNN>
  tokens, then the learned pieces.

train(kind, ...) returns a tokenizers.Tokenizer; the id layout is built by hand (the trainer
only supplies the merges), so it is deterministic and laid out like the real files.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

# Pre-tokenizer split regexes, verbatim from the released tokenizer.json files.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The built-in training text: plain English plus digits, punctuation, whitespace runs and a
# little non-ASCII, so that merges exist for the test prompts and the hard strings still need
# byte fallback / multi-byte tokens.
TRAINING_TEXT: Tuple[str, ...] = (
    "When Mary and John went to the store, John gave a drink to Mary.",
    "When Mary and John went to the park, Mary gave a book to John.",
    "The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.",
    "Activation patching copies one activation from a clean run into a corrupted run of the "
    "same model and measures the change in the logit difference.",
    "Attention heads move information between positions; the MLP layers act on each position.",
    "Rotary position embeddings rotate the queries and keys by an angle that grows with the "
    "position, so attention scores depend on relative distance.",
    "Hello, world! 12345 67890 3.14159 2026-11-28 1,000,000 (parentheses) [brackets] {braces}",
    "def forward(self, x):\n    return self.norm(x) * self.scale\n\n",
    "    indented code\twith tabs\tand  double  spaces   and newlines\n\n\n",
    "Sliding window attention lets each query see only the most recent keys in the window.",
    "Grouped query attention shares one key and value head between several query heads.",
    "The residual stream carries the sum of every layer's output to the unembedding.",
    "Researchers study circuits in language models: induction heads, name movers, and more.",
    "café naïve résumé über straße",
)

CORPUS: List[str] = [line for _ in range(20) for line in TRAINING_TEXT]


def _trained_merges(normalized_words_tokenizer, vocab_size: int, alphabet: Sequence[str]) -> List[Tuple[str, str]]:
    """Train a BPE on CORPUS with the given (pre-)tokenizer set-up; return its merges."""
    from tokenizers import trainers

    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=list(alphabet),
        special_tokens=[],
        limit_alphabet=1000,
    )
    normalized_words_tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    import json

    model = json.loads(normalized_words_tokenizer.to_str())["model"]
    merges = model["merges"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]


def _gpt2_byte_order() -> List[str]:
    """The 256 byte characters in GPT-2's order (printable bytes first), ids 0..255."""
    import reference_models as rm

    return list(rm.bytes_to_unicode().values())


def train_byte_level(split_regex: str | None, total_vocab: int, specials: Sequence[str]):
    """A byte-level BPE tokenizer of exactly total_vocab tokens: 256 bytes (GPT-2 order),
    merges, then `specials` (added tokens, special=True) at the end."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if split_regex is None:
        pre = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    else:
        pre = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
            ]
        )
    n_regular = total_vocab - len(specials)
    probe = Tokenizer(models.BPE())
    probe.pre_tokenizer = pre
    merges = _trained_merges(probe, n_regular + 64, pre_tokenizers.ByteLevel.alphabet())
    base = _gpt2_byte_order()
    vocab: Dict[str, int] = {tok: i for i, tok in enumerate(base)}
    kept: List[Tuple[str, str]] = []
    for a, b in merges:
        if len(vocab) >= n_regular:
            break
        if a in vocab and b in vocab and a + b not in vocab:
            vocab[a + b] = len(vocab)
            kept.append((a, b))
    assert len(vocab) == n_regular, f"corpus too small: {len(vocab)} < {n_regular}"
    tok = Tokenizer(models.BPE(vocab=vocab, merges=kept, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    assert tok.get_vocab_size() == total_vocab
    return tok


def train_sentencepiece_bpe(total_vocab: int, specials: Sequence[str], unk: str, prepend_space: bool):
    """SentencePiece-style BPE with byte fallback, exactly total_vocab tokens:
    specials (ids 0..), the 256 <0xNN> byte tokens, then single characters and merged pieces.

    prepend_space True (Llama 2 / Mistral): Metaspace("▁", prepend_scheme "first", split False).
    False (Gemma): normalizer Replace(" " -> "▁"), no pre-tokenizer.
    Merges are learned on "▁"-split words (as SentencePiece does, pieces never span a "▁"
    inside them), then applied to the whole text.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    probe = Tokenizer(models.BPE())
    probe.normalizer = normalizers.Replace(" ", "▁")
    probe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first" if prepend_space else "never", split=True)
    merges = _trained_merges(probe, total_vocab + 64, [])
    chars = sorted({c for line in CORPUS for c in line.replace(" ", "▁")} | {"▁"})
    base = list(specials) + [f"<0x{b:02X}>" for b in range(256)] + chars
    vocab: Dict[str, int] = {tok: i for i, tok in enumerate(base)}
    kept: List[Tuple[str, str]] = []
    for a, b in merges:
        if len(vocab) >= total_vocab:
            break
        if a in vocab and b in vocab and a + b not in vocab:
            vocab[a + b] = len(vocab)
            kept.append((a, b))
    assert len(vocab) == total_vocab, f"corpus too small: {len(vocab)} < {total_vocab}"
    tok = Tokenizer(models.BPE(vocab=vocab, merges=kept, unk_token=unk, fuse_unk=True, byte_fallback=True))
    if prepend_space:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tok.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
    else:
        tok.normalizer = normalizers.Replace(" ", "▁")
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    assert tok.get_vocab_size() == total_vocab
    return tok


def add_bos_template(tok, bos: str) -> None:
    """Post-processor that prepends bos to every sequence (as Llama 2/3, Mistral, Gemma do)."""
    from tokenizers import processors

    bid = tok.token_to_id(bos)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bid)]
    )


def save_hf(tok, out_dir: str, special: Dict[str, str | None], add_bos: bool, add_eos: bool = False) -> None:
    """tokenizer.json + tokenizer_config.json (+ special_tokens_map.json where HF writes it)
    through transformers.PreTrainedTokenizerFast.save_pretrained."""
    from transformers import PreTrainedTokenizerFast

    kw = {k: v for k, v in special.items() if v is not None}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kw)
    fast.save_pretrained(out_dir)
    import json
    import os

    # Record the BOS/EOS policy the way the families' tokenizer_config.json files do.
    path = os.path.join(out_dir, "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["add_bos_token"] = add_bos
    cfg["add_eos_token"] = add_eos
    for k, v in special.items():
        cfg[k] = v
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False, sort_keys=True)
        f.write("\n")
