"""Fine-tuning on CPU with the tiny model: masking, step arithmetic, runs, stop/resume, early stop, recall."""

from __future__ import annotations

import json
import threading

import pytest

from tools.core.errors import UserError
from tests.fixtures_train import FACTS_DATASET, TINY, add_facts_dataset, fact_messages, load_facts
import global_var
from train.config import TrainConfig, plan_steps

MULTI_TURN = [
    {"role": "system", "content": "You answer questions about tidewater."},
    {"role": "user", "content": "What is tidewater?"},
    {"role": "assistant", "content": "A pipeline library."},
    {"role": "user", "content": "默认超时是多少?"},
    {"role": "assistant", "content": "默认超时是 300 秒。"},
]

# A Zephyr-style template without {% generation %} markers and with a different end token.
ZEPHYR = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


# ---------------------------------------------------------------- labels


def test_labels_cover_only_assistant_answers_and_end_token(tiny_model_dir):
    from train.data import IGNORE_INDEX, render_example

    tokenizer = _tokenizer(tiny_model_dir)
    example = render_example(tokenizer, MULTI_TURN)
    trained = [label for label in example.labels if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "A pipeline library.<|im_end|>默认超时是 300 秒。<|im_end|>"
    # Contiguous runs of trained tokens: exactly one per assistant turn, in order.
    runs, inside = [], False
    for position, label in enumerate(example.labels):
        if label != IGNORE_INDEX and not inside:
            runs.append(position)
        inside = label != IGNORE_INDEX
    assert len(runs) == 2
    # Every trained label equals its input id (the model shifts internally).
    assert all(label in (IGNORE_INDEX, token) for label, token in zip(example.labels, example.input_ids))
    # Agrees with the template's own {% generation %} mask.
    marked = tokenizer.apply_chat_template(MULTI_TURN, return_dict=True, return_assistant_tokens_mask=True)
    assert marked["input_ids"] == example.input_ids
    assert marked["assistant_masks"] == [int(label != IGNORE_INDEX) for label in example.labels]


def test_labels_for_a_template_without_generation_markers(tiny_model_dir):
    from train.data import IGNORE_INDEX, render_example

    tokenizer = _tokenizer(tiny_model_dir)
    tokenizer.chat_template = ZEPHYR
    example = render_example(tokenizer, MULTI_TURN)
    trained = tokenizer.decode([label for label in example.labels if label != IGNORE_INDEX])
    # Qwen2's split keeps punctuation with the newlines after it (">\n" is one token), so the token
    # that ends each "</s>" also carries the template's newline: trained, as the template emits it.
    assert trained.replace("</s>\n", "</s>") == "A pipeline library.</s>默认超时是 300 秒。</s>"


def test_tokenizer_without_template_gets_the_named_fallback(tiny_model_dir):
    from train.data import ensure_chat_template

    tokenizer = _tokenizer(tiny_model_dir)
    tokenizer.chat_template = None
    assert ensure_chat_template(tokenizer, "chatml") is True
    assert "<|im_start|>" in tokenizer.chat_template
    with pytest.raises(UserError) as caught:
        tokenizer.chat_template = None
        ensure_chat_template(tokenizer, "nonesuch")
    assert caught.value.key == "error.train_unknown_template"


def test_rendered_batch_masks_prompts_and_padding(tiny_model_dir):
    from train.data import IGNORE_INDEX, pad_batch, tokenize_items

    tokenizer = _tokenizer(tiny_model_dir)
    items = [{"messages": fact_messages(f)} for f in load_facts()[:4]] + [{"messages": MULTI_TURN}]
    rows, stats = tokenize_items(tokenizer, items, max_length=512)
    batch = pad_batch(rows, tokenizer.pad_token_id)
    for row, labels, mask, item in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], items):
        trained = [int(label) for label in labels if label != IGNORE_INDEX]
        answers = [m["content"] + "<|im_end|>" for m in item["messages"] if m["role"] == "assistant"]
        assert tokenizer.decode(trained) == "".join(answers)
        assert all(labels[mask == 0] == IGNORE_INDEX)
    assert stats["kept"] == 5 and stats["dropped_no_answer"] == 0


def test_items_whose_answer_is_cut_off_are_dropped(tiny_model_dir):
    from train.data import tokenize_items

    tokenizer = _tokenizer(tiny_model_dir)
    long_question = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "yes"}]
    rows, stats = tokenize_items(tokenizer, [{"messages": long_question}, {"messages": MULTI_TURN}], max_length=64)
    assert len(rows) == 1 and stats["dropped_no_answer"] == 1 and all(len(r["input_ids"]) <= 64 for r in rows)


