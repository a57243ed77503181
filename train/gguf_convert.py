"""Runs one of llama.cpp's converters (convert_hf_to_gguf.py, convert_lora_to_gguf.py) from the
tools cache that `make gguf-tools` fills, in a child process started by train.gguf:

    python -m train.gguf_convert TOOLS_DIR SCRIPT_NAME [--name NAME] [converter arguments...]

with two additions: a byte-level BPE tokenizer whose pre-tokenizer is exactly Qwen2's is converted
with llama.cpp's "qwen2" pre-tokenizer type even when llama.cpp does not know its hash; and `--name`
is the file's `general.name` for either script (convert_lora_to_gguf.py has no option for it, and
without one llama.cpp names the file after its folder: "Merged", "Base", "Adapter").

Why that is correct: llama.cpp identifies a BPE pre-tokenizer by hashing the token ids of a test
string (get_vocab_base_pre). The ids depend on the vocabulary, so a newly trained tokenizer (the
tiny test model's, or a tokenizer extended for a domain) never matches a listed hash, even when it
splits text exactly as Qwen2 does. What the answer selects in llama.cpp is only the pre-tokenizer:
the regex that splits text before byte-level BPE (and clean_spaces off). The vocabulary and merges
are written into the GGUF separately. So for a tokenizer whose split regex and byte-level step are
Qwen2's, "qwen2" makes llama.cpp tokenize as the Hugging Face tokenizer does. llama.cpp's own
answer still wins whenever it recognises the hash.

Imports no other module of the workbench: it runs inside the converter's process.
"""

from __future__ import annotations

import json
import logging
import runpy
import sys
from pathlib import Path

# Qwen2's tokenizer.json: pre_tokenizer = Sequence[Split(this regex, Isolated), ByteLevel(no
# prefix space, no regex)]. llama.cpp's src/llama-vocab.cpp quotes it as the origin of its
# LLAMA_VOCAB_PRE_TYPE_QWEN2 regex.
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# llama.cpp applies no normalizer for this pre-tokenizer type; Qwen2's own NFC is accepted as it is
# for the real Qwen2 checkpoints (identical for NFC text).
QWEN2_NORMALIZERS = (None, {"type": "NFC"})


def pre_tokenizer_is_qwen2(tokenizer_json: dict) -> bool:
    """True when a tokenizer.json splits text exactly as Qwen2's (its offsets options aside)."""
    if (tokenizer_json.get("model") or {}).get("type") != "BPE":
        return False
    if tokenizer_json.get("normalizer") not in QWEN2_NORMALIZERS:
        return False
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if not steps or len(steps) != 2:
        return False
    split, byte_level = steps
    return (
        split.get("type") == "Split"
        and split.get("pattern") == {"Regex": QWEN2_SPLIT_PATTERN}
        and split.get("behavior") == "Isolated"
        and not split.get("invert", False)
        and byte_level.get("type") == "ByteLevel"
        and not byte_level.get("add_prefix_space", True)
        and not byte_level.get("use_regex", True)
    )


def _read_tokenizer_json(model_dir: Path) -> dict:
    try:
        return json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _register_qwen2_pre_tokenizer(base_module) -> None:
    original = base_module.TextModel.get_vocab_base_pre
    logger = base_module.logger

    def get_vocab_base_pre(self, tokenizer) -> str:
        if not pre_tokenizer_is_qwen2(_read_tokenizer_json(self.dir_model)):
            return original(self, tokenizer)
        level = logger.level
        logger.setLevel(logging.ERROR)  # its "not recognized" banner is not an error here
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            logger.setLevel(level)
            logger.info("tokenizer.ggml.pre: 'qwen2' (the pre-tokenizer is Qwen2's; the hash of a new vocabulary is not listed)")
            return "qwen2"
        finally:
            logger.setLevel(level)

    base_module.TextModel.get_vocab_base_pre = get_vocab_base_pre


def _name_models(base_module, name: str) -> None:
    """Every model the converter builds gets `name` as its model_name (general.name), unless the converter's
    own --model-name gave one."""
    original = base_module.ModelBase.__init__

    def __init__(self, *args, **kwargs):
        if kwargs.get("model_name") is None:
            kwargs["model_name"] = name
        original(self, *args, **kwargs)

    base_module.ModelBase.__init__ = __init__


def split_name(args: list[str]) -> tuple[str | None, list[str]]:
    """(the --name NAME given first, the converter's own arguments)."""
    if len(args) >= 2 and args[0] == "--name":
        return args[1], args[2:]
    return None, args


def main(argv: list[str]) -> None:
    tools, script_name, *args = argv
    name, args = split_name(args)
    script = Path(tools) / script_name
    # The converter's own layout: it imports `conversion` from beside it and its matching gguf-py
    # (it inserts gguf-py itself; `conversion` is put first here so the patches below apply).
    sys.path[:0] = [str(script.parent), str(script.parent / "gguf-py")]
    import conversion.base

    _register_qwen2_pre_tokenizer(conversion.base)
    if name:
        _name_models(conversion.base, name)
    sys.argv = [str(script), *args]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
