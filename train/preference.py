"""Preference tuning, the dpo, orpo and kto stages (train.config.STAGES), and starting a run from another run's
adapter (init_run).

A preference item (schema.dataset) is a dataset item whose messages end with the chosen answer, plus a
rejected answer (a pair) or a KTO label. Here such items become the rows TRL's trainers take, each stage's
trainer is built on the model train.trainer prepared (the same loading, LoRA, callbacks, checkpoints and
run folder as supervised tuning), the reward figures TRL logs get the names trainer_log.jsonl keeps, and
`preference_margins` measures what the tuning is for: how much likelier a model finds the chosen answers
than the rejected ones (the tests and the benchmark read it).

How each trainer meets the chat template (the one supervised tuning renders with, train.data):
  dpo, kto  conversational rows ({"prompt": messages, "chosen"/"completion": [answer]}): TRL renders the
            prompt with the generation prompt and the prompt with the answer, and trains on the difference
            (the answer, its end-of-turn marker and the newline after it). A text row would have the tokenizer
            add its special tokens (a BOS) to the rendered text a second time.
  orpo      text rows, the rendered prompt and the answer span supervised tuning trains (answer + end-of-turn
            marker): ORPOTrainer renders a conversational row and then appends the end-of-text token again
            ("<|im_end|>\\n<|im_end|>" with ChatML); after the span it adds one only where the template's
            marker is not the end-of-text token.
The reference model of dpo and kto is the model the run starts from: TRL 1.13 copies the trainable adapter
into a frozen adapter named "ref" before the first step and switches to it for the reference
log-probabilities. From a fresh LoRA that is the base model (its B matrices are zero); from an init_run's
adapter it is that run's model, so preference tuning on top of an sft run stays near the sft model.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from schema.dataset import preference_kind
from schema.run_state import RunState
from tools.core.errors import UserError
from train.config import STAGES, TrainConfig
from train.data import assistant_spans
from train.runs import ADAPTER_DIR, CONFIG_FILE, read_json, require_run, settled_status

PAIRED_STAGES = ("dpo", "orpo")  # a row is a chosen and a rejected answer to one conversation
REFERENCE_STAGES = ("dpo", "kto")  # trained against a frozen reference: the model the run starts from
REFERENCE_ADAPTER = "ref"  # the name TRL gives the frozen copy of the trainable adapter
INIT_ADAPTER_DIR = "init_adapter"  # in the run folder: the init_run's adapter, copied when the run starts
# TRL's log keys -> the names trainer_log.jsonl keeps (eval records: both with "eval_" in front).
REWARD_FIELDS = {
    "rewards/margins": "reward_margin",  # mean of beta × (chosen − rejected log-ratio to the reference)
    "rewards/accuracies": "reward_accuracy",  # share of pairs whose chosen answer has the larger reward
    "rewards/chosen": "reward_chosen",
    "rewards/rejected": "reward_rejected",
    "logps/chosen": "logp_chosen",  # the policy's log-probability of the answers (orpo: per token)
    "logps/rejected": "logp_rejected",
    "kl": "kl",  # kto: the KL estimate of the policy from the reference
    "nll_loss": "nll_loss",  # orpo: the supervised part of its loss
    "log_odds_ratio": "log_odds_ratio",  # orpo: the odds-ratio part
}


def is_preference_stage(stage: str) -> bool:
    return STAGES[stage].data == "preference"


# ---------------------------------------------------------------- the launcher's side: which items, how many rows


def stage_items(config: TrainConfig, train_items: list[dict], eval_items: list[dict]) -> tuple[list[dict], list[dict]]:
    """The items of the dataset's split that the run's stage trains on, or a UserError saying what to do.

    sft leaves items labelled undesirable (label false) out: it would learn them as good answers.
    dpo and orpo need every item to be a pair, kto a pair or a labelled item."""
    if config.stage == "sft":
        wanted = [item for item in train_items if item.get("label") is not False]
        return wanted, [item for item in eval_items if item.get("label") is not False]
    if is_preference_stage(config.stage):
        check_preference_items(config.stage, list(train_items) + list(eval_items), config.dataset)
    return train_items, eval_items


def check_preference_items(stage: str, items: list[dict], dataset: str = "") -> None:
    kind = preference_kind(items)
    if kind is None:
        raise UserError("error.pref_not_preference", stage=stage, dataset=dataset or "-")
    if stage in PAIRED_STAGES and kind != "pairs":
        raise UserError("error.pref_needs_pairs", stage=stage, dataset=dataset or "-")


def stage_row_count(stage: str, items: list[dict]) -> int:
    """The rows the stage's trainer steps over: kto takes a pair as two rows (its chosen answer desirable,
    its rejected one not), every other stage one row per item."""
    if stage == "kto":
        return sum(2 if item.get("rejected") else 1 for item in items)
    return len(items)


# ---------------------------------------------------------------- init_run


def init_run_adapter(config: TrainConfig, location: str) -> Path | None:
    """The adapter folder of `config.init_run` (None without one), checked: the run finished with an adapter
    and was trained on the base model at `location` (resolved as the launcher resolves config.model)."""
    if not config.init_run:
        return None
    folder = require_run(config.init_run)
    adapter = folder / ADAPTER_DIR
    if not (adapter / "adapter_config.json").exists():
        raise UserError("error.init_run_no_adapter", run=config.init_run, state=settled_status(folder).get("state", RunState.UNKNOWN))
    saved = read_json(folder / CONFIG_FILE)
    if not _same_model(str(saved.get("model_location") or saved.get("model") or ""), location):
        raise UserError("error.init_run_other_model", run=config.init_run, init_model=saved.get("model") or "?", model=config.model)
    return adapter


def _same_model(one: str, other: str) -> bool:
    if one == other:
        return True
    first, second = Path(one).expanduser(), Path(other).expanduser()
    # A hub id is not a path that exists; two folders are the same model when they resolve alike (a symlink).
    return first.is_absolute() and second.is_absolute() and first.exists() and first.resolve() == second.resolve()


def copy_init_adapter(adapter: Path, folder: Path) -> Path:
    """Copy the init_run's adapter into the new run's folder: the run (and its resume) keeps what it started
    from when the other run is deleted or trained on. Only the adapter's own files, not its tokenizer."""
    target = folder / INIT_ADAPTER_DIR
    target.mkdir(parents=True)
    for path in adapter.iterdir():
        if path.is_file() and path.name.startswith("adapter_"):
            shutil.copy2(path, target / path.name)
    return target


