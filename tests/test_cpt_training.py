"""Continued pre-training on a doc set (stage cpt), doc text mixed into sft (doc_mix), and the LoRA variants:
text items from slices, every token trained, windows, seeded mixing with counts recorded, runs in the worker,
adapters that load on the original base, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import global_var
from tests.fixtures_train import FACTS_DATASET, TINY
from tools.core.errors import UserError
from tools.core.workdir import SAMPLE_DOCS_SOURCE, SAMPLE_DOCSET
from train.config import TrainConfig

RELAYS = ("Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Gum", "Hazel")


def _tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def _cpt(**changes) -> TrainConfig:
    base = dict(model=TINY, stage="cpt", docs=SAMPLE_DOCSET, max_length=256, batch_size=4, grad_accum=1, logging_steps=1,
                save_steps=50, seed=3)
    return TrainConfig(**{**base, **changes}).validate()


def _write_relay_docs(root: Path) -> Path:
    """A doc set the tiny model never saw: one page per relay, all written alike, so text learned from some
    pages lowers the loss on the held-out ones."""
    for index, name in enumerate(RELAYS):
        folder = root / ("guide" if index % 2 else "relays")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name.lower()}.md").write_text(
            f"# Relay {name}\n\nThe {name} relay listens on port {7400 + index} and forwards frames to the "
            f"{('north', 'south', 'east', 'west')[index % 4]} queue. Its buffer holds {16 * (index + 1)} frames. When the "
            f"buffer is full, the {name} relay drops the oldest frame and writes a warning to the harbor journal. To "
            f"restart the {name} relay, run `harbor restart {name.lower()}` and wait for the green lamp.\n",
            encoding="utf-8")
    return root


# ---------------------------------------------------------------- items and rows


def test_each_slice_becomes_a_text_item_with_its_heading_path_as_context():
    from tools.docs.docsets import slice_docset
    from train.cpt import DOC_KIND, doc_items

    folder = SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET
    slices, _ = slice_docset(folder)
    items = doc_items(folder, SAMPLE_DOCSET)
    assert len(items) == len(slices) > 5
    for item, piece in zip(items, slices):
        assert item["text"] == piece.text and item["source"] == piece.source and item["kind"] == DOC_KIND
        assert item["context"] == " > ".join([piece.source, *piece.heading_path])
        # The exam's coverage reads the slice a run trained on from this provenance.
        assert item["provenance"]["unit"] == f"{piece.slice_id}:text" and item["provenance"]["source_doc"] == piece.source
    assert any(item["context"].count(" > ") >= 2 for item in items)  # a section below a page heading
    assert doc_items(folder, SAMPLE_DOCSET) == items  # the same doc set gives the same items


def test_running_text_trains_every_token_and_long_text_is_split_into_windows(tiny_model_dir):
    from train.data import text_rows

    tokenizer = _tokenizer(tiny_model_dir)
    context, text = "guide/install.md > Install > GPU", "Run tw install --gpu to fetch the CUDA wheels. " * 40
    head = tokenizer(context + "\n\n", add_special_tokens=False)["input_ids"]
    body = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert tokenizer.bos_token_id is None  # the tiny Qwen2 tokenizer adds no BOS, as a pre-training row of it has none

    whole = text_rows(tokenizer, text, context, max_length=None)
    assert len(whole) == 1 and whole[0]["input_ids"] == head + body
    assert whole[0]["labels"] == whole[0]["input_ids"]  # no mask: every token is trained on

    windows = text_rows(tokenizer, text, context, max_length=64)
    assert len(windows) == -(-len(body) // (64 - len(head))) > 3
    for row in windows:
        assert len(row["input_ids"]) <= 64 and row["labels"] == row["input_ids"]
        assert row["input_ids"][:len(head)] == head  # each window opens with the context again
    # Nothing is cut away: the windows' bodies are the text and EOS, in order.
    assert [token for row in windows for token in row["input_ids"][len(head):]] == body
    # A context that would take half the window is left off the windows.
    long_context = " > ".join(["a very long heading path"] * 12)
    assert all(row["input_ids"][:3] == body[:3] for row in text_rows(tokenizer, text, long_context, max_length=64)[:1])


def test_text_and_question_items_tokenize_into_one_row_format(tiny_model_dir):
    from train.data import IGNORE_INDEX, tokenize_items

    tokenizer = _tokenizer(tiny_model_dir)
    qa = {"id": "q1", "messages": [{"role": "user", "content": "Port of Alder?"}, {"role": "assistant", "content": "7400."}]}
    text = {"id": "doc-1", "text": "The Alder relay listens on port 7400. " * 30, "context": "relays/alder.md > Relay Alder"}
    rows, stats = tokenize_items(tokenizer, [qa, text], max_length=96)
    qa_row, text_rows_ = rows[0], rows[1:]
    assert tokenizer.decode([t for t in qa_row["labels"] if t != IGNORE_INDEX]) == "7400.<|im_end|>"
    assert len(text_rows_) > 1 and all(row["labels"] == row["input_ids"] for row in text_rows_)
    assert set(rows[0]) == set(rows[1]) == {"input_ids", "labels"}
    assert (stats["text_items"], stats["split_texts"], stats["kept"]) == (1, 1, len(rows))


def test_cpt_items_hold_out_slices_and_mix_general_text_at_the_share_seeded():
    from train.cpt import cpt_items, doc_items, mix_counts
    from train.forgetting import MIX_MODULES, SAMPLE_MODULES, general_mix_count

    folder = SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET
    slices = len(doc_items(folder, SAMPLE_DOCSET))
    config = _cpt(eval_ratio=0.2, general_mix=0.25)
    train, held_out = cpt_items(folder, config)
    assert len(held_out) == round(slices * 0.2)
    assert {i["id"] for i in held_out}.isdisjoint(i["id"] for i in train)
    counts = mix_counts(train)
    assert counts == {"qa_items": 0, "doc_items": slices - len(held_out),
                      "general_items": general_mix_count(slices - len(held_out), 0.25)}
    assert counts["general_items"] / len(train) == pytest.approx(0.25, abs=0.05)
    general = [item for item in train if item["kind"] == "general"]
    # General text comes from the modules kept apart from the forgetting guard's measured sample.
    modules = {item["source"].split(":")[1].split(".")[0] for item in general}
    assert modules <= set(MIX_MODULES) and not modules & set(SAMPLE_MODULES)
    assert all(item["text"] and "text" in item for item in general)
    # Seeded: the same config gives the same items in the same order, another seed another order.
    assert cpt_items(folder, config) == (train, held_out)
    other_train, _ = cpt_items(folder, _cpt(eval_ratio=0.2, general_mix=0.25, seed=4))
    assert [i["id"] for i in other_train] != [i["id"] for i in train]


def test_doc_mix_puts_doc_text_among_the_answers_at_its_share():
    from train.cpt import mix_counts, mix_doc_items, planned_counts
    from train.forgetting import general_mix_count

    qa = [{"id": f"q{i}", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]} for i in range(30)]
    config = TrainConfig(model=TINY, dataset="d", docs=SAMPLE_DOCSET, doc_mix=0.2, general_mix=0.1, seed=5).validate()
    mixed = mix_doc_items(qa, SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET, config)
    assert mix_counts(mixed) == {"qa_items": 30, "doc_items": general_mix_count(30, 0.2), "general_items": 0}
    assert mixed != qa + mixed[30:]  # shuffled in, not appended
    assert mixed == mix_doc_items(qa, SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET, config)
    # What the run is recorded to train on: the general chat items its worker adds (sft) are counted too.
    assert planned_counts(mixed, config)["general_items"] == general_mix_count(len(mixed), 0.1)


# ---------------------------------------------------------------- refusals, before any worker starts


def test_cpt_needs_a_doc_set_that_exists_and_has_text(workbench):
    from train.launcher import plan_training, start_training

    with pytest.raises(UserError) as caught:
        TrainConfig(model=TINY, stage="cpt").validate()
    assert caught.value.key == "error.train_stage_needs_docs"
    with pytest.raises(UserError) as caught:
        plan_training(_cpt(docs="nonesuch"))
    assert caught.value.key == "error.cpt_docs_missing" and "nonesuch" in str(caught.value)
    assert SAMPLE_DOCSET in caught.value.render("en")  # and the doc sets there are
    (global_var.workdir().docs / "blank").mkdir()
    (global_var.workdir().docs / "blank" / "empty.md").write_text("", encoding="utf-8")
    with pytest.raises(UserError) as caught:
        start_training(_cpt(docs="blank"))
    assert caught.value.key == "error.cpt_docs_empty" and "blank" in str(caught.value)
    (global_var.workdir().docs / "one").mkdir()
    (global_var.workdir().docs / "one" / "page.md").write_text("# One page\n\nOnly one slice to train on.\n", encoding="utf-8")
    with pytest.raises(UserError) as caught:
        plan_training(_cpt(docs="one", eval_ratio=0.1))
    assert caught.value.key == "error.cpt_split_too_small"
    assert plan_training(_cpt(docs="one"))["items"] == 1  # without a held-out share it trains
    assert not list(global_var.workdir().training.glob("*/config.json"))


@pytest.mark.parametrize("changes, key", [
    ({"lora_variant": "loftq"}, "error.lora_loftq_needs_4bit"),
    ({"lora_variant": "pissa", "load_in_4bit": True}, "error.lora_pissa_4bit"),
    ({"lora_variant": "pissa", "stage": "dpo", "dataset": "d", "docs": ""}, "error.lora_pissa_reference"),
    ({"lora_variant": "dora", "stage": "sft", "dataset": "d", "docs": "", "init_run": "earlier"}, "error.lora_variant_init_run"),
])
def test_variant_rules_that_hold_on_any_machine(changes, key):
    with pytest.raises(UserError) as caught:
        TrainConfig(**{**dict(model=TINY, stage="cpt", docs=SAMPLE_DOCSET), **changes}).validate()
    assert caught.value.key == key


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_loftq_is_refused_without_a_gpu_before_a_worker_starts(workbench):
    from train.launcher import start_training

    with pytest.raises(UserError) as caught:
        start_training(_cpt(lora_variant="loftq", load_in_4bit=True, max_steps=1))
    assert caught.value.key == "error.lora_loftq_needs_gpu"
    assert not global_var.workdir().training.exists() or not any(global_var.workdir().training.iterdir())


def test_variants_unsloth_cannot_train_are_refused_where_the_worker_would_use_it(workbench, monkeypatch):
    import train.loading
    from train.launcher import start_training
    from train.lora_variants import check_variant_runs_here, unsloth_options

    # A machine where the one-process worker would load with Unsloth (installed, with CUDA).
    monkeypatch.setattr(train.loading, "unsloth_available", lambda: True)
    with pytest.raises(UserError) as caught:
        start_training(_cpt(lora_variant="pissa", max_steps=1))
    assert caught.value.key == "error.lora_variant_unsloth" and "pissa" in str(caught.value)
    assert not any((global_var.workdir().training).glob("*/config.json"))
    check_variant_runs_here(_cpt(lora_variant="pissa", nproc=2))  # several processes load with transformers + peft
    assert unsloth_options(_cpt(lora_variant="dora")) == {"use_rslora": False, "use_dora": True}
    assert unsloth_options(_cpt(lora_variant="rslora")) == {"use_rslora": True}


# ---------------------------------------------------------------- LoRA variants: the saved adapter is the trained model


@pytest.mark.parametrize("variant", ["lora", "dora", "rslora", "pissa"])
def test_each_variant_trains_and_its_saved_adapter_loads_on_the_original_base(variant, tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from train import loading
    from train.lora_variants import PISSA_INIT, converts_on_save, keep_initial_adapter, save_converted_adapter
    from train.trainer import _apply_lora

    config = _cpt(lora_variant=variant, lora_r=8, lora_alpha=16)
    loaded = loading.load_for_training(TINY, str(tiny_model_dir), True, 256, False, None, use_unsloth=False)
    model = _apply_lora(loaded, config)
    lora_config = model.peft_config["default"]
    assert (lora_config.use_dora, lora_config.use_rslora) == (variant == "dora", variant == "rslora")
    if converts_on_save(config):
        keep_initial_adapter(model, tmp_path)
    ids = torch.randint(0, 2000, (2, 24), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        trained = model(input_ids=ids).logits
    if converts_on_save(config):
        save_converted_adapter(model, tmp_path / "adapter", tmp_path)
        model.save_pretrained(str(tmp_path / "residual-form"))  # what a checkpoint holds
    else:
        model.save_pretrained(str(tmp_path / "adapter"))

    def logits_on_the_original_base(folder: Path):
        base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
        with torch.no_grad():
            before = base(input_ids=ids).logits
            reloaded = PeftModel.from_pretrained(base, str(folder)).eval()
            return before, reloaded(input_ids=ids).logits

    base_logits, reloaded = logits_on_the_original_base(tmp_path / "adapter")
    assert not torch.allclose(trained, base_logits, atol=1e-3)  # the step changed the model
    assert torch.allclose(reloaded, trained, atol=1e-4), float((reloaded - trained).abs().max())
    if variant == "pissa":
        saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
        assert (saved["r"], saved["lora_alpha"], saved["init_lora_weights"]) == (16, 32, True)  # dW as a rank-2r LoRA
        assert (tmp_path / PISSA_INIT / "adapter_config.json").exists()
        # The control: the adapter as trained (a checkpoint's residual form) does not fit the original base.
        _, unconverted = logits_on_the_original_base(tmp_path / "residual-form")
        assert not torch.allclose(unconverted, trained, atol=1e-2)


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available() or __import__("importlib").util.find_spec("bitsandbytes") is None,
                    reason="LoftQ needs a CUDA GPU with bitsandbytes (4-bit base)")
def test_loftq_on_a_4bit_base_trains_one_step_in_the_worker(workbench):
    from train.launcher import start_training

    job = start_training(_cpt(lora_variant="loftq", load_in_4bit=True, max_steps=1, nproc=1))
    assert job.wait(600)
    job.raise_if_failed()
    assert json.loads((job.run_dir / "metrics.json").read_text())["lora_variant"] == "loftq"


# ---------------------------------------------------------------- runs in the worker


def _token_loss(model, rows) -> float:
    """Mean loss per predicted token over `rows`, each scored alone (as the trainer's per-item attention does)."""
    import torch

    total = count = 0.0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            total += float(model(input_ids=ids, labels=ids).loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    return total / count


def test_a_cpt_run_lowers_the_loss_on_unseen_doc_text_and_its_pissa_adapter_fits_the_base(workbench):
    from train.data import tokenize_items
    from train.inference import adapter_enabled
    from train.launcher import plan_training, start_training
    from train.loading import load_model
    from train.runs import load_items, read_run_log

    _write_relay_docs(global_var.workdir().docs / "harbor")
    config = _cpt(docs="harbor", eval_ratio=0.25, general_mix=0.2, max_steps=12, eval_steps=4, learning_rate=5e-3,
                  lora_variant="pissa", lora_r=8, lora_alpha=16)
    plan = plan_training(config)
    assert (plan["items"], plan["eval_items"]) == (6 + 2, 2)  # 6 slices trained + 2 general texts; 2 held out
    job = start_training(config)
    assert job.run_name.startswith("harbor-")  # named after the doc set: a cpt run has no dataset
    assert job.wait(300)
    job.raise_if_failed()

    folder = job.run_dir
    trained_items = load_items(folder / "data" / "train.jsonl")
    assert all({"text", "source"} <= item.keys() for item in trained_items)
    saved = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert saved["data"] == {"qa_items": 0, "doc_items": 6, "general_items": 2}
    assert {k: metrics["data"][k] for k in saved["data"]} == saved["data"]  # the worker trained on what was recorded
    assert metrics["lora_variant"] == "pissa" and metrics["state"] == "completed" and metrics["eval_items"] == 2
    evals = [r["eval_loss"] for r in read_run_log(job.run_name) if "eval_loss" in r]
    assert len(evals) == 3 and evals[-1] < evals[0]

    # The saved (converted) adapter on the original base reproduces the trained model: its loss on the held-out
    # slices is the worker's last eval loss, and below the base model's.
    loaded = load_model(TINY, max_seq_length=256, adapter_dir=folder / "adapter")
    rows, _ = tokenize_items(loaded.tokenizer, load_items(folder / "data" / "eval.jsonl"), 256)
    tuned = _token_loss(loaded.model, rows)
    with adapter_enabled(loaded.model, False):
        base = _token_loss(loaded.model, rows)
    print(f"held-out doc loss: base {base:.3f} -> tuned {tuned:.3f} (worker's last eval {evals[-1]:.3f})")
    assert tuned == pytest.approx(evals[-1], rel=1e-3)
    assert tuned < base - 0.1
    # Base-vs-tuned answer evaluation has no questions to ask a cpt run: refused, saying where its figures are.
    from train.evaluation import check_evaluable

    with pytest.raises(UserError) as caught:
        check_evaluable(job.run_name)
    assert caught.value.key == "error.eval_cpt_run"


def test_sft_with_doc_mix_trains_on_answers_and_doc_text(workbench):
    """Doc text rows and answer rows in one run, packed (the rows share one format, so every batching mode takes them)."""
    from train.forgetting import general_mix_count
    from train.launcher import start_training
    from train.runs import load_items

    config = TrainConfig(model=TINY, dataset=FACTS_DATASET, docs=SAMPLE_DOCSET, doc_mix=0.25, max_steps=2, batch_size=4,
                         grad_accum=1, max_length=256, lora_variant="dora", save_steps=50, batching="packing").validate()
    job = start_training(config)
    assert job.wait(300)
    job.raise_if_failed()
    facts = len(global_var.datasets().items(FACTS_DATASET))
    expected = {"qa_items": facts, "doc_items": general_mix_count(facts, 0.25), "general_items": 0}
    items = load_items(job.run_dir / "data" / "train.jsonl")
    assert sum("text" in item for item in items) == expected["doc_items"]
    assert all(item["provenance"]["origin"] == "docs" for item in items if "text" in item)
    metrics = json.loads((job.run_dir / "metrics.json").read_text())
    assert json.loads((job.run_dir / "config.json").read_text())["data"] == expected
    assert {k: metrics["data"][k] for k in expected} == expected and metrics["data"]["text_items"] == expected["doc_items"]
    assert metrics["lora_variant"] == "dora" and metrics["global_step"] == 2
    assert json.loads((job.run_dir / "adapter" / "adapter_config.json").read_text())["use_dora"] is True


def test_the_train_tab_plans_a_cpt_run_without_a_dataset(workbench):
    from frontend.web import train_tab
    from train.cpt import doc_items

    defaults = {name: spec["default"] for name, spec in TrainConfig.field_help().items()}
    values = [{**defaults, "stage": "cpt", "docs": SAMPLE_DOCSET, "max_length": 256}[name] for name in train_tab.FIELD_NAMES]
    plan = train_tab.show_plan("en", TINY, None, "", *values)
    slices = len(doc_items(global_var.workdir().docs / SAMPLE_DOCSET, SAMPLE_DOCSET))
    assert f"{slices} train items, 0 eval items" in plan
    sft = [{**defaults, "max_length": 256}[name] for name in train_tab.FIELD_NAMES]
    assert train_tab.show_plan("en", TINY, None, "", *sft) == train_tab.t("ttab.plan_pick_dataset", "en")


def test_cpt_leaves_out_the_sections_an_exam_holds_out_as_its_control(workbench):
    """A control section trained as running text would no longer be untrained: cpt skips it, as generation does."""
    from train.cpt import doc_items
    from train.exam import build_facts_exam

    folder = workbench.docs / "tidewater"
    every = doc_items(folder, "tidewater", global_var.workspace().exams)
    control = every[0]["source"]
    from tests.fixtures_train import load_facts

    exam = build_facts_exam(load_facts()[:4], name="ctl")
    global_var.workspace().exams.save_new_version(exam.model_copy(update={"docset": "tidewater", "control_sections": [control]}))
    kept = doc_items(folder, "tidewater", global_var.workspace().exams)
    assert kept and all(item["source"] != control for item in kept) and len(kept) < len(every)
