"""Shared fixtures of the model/training tests: the tiny model (built once, cached across sessions),
temporary work directories holding it, and one fine-tuning run on the Tidewater facts.

The fixtures are made known to every test by tests/conftest.py; test modules import only the helpers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import global_var
from tools.core.workdir import REPO_ROOT, SAMPLE_DOCS_SOURCE, SAMPLE_DOCSET

FACTS_PATH = REPO_ROOT / "tests" / "data" / "tidewater_facts.jsonl"
TINY = "tiny"
FACTS_DATASET = "facts"
# Every fourth fact is held out of the facts run's training: the control on which tuning should not help.
HELD_OUT_FACTS = frozenset(range(3, 40, 4))


def load_facts() -> list[dict]:
    return [json.loads(line) for line in FACTS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def fact_messages(fact: dict) -> list[dict]:
    return [{"role": "user", "content": fact["question"]}, {"role": "assistant", "content": fact["answer"]}]


def _tiny_model_fingerprint() -> str:
    """Changes when anything that shapes the tiny model changes, so the cache is rebuilt."""
    digest = hashlib.sha256()
    sources = [REPO_ROOT / "train" / "tiny_model.py", REPO_ROOT / "train" / "chat_templates.py", FACTS_PATH]
    sources += sorted(p for p in (SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET).rglob("*") if p.is_file())
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_model_dir(request, tmp_path_factory) -> Path:
    """The tiny model folder, built once and kept in the pytest cache between sessions."""
    from train.tiny_model import build_tiny_model

    from filelock import FileLock

    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache_root = Path(cache.mkdir("tiny-model")) if cache else tmp_path_factory.getbasetemp().parent / "tiny-model"
    cache_root.mkdir(parents=True, exist_ok=True)
    target = cache_root / _tiny_model_fingerprint()
    # The suite's two processes (tests/run_suite.py) share the cache: one builds, the other waits for it.
    with FileLock(str(cache_root.with_suffix(".lock"))):
        if not (target / "config.json").exists():
            for stale in cache_root.iterdir():
                shutil.rmtree(stale, ignore_errors=True)
            build_tiny_model(target, seed=0, log=lambda line: None)
    return target


def open_workdir(root: Path, tiny_model_dir: Path) -> Path:
    """Make `root` the process's work directory, with the tiny model as models/tiny."""
    global_var.reset()
    global_var.init(root)
    link = global_var.workdir().models / TINY
    if not link.exists():
        link.symlink_to(tiny_model_dir, target_is_directory=True)
    return root


def add_facts_dataset(name: str = FACTS_DATASET, facts: list[dict] | None = None) -> str:
    store = global_var.datasets()
    store.create(name)
    store.append_items(name, [(fact_messages(f), {"origin": "test"}) for f in (facts or load_facts())])
    return name


def _finish_jobs() -> None:
    job = global_var.current_training()
    if job is not None and job.is_running():
        job.request_stop()
        job.wait(120)


@pytest.fixture
def workbench(tmp_path, tiny_model_dir):
    """A fresh work directory with models/tiny and the facts dataset; model/job state cleared."""
    _finish_jobs()
    global_var.reset_runtime()
    open_workdir(tmp_path / "wd", tiny_model_dir)
    add_facts_dataset()
    yield global_var.workdir()
    _finish_jobs()
    global_var.reset_runtime()
    global_var.reset()


# ---------------------------------------------------------------- greedy answers