def load_init_adapter(loaded, folder: Path):
    """The base model in `loaded` wrapped with the adapter in `folder` as the trainable adapter ("default")."""
    from peft import PeftModel

    if not (folder / "adapter_config.json").exists():
        raise UserError("error.train_adapter_missing", path=str(folder))
    return PeftModel.from_pretrained(loaded.model, str(folder), is_trainable=True)


# ---------------------------------------------------------------- rows


def _chat(messages: list[dict]) -> list[dict]:
    """The messages as the chat template sees them (`weight` is training metadata, not text)."""
    return [{key: value for key, value in message.items() if key != "weight"} for message in messages]


def _answer(content: str) -> list[dict]:
    return [{"role": "assistant", "content": content}]


def rendered_answer(tokenizer, prompt: list[dict], answer: str) -> tuple[str, str]:
    """(prompt text, answer text) of `answer` after `prompt`, split where supervised tuning's loss starts and
    ends (train.data.assistant_spans): the answer text is the answer and the template's end-of-turn marker."""
    text, spans = assistant_spans(tokenizer, _chat(prompt) + _answer(answer))
    start, end = spans[-1]
    return text[:start], text[start:end]


def preference_rows(tokenizer, stage: str, items: list[dict], seed: int) -> tuple[list[dict], dict]:
    """The rows `stage`'s TRL trainer takes for `items`, and their counts (for status.json and metrics.json)."""
    if items:
        check_preference_items(stage, items)
    pairs = [item for item in items if item.get("rejected")]
    rows: list[dict] = []
    if stage == "kto":
        for item in items:
            prompt, answer = _chat(item["messages"][:-1]), _chat(item["messages"][-1:])
            if item.get("rejected"):
                rows.append({"prompt": prompt, "completion": answer, "label": True})
                rows.append({"prompt": prompt, "completion": _answer(item["rejected"]), "label": False})
            else:
                rows.append({"prompt": prompt, "completion": answer, "label": bool(item["label"])})
        # KTOTrainer steps through its rows in order (its KL term pairs each row with its batch neighbours'
        # answers): shuffled once, seeded, so batches mix desirable and undesirable answers alike on resume.
        random.Random(seed).shuffle(rows)
    elif stage == "dpo":
        rows = [{"prompt": _chat(item["messages"][:-1]), "chosen": _chat(item["messages"][-1:]),
                 "rejected": _answer(item["rejected"])} for item in pairs]
    elif stage == "orpo":
        for item in pairs:
            prompt_text, chosen = rendered_answer(tokenizer, item["messages"][:-1], item["messages"][-1]["content"])
            _, rejected = rendered_answer(tokenizer, item["messages"][:-1], item["rejected"])
            rows.append({"prompt": prompt_text, "chosen": chosen, "rejected": rejected})
    else:
        raise ValueError(f"not a preference stage: {stage}")
    stats = {"items": len(items), "rows": len(rows), "pairs": len(pairs), "labelled": len(items) - len(pairs)}
    if stage == "kto":
        stats.update(desirable=sum(1 for row in rows if row["label"]), undesirable=sum(1 for row in rows if not row["label"]))
    return rows, stats


