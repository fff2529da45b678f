#!/usr/bin/env python3
"""Golden token ids for causeway's GPT-2 tokenizer, from Hugging Face.

    /opt/refvenv/bin/python tests/reference/make_tokenizer_goldens.py [--out FILE]
    /opt/refvenv/bin/python tests/reference/make_tokenizer_goldens.py --print-class-fixes

Loads transformers.GPT2Tokenizer from shared/data/gpt2-tokenizer/{vocab.json,merges.txt} and
writes tests/data/tokenizer_cases.json (test_tokenizer.cpp reads it):

  cases              [{text, ids}] hard strings, seeded random strings, a long paragraph;
                     [{bytes_hex, ids}] invalid UTF-8, ids of bytes.decode("utf-8", "replace")
  tokenizer_json     tokenizer.json variants (add_prefix_space, added tokens with lstrip /
                     rstrip / normalized) and their ids from tokenizers.Tokenizer.from_file
  codepoint_classes  [[first, last, class]] runs over every non-surrogate code point of the
                     class GPT-2's regex puts it in: L (letter), N (number), S (white space),
                     O (other), read off HF's ByteLevel pre-tokenizer
  versions           library versions used

--print-class-fixes prints the code point ranges HF classes as letters / numbers that this
Python's unicodedata does not (kExtraLetters / kExtraNumbers in src/model/tokenizer_text.cpp); run
it with a Python whose Unicode version equals the oldest PCRE2's the project supports.

Note for transformers 5: GPT2Tokenizer(vocab_file=..., merges_file=...) silently ignores both
files and builds an empty vocabulary; from_pretrained(dir) is what reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import unicodedata
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED_TOKENIZER = os.path.join(os.path.dirname(REPO), "shared", "data", "gpt2-tokenizer")
if not os.path.isdir(SHARED_TOKENIZER):
    SHARED_TOKENIZER = "/work/shared/data/gpt2-tokenizer"
OUT = os.path.join(REPO, "tests", "data", "tokenizer_cases.json")
SEED = 0

PARAGRAPH = (
    "Activation patching is a technique from mechanistic interpretability. A model is run on a "
    "clean prompt and on a corrupted prompt; one activation from the clean run is copied into "
    "the corrupted run, and the change in the output tells how much that component matters. "
    "In the Indirect Object Identification task (Wang et al., 2022), GPT-2 small completes "
    "\"When Mary and John went to the store, John gave a drink to\" with \" Mary\" -- about 90% "
    "of the time! Name mover heads, S-inhibition heads and duplicate-token heads form the "
    "circuit.\n\nThe tokenizer splits text with a regular expression, maps bytes to printable "
    "characters, and merges pairs by rank: 50,000 merges, 50,257 tokens.   Trailing spaces.  \n"
)

HARD = [
    "",
    "Hello world",
    " Hello world",
    "When Mary and John went to the store, John gave a drink to",
    "When John and Mary went to the shops, Mary gave a bag to",
    "Then, Alice and Bob had a long argument. Afterwards Alice said to",
    # letters, marks, scripts
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "\u00e9", "e\u0301", "x\u0301y",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u: \u0111\u01b0\u1eddng ph\u1ed1 H\u00e0 N\u1ed9i",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e \u0926\u0947\u0935\u0928\u093e\u0917\u0930\u0940",
    "\u0627\u0644\u0644\u063a\u0629 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0661\u0662\u0663",
    "\u4e2d\u6587\u5206\u8bcd\u6d4b\u8bd5\uff0c\u4f60\u597d\u4e16\u754c\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3000\u5168\u89d2\u30b9\u30da\u30fc\u30b9",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8 \u1100\u1161\u11a8",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03ba\u03b1\u03b9 \u0420\u0443\u0441\u0441\u043a\u0438\u0439",
    "\u05e2\u05d1\u05e8\u05d9\u05ea \u05e9\u05dc\u05d5\u05dd",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "\u2160\u216b \u00b2\u00b3 \u00bd \u0663\u0664",
    # emoji
    "\U0001f600\U0001f680\u2764\ufe0f",
    "family: \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 done",
    "flags \U0001f1fa\U0001f1f8\U0001f1ef\U0001f1f5 \U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "skin \U0001f44b\U0001f3fd and keycap 1\ufe0f\u20e3",
    # digits
    "12345678", "3.14159", "1,000,000", "2024-01-31 12:30:45", "$1.5e-10", "0x7fff_ffff",
    # whitespace
    "a  b", "a   b", "  \n\n  x", "trailing   ", "   leading", "\t\t", "\r\n", "a\r\nb\r\n",
    "\n", " ", "a \u00a0b\u2009c\u3000d", "x\u2028y\u0085z", "x\u180ey", "\x0b\x0c\x1c\x1f",
    # contractions
    "don't", "I'm", "they'll", "we've", "she'd", "It's", "YOU'RE", "'S", "''", "'s's",
    "Don't you'll've", "rock 'n' roll", "\u2019s curly",
    # punctuation
    "!!!???...", "Hello, world! 12345", "--- *** ###", "(a)[b]{c}<d>", "\"quoted\" 'single'",
    # special token
    "<|endoftext|>", "Hello<|endoftext|>World", "a <|endoftext|> b",
    "<|endoftext|><|endoftext|>", "<|endoftext|", "<|endoftext|>>", " <|endoftext|>\n",
    # code
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "#include <stdio.h>\nint main() {\n\tprintf(\"hi\\n\");\n}\n",
    # controls and odd characters
    "\x00\x01\x02 nul", "\ufffd replacement", "\ufeffBOM", "zero\u200bwidth",
    PARAGRAPH,
]

INVALID_UTF8 = [
    b"abc\xff",
    b"\x80\x81 x",
    b"\xc3",  # truncated
    b"caf\xc3 ok",
    b"\xe2\x82",  # truncated 3-byte
    b"\xe2\x82 euro",
    b"\xed\xa0\x80 surrogate",
    b"\xc0\xaf overlong",
    b"\xe0\x80\xaf overlong3",
    b"\xf4\x90\x80\x80 too big",
    b"\xf0\x9f\x98 cut emoji",
    b"\xf5\xff\xfe",
    b"ok \xf0\x9f\x98\x80 \xf0\x9f x",
]

def _added(content, id_, lstrip=False, rstrip=False, normalized=False, special=True):
    return {"id": id_, "content": content, "single_word": False, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


# tokenizer.json variants that exercise what GPT-2's own files do not. HF ignores the "id" of
# an added token (vocabulary id if its text is a token, else the next free id), lets a token
# match inside whitespace an rstrip took, and drops a token left with nothing.
JSON_VARIANTS = [
    {"name": "prefix_space_and_added_tokens", "add_prefix_space": True,
     "added_tokens": [_added("<pad>", 50257, lstrip=True, rstrip=True),
                      _added("zzz", 50258, normalized=True, special=False)],
     "texts": ["Hello", " Hello", "a <pad> b", "a  <pad>  b", "x<pad>", "xzzzy", "zzzz",
               "a<|endoftext|>b", "<|endoftext|>", "\n<pad>\n", "\u3000<pad>\u3000end", "zz<pad>z",
               "", " ", "\n", "<|endoftext|> "]},
    {"name": "file_ids_ignored", "add_prefix_space": False,
     "added_tokens": [_added("<a>", 50300), _added("<b>", 50257), _added("<c>", 7), _added("b", 60000)],
     "texts": ["<a>", "<b>", "<c>", "b", "x<a><b><c>b", "abc"]},
    {"name": "strip_overlaps", "add_prefix_space": False,
     "added_tokens": [_added("b", 50257, rstrip=True, normalized=True),
                      _added("\n", 50258, normalized=True, special=False),
                      _added(" ", 50259, lstrip=True, rstrip=True, normalized=True),
                      _added("\u00e9", 50260, rstrip=True)],
     "texts": ["b\n zc", "q    \u3000", "x  y", "b  b", "a\n\n b", "\u00e9 \u00e9", "b \n b"]},
]

ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789") + list(" \t\n\r  '.,!?-_\"()<>|") +
    ["'s", "'t", "'re", "'ll", "<|endoftext|>", "\u00e9", "e\u0301", "\u00a0", "\u3000", "\u0085",
     "\u4e2d", "\u6587", "\ud55c", "\u0939", "\u093f", "\u0627", "\u0661", "\U0001f600", "\u200d",
     "\ufe0f", "\U0001f1fa", "\u2160", "\u00b2", "\u180e", "\U000105c0", "\U00010d40"]
)


def load_gpt2():
    from transformers import GPT2Tokenizer

    tok = GPT2Tokenizer.from_pretrained(SHARED_TOKENIZER)
    known = {" the": 262, " Mary": 5335, " John": 1757}
    for text, want in known.items():
        got = tok.encode(text)
        if got != [want]:
            sys.exit(f"GPT2Tokenizer from {SHARED_TOKENIZER} gives {got} for {text!r}, not [{want}]")
    if len(tok) != 50257:
        sys.exit(f"GPT2Tokenizer has {len(tok)} tokens, expected 50257")
    return tok


def random_texts(n: int) -> list:
    rng = random.Random(SEED)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(n)]


def make_cases(tok) -> list:
    cases = []
    for text in HARD + random_texts(150):
        ids = tok.encode(text)
        if tok.decode(ids) != text:
            sys.exit(f"HF does not round-trip {text!r}")
        cases.append({"text": text, "ids": ids})
    for raw in INVALID_UTF8:
        cases.append({"bytes_hex": raw.hex(), "ids": tok.encode(raw.decode("utf-8", "replace"))})
    return cases


def make_json_variants(tok) -> list:
    from tokenizers import Tokenizer

    out = []
    for v in JSON_VARIANTS:
        spec = json.loads(tok._tokenizer.to_str())
        spec["pre_tokenizer"]["add_prefix_space"] = v["add_prefix_space"]
        spec["added_tokens"] += v["added_tokens"]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tokenizer.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(spec, f)
            hf = Tokenizer.from_file(path)
            cases = [{"text": t, "ids": hf.encode(t).ids} for t in v["texts"]]
        out.append({"name": v["name"], "add_prefix_space": v["add_prefix_space"],
                    "added_tokens": v["added_tokens"], "vocab_size": hf.get_vocab_size(),
                    "cases": cases})
    return out


def classify_codepoints() -> dict:
    """Class of every non-surrogate code point under GPT-2's regex, from HF's pre-tokenizer:
    a character that joins a preceding 'a' is a letter, '1' a number, '!' other, ' ' space."""
    from tokenizers import pre_tokenizers

    pt = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)

    def one_piece(s: str) -> bool:
        return len(pt.pre_tokenize_str(s)) == 1

    classes = {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        for probe, cls in (("a", "L"), ("1", "N"), ("!", "O"), (" ", "S")):
            if one_piece(probe + c):
                classes[cp] = cls
                break
        else:
            sys.exit(f"U+{cp:04X} fits no class")
    return classes


def runs(classes: dict) -> list:
    out = []
    for cp in sorted(classes):
        cls = classes[cp]
        if out and out[-1][2] == cls and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp, cls])
    return out


def print_class_fixes(classes: dict) -> None:
    def general(cp):
        return unicodedata.category(chr(cp))[0]

    for cls, name in (("L", "kExtraLetters"), ("N", "kExtraNumbers")):
        extra = runs({cp: cls for cp, c in classes.items() if c == cls and general(cp) != cls})
        body = ", ".join(f"{{0x{a:X}, 0x{b:X}}}" for a, b, _ in extra)
        print(f"// unicodedata {unicodedata.unidata_version}\nconstexpr CodeRange {name}[] = {{{body}}};")


def versions() -> dict:
    import tokenizers
    import transformers

    return {"python": platform.python_version(), "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "unicodedata": unicodedata.unidata_version}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--print-class-fixes", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.print_class_fixes:
        print_class_fixes(classify_codepoints())
        return
    tok = load_gpt2()
    doc = {
        "source": "tests/reference/make_tokenizer_goldens.py",
        "tokenizer": "transformers.GPT2Tokenizer.from_pretrained(shared/data/gpt2-tokenizer)",
        "versions": versions(),
        "cases": make_cases(tok),
        "tokenizer_json": make_json_variants(tok),
        "codepoint_classes": runs(classify_codepoints()),
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(doc['cases'])} cases, "
          f"{len(doc['codepoint_classes'])} code point class runs")


if __name__ == "__main__":
    main()