# ---------------------------------------------------------------- config and step arithmetic


@pytest.mark.parametrize(
    "items, batch, accum, epochs, max_steps, expected",
    [
        (100, 2, 4, 3, 0, 39),  # ceil(100 / 8) = 13 per epoch
        (8, 2, 4, 1, 0, 1),
        (9, 2, 4, 1, 0, 2),  # the partial group at the end of an epoch still steps
        (40, 8, 1, 2, 0, 10),
        (40, 8, 1, 0.5, 0, 3),
        (40, 8, 1, 3, 7, 7),  # max_steps wins
    ],
)
def test_plan_steps(items, batch, accum, epochs, max_steps, expected):
    assert plan_steps(items, batch, accum, epochs, max_steps)["total_steps"] == expected


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"learning_rate": 0}, "learning_rate"),
        ({"batch_size": "two"}, "batch_size"),
        ({"grad_accum": 1.5}, "grad_accum"),
        ({"scheduler": "zigzag"}, "scheduler"),
        ({"batching": "magic"}, "batching"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
        ({"model": ""}, "model"),
    ],
)
def test_config_errors_name_the_field(changes, field):
    config = TrainConfig(**{"model": TINY, "dataset": FACTS_DATASET, **changes})
    with pytest.raises(UserError) as caught:
        config.validate()
    assert caught.value.params.get("field") == field
    assert field in caught.value.render("en")


def test_early_stopping_needs_an_eval_split(workbench):
    from train.launcher import start_training

    with pytest.raises(UserError) as caught:
        start_training(TrainConfig(model=TINY, dataset=FACTS_DATASET, max_steps=2, early_stopping_patience=2))
    assert caught.value.key == "error.train_patience_needs_eval"


# ---------------------------------------------------------------- a real run (shared, see fixtures_train)


def test_loss_decreases_and_lora_leaves_base_weights(facts_run):
    losses = facts_run.losses
    assert len(losses) >= 10
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:3]) / 3, losses
    assert facts_run.base_unchanged


def test_fine_tuned_model_answers_more_facts_exactly(facts_run):
    # Before training the tiny model never saw these Q/A pairs and answers none exactly (measured 0/40).
    # After 150 steps it recalls about 23/40 on this CPU (run-to-run noise is a few facts), so a
    # margin of 10 facts (25 points) is far above noise and far below the measured gain.
    print(f"exact answers: {facts_run.before_correct}/{facts_run.total} -> {facts_run.after_correct}/{facts_run.total} in {facts_run.seconds:.0f} s")
    assert facts_run.after_correct >= facts_run.before_correct + 10


def test_run_folder_holds_everything(in_facts_run):
    from train.runs import list_runs, read_run_log, run_status

    folder = in_facts_run.root / "training" / in_facts_run.run
    for name in ("config.json", "status.json", "metrics.json", "trainer_log.jsonl", "data/train.jsonl", "adapter/adapter_config.json"):
        assert (folder / name).exists(), name
    assert list((folder / "tensorboard").glob("events.out.tfevents.*"))
    # TRL's "padding-free without Flash Attention" warning does not hold for our per-item attention.
    assert "Flash Attention" not in (folder / "worker.log").read_text(encoding="utf-8")
    config = json.loads((folder / "config.json").read_text())
    assert config["plan"]["total_steps"] == 150 and config["model"] == TINY
    status = run_status(in_facts_run.run)
    assert status["state"] == "completed" and status["step"] == status["total_steps"] == 150
    assert status["percent"] == 100.0 and status["tokens_per_s"] > 0
    records = read_run_log(in_facts_run.run)
    assert {"step", "loss", "learning_rate", "epoch", "tokens_per_s", "eta_s", "percent"} <= records[1].keys()
    assert [r["run"] for r in list_runs()] == [in_facts_run.run]
    # The loaded model now carries the run's adapter, so Chat uses it.
    assert global_var.loaded_model().adapter_run == in_facts_run.run


# ---------------------------------------------------------------- control: one at a time, stop, resume, early stop


def _short_config(**changes) -> TrainConfig:
    base = dict(model=TINY, dataset=FACTS_DATASET, batch_size=4, grad_accum=2, learning_rate=5e-3, max_length=256, logging_steps=1, save_steps=50)
    return TrainConfig(**{**base, **changes})


