"""A tiny Qwen2-architecture model built offline: its own byte-level BPE tokenizer, a ChatML
template that renders tool calls (train.chat_templates.CHATML_TOOLS; plain ChatML for conversations
without them) and a few seconds of pre-training on the sample docs, so LoRA has something to adapt.

Used by the tests and for trying the workbench on a CPU box. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import REPO_ROOT, SAMPLE_DOCS_SOURCE, SAMPLE_DOCSET
from train.chat_templates import CHATML_SPECIAL_TOKENS, CHATML_TOOLS
from train.gguf_convert import QWEN2_SPLIT_PATTERN

DEFAULT_TINY_NAME = "tiny-qwen2"
FACTS_FILE = REPO_ROOT / "tests" / "data" / "tidewater_facts.jsonl"
DOC_SUFFIXES = (".md", ".txt", ".html", ".htm", ".rst")

# Sizes: ~0.6 M parameters (a few MB), big enough to memorise a few dozen facts.
VOCAB_SIZE = 2048
HIDDEN_SIZE = 128
INTERMEDIATE_SIZE = 352
LAYERS = 2
HEADS = 4
KV_HEADS = 2
CONTEXT_LENGTH = 1024
PRETRAIN_BLOCK = 128
PRETRAIN_STEPS = 150
PRETRAIN_BATCH = 16
PRETRAIN_LR = 3e-3


def read_corpus(docs_dir: Path) -> list[str]:
    """Every text document under `docs_dir`, in a stable order."""
    files = sorted(p for p in Path(docs_dir).rglob("*") if p.is_file() and p.suffix.lower() in DOC_SUFFIXES)
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def heading_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) pairs of a Markdown text; used to teach the tiny model the chat layout."""
    sections, heading, body = [], None, []
    for line in text.splitlines():
        match = re.match(r"^#{1,6}\s+(.*)", line)
        if match:
            if heading and "".join(body).strip():
                sections.append((heading, "\n".join(body).strip()))
            heading, body = match.group(1).strip(), []
        else:
            body.append(line)
    if heading and "".join(body).strip():
        sections.append((heading, "\n".join(body).strip()))
    return sections


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE tokenizer (any script, Chinese included) wrapped for transformers.

    It splits text exactly as Qwen2's tokenizer does (its Split regex, then byte-level), so that
    llama.cpp's converter can give it Qwen2's pre-tokenizer type (see train.gguf_convert) and a
    GGUF of the tiny model tokenizes as the Hugging Face folder does.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(CHATML_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        model_max_length=CONTEXT_LENGTH,
    )
    tokenizer.chat_template = CHATML_TOOLS
    return tokenizer


def _pretraining_sequences(tokenizer, docs: list[str]) -> list[list[int]]:
    """Blocks of raw doc text plus heading -> section chats, so both prose and the chat layout are seen."""
    stream: list[int] = []
    for doc in docs:
        stream += tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.pad_token_id]
    blocks = [stream[i : i + PRETRAIN_BLOCK] for i in range(0, len(stream) - PRETRAIN_BLOCK + 1, PRETRAIN_BLOCK // 2)]
    for doc in docs:
        for heading, body in heading_sections(doc):
            chat = [{"role": "user", "content": heading}, {"role": "assistant", "content": body[:300]}]
            ids = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]
            blocks.append(list(ids)[:PRETRAIN_BLOCK])
    return blocks


def build_tiny_model(out_dir: Path | str, seed: int = 0, docs_dir: Path | str | None = None, log=print,
                     progress: Callable[[int, int], None] | None = None) -> Path:
    """Build, pre-train and save the tiny model as a normal Hugging Face folder at `out_dir`;
    `log` gets a line now and then (in the process language), `progress(step, total)` every step."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    started = time.monotonic()
    out_dir = Path(out_dir)
    docs = read_corpus(Path(docs_dir) if docs_dir else SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET)
    if not docs:
        raise UserError("error.train_tiny_no_docs", path=str(docs_dir or SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET))
    facts = []
    if FACTS_FILE.exists():
        for line in FACTS_FILE.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                facts.append(f"{record['question']}\n{record['answer']}")
    tokenizer = train_tokenizer(docs + facts)

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=CONTEXT_LENGTH,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    model = Qwen2ForCausalLM(config)

    sequences = _pretraining_sequences(tokenizer, docs)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 10) * max(0.05, 1 - step / PRETRAIN_STEPS))
    # On a CUDA box train there: once Unsloth is imported in the process it patches Qwen2's forward
    # with GPU-only kernels, and a CPU forward would fail.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.train()
    for step in range(PRETRAIN_STEPS):
        picks = torch.randint(len(sequences), (PRETRAIN_BATCH,), generator=generator).tolist()
        batch = [sequences[i] for i in picks]
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
        loss = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if progress is not None:
            progress(step + 1, PRETRAIN_STEPS)
        if step % 50 == 0 or step == PRETRAIN_STEPS - 1:
            log(t("tiny.step", step=step + 1, total=PRETRAIN_STEPS, loss=f"{loss.item():.3f}"))
    model.eval()
    model.to("cpu")

    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=64,
    )
    # Write into a temp sibling then swap, so an interrupted build never leaves half a model.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "README.md").write_text(
            f"# {out_dir.name}\n\nTiny Qwen2-architecture test model built offline by `python main.py make-tiny-model` "
            f"(seed {seed}, {sum(p.numel() for p in model.parameters()):,} parameters, pre-trained {PRETRAIN_STEPS} steps "
            "on the sample docs). Not useful for anything but tests and demos.\n",
            encoding="utf-8",
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
        out_dir.chmod(0o755)  # mkdtemp creates it private; a model folder is ordinary user data
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(t("tiny.saved", path=out_dir, seconds=f"{time.monotonic() - started:.1f}"))
    return out_dir
