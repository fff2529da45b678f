"""Writes tests/data/families/transformers5/<family>.json: each tiny family's config.json as
transformers 5 saves it (rope_parameters instead of rope_theta / rope_scaling / rotary_pct), so
the C++ tests check that both layouts give the same model (test_config_layouts.cpp).

Needs transformers >= 5 only (no torch): python3 make_transformers5_configs.py
"""
import json
import pathlib
import tempfile

import transformers

FAMILIES = ["llama3", "llama2", "mistral", "qwen2", "qwen3", "gpt_neox", "gemma2"]
ROOT = pathlib.Path(__file__).resolve().parents[1] / "data" / "families"


def main():
    out = ROOT / "transformers5"
    out.mkdir(exist_ok=True)
    for family in FAMILIES:
        legacy = json.loads((ROOT / family / "config.json").read_text())
        config = transformers.CONFIG_MAPPING[legacy["model_type"]].from_dict(legacy)
        with tempfile.TemporaryDirectory() as tmp:
            config.save_pretrained(tmp)
            (out / f"{family}.json").write_text((pathlib.Path(tmp) / "config.json").read_text())
        print(family, transformers.__version__)


if __name__ == "__main__":
    main()