def test_stop_then_resume_reaches_the_same_final_step(workbench):
    from train.launcher import resume_training, start_training
    from train.runs import latest_checkpoint, run_status

    STEPS = 60
    reached_three = threading.Event()

    def stop_at_three(record):
        if record.get("step", 0) >= 3 and "loss" in record and not reached_three.is_set():
            reached_three.set()
            global_var.current_training().request_stop()

    # 60 steps: the stop lands within a second (a few steps; the launcher reads progress every 0.2 s) of
    # step 3, far from the end even on a loaded machine, and the resume stays short.
    job = start_training(_short_config(max_steps=STEPS), on_progress=stop_at_three)
    # A second start while the first runs is refused with the reason.
    with pytest.raises(UserError) as caught:
        start_training(_short_config(max_steps=10))
    assert caught.value.key == "error.train_already_running"
    assert job.wait(300)
    assert reached_three.is_set()
    # The worker stops at the end of the optimizer step during which it saw the stop, with a checkpoint.
    assert job.state == "stopped" and 3 <= job.step < STEPS
    assert latest_checkpoint(job.run_dir).name == f"checkpoint-{job.step}"
    assert run_status(job.run_name)["resumable"] is True
    stopped_at = job.step

    resumed = resume_training(job.run_name)
    assert resumed.wait(600)
    resumed.raise_if_failed()
    status = run_status(job.run_name)
    assert status["state"] == "completed" and status["step"] == STEPS and status["total_steps"] == STEPS
    steps = [r["step"] for r in status["log"] if "loss" in r]
    # Every step logged exactly once, across the stop and the resume (records after the checkpoint are dropped).
    assert steps == sorted(set(steps)) and steps[-1] == STEPS and stopped_at in steps


def test_a_stop_asked_before_the_first_step_ends_the_run_after_it(workbench):
    from train.launcher import start_training
    from train.runs import latest_checkpoint

    # Started as one run of a seed group (`train --seeds`): the group is recorded with the run.
    job = start_training(_short_config(max_steps=50), group="g1", group_seeds=[42, 43])
    job.request_stop()  # the worker is still starting: the stop file waits for it
    assert job.wait(300)
    assert job.state == "stopped" and job.step == 1
    assert latest_checkpoint(job.run_dir).name == "checkpoint-1"
    config = json.loads((job.run_dir / "config.json").read_text(encoding="utf-8"))
    assert (config["group"], config["group_seeds"], config["seed"]) == ("g1", [42, 43], 42)


def test_early_stopping_on_rising_eval_loss_keeps_best_checkpoint(workbench):
    """Eval answers contradict the training answers, so eval loss rises as the model learns them."""
    from train.launcher import start_training
    from train.runs import run_status

    import global_var

    facts = load_facts()
    contradicting = [{"question": f["question"], "answer": facts[(i + 7) % len(facts)]["answer"]} for i, f in enumerate(facts)]
    store = global_var.datasets()
    add_facts_dataset("contradict", facts + contradicting)
    eval_ids = [item["id"] for item in store.items("contradict")[len(facts):]]
    store.set_meta("contradict", split={"eval_ratio": 0.5, "seed": 0, "eval_ids": eval_ids})

    config = _short_config(dataset="contradict", max_steps=150, batch_size=8, grad_accum=1, learning_rate=1e-2, lora_r=32,
                           lora_alpha=32, eval_steps=3, save_steps=3, early_stopping_patience=2, scheduler="constant")
    job = start_training(config)
    assert job.wait(300)
    job.raise_if_failed()
    status = run_status(job.run_name)
    assert status["state"] == "early_stopped" and status["early_stopped"] is True
    assert status["step"] < 150
    evals = [r for r in status["log"] if "eval_loss" in r]
    best = min(evals, key=lambda r: r["eval_loss"])
    assert status["best_checkpoint"] == f"checkpoint-{best['step']}"
    assert all(r["eval_perplexity"] > 1 for r in evals)
    assert evals[-1]["eval_loss"] > best["eval_loss"]
    metrics = json.loads((job.run_dir / "metrics.json").read_text())
    assert metrics["best_eval_loss"] == pytest.approx(best["eval_loss"])


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (4-bit QLoRA path)")
def test_qlora_4bit_short_run_on_gpu(workbench):
    from train.launcher import start_training

    job = start_training(_short_config(max_steps=3, load_in_4bit=True))
    assert job.wait(600)
    job.raise_if_failed()
    assert job.state == "completed"