def greedy_answers(model, tokenizer, questions: list[str], max_new_tokens: int = 24) -> list[str]:
    """Greedy answers to single-turn questions, batched with left padding."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False) for q in questions]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False)
    finally:
        tokenizer.padding_side = side
    prompt_width = encoded["input_ids"].shape[1]
    return [tokenizer.decode(row[prompt_width:], skip_special_tokens=True).strip() for row in output]


def exact_matches(answers: list[str], facts: list[dict]) -> int:
    return sum(answer == fact["answer"] for answer, fact in zip(answers, facts))


# ---------------------------------------------------------------- one real fine-tuning run


@dataclass
class FactsRun:
    root: Path
    run: str
    loaded: object  # the LoadedModel carrying the trained adapter
    before_correct: int
    after_correct: int
    total: int
    base_unchanged: bool
    losses: list[float]
    seconds: float
    # Kept apart from `loaded`: loading another model empties the LoadedModel it replaces.
    model: object = None
    tokenizer: object = None


# Settings that make the tiny model memorise most facts in ~150 steps (measured: 0 -> 34 of 40).
FACTS_TRAINING = dict(max_steps=150, batch_size=8, grad_accum=1, learning_rate=1e-2, lora_r=32, lora_alpha=32,
                      warmup_ratio=0.05, scheduler="linear", save_steps=1000, logging_steps=10, seed=42)


@pytest.fixture(scope="session")
def facts_run(tmp_path_factory, tiny_model_dir) -> FactsRun:
    """Fine-tune the tiny model on 30 of the 40 Tidewater facts (HELD_OUT_FACTS are the control) once per
    session and measure recall on all 40."""
    import torch

    from train.config import TrainConfig
    from train.loading import load_model
    from train.launcher import start_training
    from train.runs import read_run_log

    _finish_jobs()
    global_var.reset_runtime()
    root = open_workdir(tmp_path_factory.mktemp("facts-run"), tiny_model_dir)
    facts = load_facts()
    add_facts_dataset(facts=[fact for index, fact in enumerate(facts) if index not in HELD_OUT_FACTS])
    questions = [f["question"] for f in facts]
    base = load_model(TINY, max_seq_length=512)
    before = exact_matches(greedy_answers(base.model, base.tokenizer, questions), facts)
    snapshot = {name: tensor.detach().clone() for name, tensor in base.model.named_parameters()}

    started = time.monotonic()
    job = start_training(TrainConfig(model=TINY, dataset=FACTS_DATASET, max_length=512, **FACTS_TRAINING))
    assert job.wait(600), "training did not finish in 10 minutes"
    job.raise_if_failed()
    seconds = time.monotonic() - started

    # The worker trained in its own process; the page's model is untouched until base + adapter are loaded.
    from train.export import run_adapter_dir
    from train.runs import require_run

    assert global_var.loaded_model() is base
    loaded = load_model(TINY, max_seq_length=512, adapter_dir=run_adapter_dir(require_run(job.run_name)))
    trained = loaded.model
    after = exact_matches(greedy_answers(trained, loaded.tokenizer, questions), facts)
    # LoRA must leave every base weight as it was: the adapter holds LoRA weights only, and the base
    # weights under it equal the snapshot (peft renames base layers to *.base_layer.*).
    base_now = {name.replace("base_model.model.", "").replace(".base_layer", ""): tensor for name, tensor in trained.named_parameters() if "lora_" not in name}
    unchanged = set(base_now) == set(snapshot) and all(torch.equal(snapshot[name], base_now[name]) for name in snapshot)
    unchanged = unchanged and _adapter_holds_only_lora(run_adapter_dir(require_run(job.run_name)))
    losses = [record["loss"] for record in read_run_log(job.run_name) if "loss" in record]
    result = FactsRun(root, job.run_name, loaded, before, after, len(facts), unchanged, losses, seconds, loaded.model, loaded.tokenizer)
    global_var.reset()
    return result


def _adapter_holds_only_lora(folder: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as handle:
        return all("lora_" in key for key in handle.keys())


@pytest.fixture
def in_facts_run(facts_run):
    """Point the process at the facts run's work directory (with its trained model loaded)."""
    global_var.reset()
    global_var.init(facts_run.root)
    global_var.reset_runtime()
    facts_run.loaded.model, facts_run.loaded.tokenizer = facts_run.model, facts_run.tokenizer
    global_var.set_loaded_model(facts_run.loaded)
    yield facts_run
    global_var.reset_runtime()
    global_var.reset()