# ---------------------------------------------------------------- the trainer


def _reference_from_start(model) -> None:
    """Before TRL copies the trainable adapter into its frozen "ref" adapter: a data-dependent initialisation
    (pissa, olora, loftq: the adapter's config names it) has already run on the base weights, and adding the
    copy with that config would run it again on them. The copy is created plain; TRL then fills it with the
    trained adapter's weights, so the reference is the model the run starts from either way."""
    config = (getattr(model, "peft_config", None) or {}).get("default")
    if config is not None and not isinstance(getattr(config, "init_lora_weights", True), bool):
        config.init_lora_weights = True


def CheckpointsWithoutReference():  # noqa: N802 - a factory, so transformers loads lazily
    """A trainer callback removing the frozen reference copy from each checkpoint as it is saved.

    PEFT saves a model's second adapter in a subfolder (checkpoint-N/ref/), and transformers, resuming from a
    checkpoint with adapter subfolders, loads only those: the trained adapter in the checkpoint's root would
    not be loaded, and the resumed run would go on from the adapter it started with, its steps so far lost.
    Without the subfolder it loads the root into the trained adapter; the reference is made again from the
    adapter the run starts from (a fresh, seeded LoRA or init_adapter/) before the checkpoint is loaded."""
    from transformers import TrainerCallback

    class _Drop(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            shutil.rmtree(Path(args.output_dir) / f"checkpoint-{state.global_step}" / REFERENCE_ADAPTER, ignore_errors=True)

    return _Drop()


def build_preference_trainer(config: TrainConfig, model, tokenizer, arguments: dict, train_rows: list[dict],
                             eval_rows: list[dict], callbacks: list):
    """The TRL trainer of `config.stage` (dpo, orpo, kto) on the prepared LoRA `model`, with the TrainingArguments
    every stage shares (train.trainer.training_arguments) and the stage's own.

    Batches are padded in every preference stage: TRL 1.13's DPOTrainer turns padding_free off with a warning
    ("temporarily unavailable"), and KTOTrainer and ORPOTrainer have no padding-free collator; the run's
    `batching` setting applies to sft and cpt.
    """
    from datasets import Dataset

    train = Dataset.from_list(train_rows)
    evaluation = Dataset.from_list(eval_rows) if eval_rows else None
    # Items longer than max_length are cut by the trainer (TRL keeps the start; a prompt alone that long is dropped).
    shared = {**arguments, "beta": config.pref_beta, "max_length": config.max_length}
    common = dict(model=model, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer, callbacks=callbacks)
    if config.stage == "dpo":
        from trl import DPOConfig, DPOTrainer

        _reference_from_start(model)
        common["callbacks"] = [*callbacks, CheckpointsWithoutReference()]
        return DPOTrainer(args=DPOConfig(**shared, loss_type=[config.dpo_loss], padding_free=False), **common)
    if config.stage == "kto":
        from trl import KTOConfig, KTOTrainer

        _reference_from_start(model)
        common["callbacks"] = [*callbacks, CheckpointsWithoutReference()]
        # train_sampling_strategy stays "sequential" (KTOConfig's default): the KL term needs the rows' order.
        return KTOTrainer(args=KTOConfig(**shared), **common)
    if config.stage == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        # An ORPO batch holds chosen_/rejected_input_ids and no input_ids, so transformers cannot count its
        # tokens (it warns at every step and counts 0): tokens per second stay unmeasured for orpo runs.
        shared["include_num_input_tokens_seen"] = "no"
        return ORPOTrainer(args=ORPOConfig(**shared, remove_unused_columns=False), **common)
    raise ValueError(f"not a preference stage: {config.stage}")


def save_adapter(model, folder: Path) -> None:
    """Save the trained adapter (and only it: dpo and kto carry TRL's frozen reference copy beside it), so the
    run's adapter loads for chat, exams and export like any run's."""
    adapters = list(getattr(model, "peft_config", None) or {})
    if REFERENCE_ADAPTER in adapters:
        model.save_pretrained(str(folder), selected_adapters=[name for name in adapters if name != REFERENCE_ADAPTER])
    else:
        model.save_pretrained(str(folder))


def reward_fields(logs: dict) -> dict:
    """The reward figures of one TRL log record under trainer_log.jsonl's names ({} for other stages' records)."""
    out = {}
    for key, name in REWARD_FIELDS.items():
        for prefix in ("", "eval_"):
            value = logs.get(prefix + key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[prefix + name] = float(value)
    return out


def stage_facts(config: TrainConfig) -> dict:
    """What metrics.json records of the run's stage: the stage, its beta and loss, what it started from."""
    facts: dict = {"stage": config.stage, "init_run": config.init_run or None}
    if is_preference_stage(config.stage):
        facts["pref_beta"] = config.pref_beta
        facts["batching"] = "padded"
        if config.stage == "dpo":
            facts["dpo_loss"] = config.dpo_loss
        if config.stage in REFERENCE_STAGES:
            facts["reference"] = f"run {config.init_run}" if config.init_run else "base model"
    return facts


# ---------------------------------------------------------------- measuring: chosen against rejected


def answer_logps(model, tokenizer, conversations: list[list[dict]], batch_size: int = 8) -> list[float]:
    """The summed log-probability `model` gives each conversation's last answer: the tokens supervised tuning
    trains on (the answer and its end-of-turn marker), after the rendered conversation before it."""
    import torch

    encoded = []
    for messages in conversations:
        text, spans = assistant_spans(tokenizer, _chat(messages))
        start, end = spans[-1]
        tokens = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        encoded.append((list(tokens["input_ids"]), [start <= first < end for first, _ in tokens["offset_mapping"]]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    sums: list[float] = []
    try:
        for begin in range(0, len(encoded), batch_size):
            chunk = encoded[begin: begin + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            answer = torch.zeros((len(chunk), width), dtype=torch.bool)
            for row, (ids, mask) in enumerate(chunk):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
                answer[row, : len(ids)] = torch.tensor(mask)
            input_ids, attention, answer = input_ids.to(device), attention.to(device), answer.to(device)
            with torch.no_grad():
                logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
            # Token t is predicted from the positions before it.
            logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
            sums.extend((logps * answer[:, 1:]).sum(dim=-1).tolist())
    finally:
        if was_training:
            model.train()
    return sums


def preference_margins(model, tokenizer, items: list[dict]) -> dict:
    """How much likelier `model` finds each pair's chosen answer than its rejected one: the summed log-probabilities
    of both answers, their differences (margins), the mean margin and the share of pairs with a positive margin.
    Measured on the base model and on the tuned one, the rise of the margin is what preference tuning did."""
    pairs = [item for item in items if item.get("rejected")]
    chosen = answer_logps(model, tokenizer, [item["messages"] for item in pairs])
    rejected = answer_logps(model, tokenizer, [item["messages"][:-1] + _answer(item["rejected"]) for item in pairs])
    margins = [c - r for c, r in zip(chosen, rejected)]
    return {
        "pairs": len(pairs),
        "chosen_logp": chosen,
        "rejected_logp": rejected,
        "margins": margins,
        "mean_margin": sum(margins) / len(margins) if margins else 0.0,
        "accuracy": sum(1 for margin in margins if margin > 0) / len(margins) if margins else 0.0,
    }
