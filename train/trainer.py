"""Training one run inside its worker process (train.worker): TRL's SFTTrainer on the run folder's
items, progress appended to trainer_log.jsonl, stop through the run folder's `stop` file (agreed by
every rank), checkpoints for resume, the adapter and metrics at the end. The run folder is described
in train.runs; starting and following workers is train.launcher's job.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from schema.run_state import RUNNING_STATES, RunState
from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text
from train import loading
from train.attention import use_item_attention
from train.config import BATCHING_MODES, STAGES, TrainConfig, plan_steps
from train.cpt import is_text_item, mix_counts
from train.data import disable_kv_cache_for_training, ensure_chat_template, to_hf_dataset, tokenize_items
from train.forgetting import mix_general_items
from train.loading import parameter_counts
from train.lora_variants import (
    ConvertedAdapterCallback,
    converts_on_save,
    init_loftq,
    keep_initial_adapter,
    peft_options,
    save_converted_adapter,
    unsloth_options,
)
from train.preference import (
    INIT_ADAPTER_DIR,
    build_preference_trainer,
    is_preference_stage,
    load_init_adapter,
    preference_rows,
    reward_fields,
    save_adapter,
    stage_facts,
)
from train.runs import (
    ADAPTER_DIR,
    CHECKPOINT_NAME,
    CONFIG_FILE,
    LOG_FILE,
    METRICS_FILE,
    SAMPLES_FILE,
    STATUS_FILE,
    STOP_FILE,
    TENSORBOARD_DIR,
    latest_checkpoint,
    load_items,
    read_json,
    read_json_lines,
)

VALIDATION_MAX_NEW_TOKENS = 48  # samples are a glance at progress, kept cheap at every evaluation



# ---------------------------------------------------------------- the job


@dataclass
class TrainingJob:
    """The run being trained by this worker process (train.worker); rank 0 reports it in status.json."""

    run_name: str
    run_dir: Path
    config: TrainConfig
    total_steps: int
    resume_from: Path | None = None
    state: RunState = RunState.PREPARING
    step: int = 0
    error: str | None = None
    early_stopped: bool = False
    best_checkpoint: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    rank: int = 0
    world_size: int = 1
    train_began: float | None = None  # when the first step started (the worker's start-up ends there)

    @property
    def reports(self) -> bool:
        """Only rank 0 writes the log, the status, the samples and the adapter."""
        return self.rank == 0

    def stop_requested(self) -> bool:
        return self.stop_event.is_set() or (self.run_dir / STOP_FILE).exists()


def write_status(job: TrainingJob, **extra) -> None:
    import psutil

    if not job.reports:
        return
    me = psutil.Process()
    payload = {
        "run": job.run_name,
        "state": job.state,
        "step": job.step,
        "total_steps": job.total_steps,
        "early_stopped": job.early_stopped,
        "best_checkpoint": job.best_checkpoint,
        "error": job.error,
        "pid": me.pid,
        "pid_created": me.create_time(),
        "host": socket.gethostname(),
        "world_size": job.world_size,
        "started": datetime.fromtimestamp(job.started_at).isoformat(sep=" ", timespec="seconds"),
        "finished": datetime.fromtimestamp(job.finished_at).isoformat(sep=" ", timespec="seconds") if job.finished_at else None,
        **extra,
    }
    atomic_write_text(job.run_dir / STATUS_FILE, json.dumps(payload, ensure_ascii=False, indent=2))


def job_for_run_folder(folder: Path, rank: int = 0, world_size: int = 1) -> TrainingJob:
    """The job a worker trains: the run folder's config, resumed from its latest checkpoint when there is one."""
    saved = read_json(folder / CONFIG_FILE)
    if not saved:
        raise UserError("error.not_found", what="run", name=folder.name)
    config = TrainConfig.from_dict(saved).validate()
    checkpoint = latest_checkpoint(folder)
    job = TrainingJob(run_name=folder.name, run_dir=folder, config=config,
                      total_steps=int(saved.get("plan", {}).get("total_steps") or 0), resume_from=checkpoint,
                      rank=rank, world_size=world_size)
    if checkpoint is not None:
        job.step = int(CHECKPOINT_NAME.match(checkpoint.name).group(1))
    return job


def trim_log_to_checkpoint(job: TrainingJob) -> None:
    """A resumed run logs again from its checkpoint's step: drop the records written after it, so the
    log has every step once."""
    if job.resume_from is None or not job.reports:
        return
    for name in (LOG_FILE, SAMPLES_FILE):
        path = job.run_dir / name
        if not path.exists():
            continue
        kept = [r for r in read_json_lines(path) if int(r.get("step", 0)) <= job.step]
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


def run_job(job: TrainingJob) -> None:
    """Train `job` to its end in this process, recording the outcome in status.json (rank 0)."""
    train_items = load_items(job.run_dir / "data" / "train.jsonl")
    eval_items = load_items(job.run_dir / "data" / "eval.jsonl")
    if job.config.general_mix and STAGES[job.config.stage].data != "docs":  # cpt's general text is in train.jsonl
        # Seeded: a resumed run sees the same mixed items; the step count is recomputed from them in _train.
        train_items = mix_general_items(train_items, job.config.general_mix, job.config.seed)
    trim_log_to_checkpoint(job)
    write_status(job)
    try:
        _train(job, train_items, eval_items)
    except UserError as exc:
        job.state, job.error = RunState.FAILED, str(exc)
    except BaseException as exc:  # noqa: BLE001 - the page shows why the run failed (out of memory, ...)
        job.state, job.error = RunState.FAILED, f"{type(exc).__name__}: {exc}"
        if job.reports:
            (job.run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        if not isinstance(exc, Exception):
            raise
    finally:
        job.finished_at = time.time()
        if job.state in RUNNING_STATES:
            job.state = RunState.FAILED
            job.error = job.error or "training ended without a final state"
        (job.run_dir / STOP_FILE).unlink(missing_ok=True) if job.reports else None
        write_status(job)


# ---------------------------------------------------------------- the training itself


def _prepare_model(job: TrainingJob):
    """The base model for a fresh adapter, from the location the launcher resolved."""
    config = job.config
    saved = read_json(job.run_dir / CONFIG_FILE)
    location = saved.get("model_location") or config.model
    is_local = bool(saved.get("model_is_local", True))
    # Several processes go through transformers + peft (+ bitsandbytes for 4 bit): DDP as documented
    # by transformers; Unsloth's own multi-GPU support is not relied on. So do the preference stages and
    # runs that start from another run's adapter: Unsloth patches TRL's DPO trainer of the versions it
    # names, not TRL 1.13's rewritten one (nor its KTO and ORPO trainers), and its loader takes an adapter
    # folder in place of the base model rather than a saved adapter to train on.
    use_unsloth = job.world_size == 1 and not is_preference_stage(config.stage) and not config.init_run
    return loading.load_for_training(config.model, location, is_local, config.max_length, config.load_in_4bit,
                                     config.rope_scaling or None, use_unsloth=use_unsloth)


def _apply_lora(loaded, config: TrainConfig):
    if loaded.backend == "unsloth":
        from unsloth import FastLanguageModel

        modules = config.target_module_list()
        if modules == "all-linear":
            modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        return FastLanguageModel.get_peft_model(
            loaded.model, r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules=modules, bias="none", use_gradient_checkpointing="unsloth", random_state=config.seed,
            max_seq_length=config.max_length, **unsloth_options(config),
        )
    import torch
    from peft import LoraConfig, get_peft_model

    # LoRA A matrices are random, and so is PiSSA's randomized SVD (a resumed run repeats it): seed them.
    torch.manual_seed(config.seed)
    lora = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=config.target_module_list(), bias="none", task_type="CAUSAL_LM", **peft_options(config),
    )
    model = get_peft_model(loaded.model, lora)
    if config.lora_variant == "loftq":
        init_loftq(model, loaded.location)
    return model


def deepspeed_config(stage: str) -> dict:
    """A ZeRO config for transformers' DeepSpeed integration; "auto" values follow the SFTConfig."""
    zero = {"stage": 3 if stage == "zero3" else 2, "overlap_comm": True, "contiguous_gradients": True}
    if stage == "zero3":
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {"zero_optimization": zero, "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"},
            "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "train_batch_size": "auto",
            "gradient_clipping": "auto"}


def tracker_environment(report_to: str, run_dir: Path) -> dict[str, str]:
    """Where the chosen tracker's integration keeps its local files: inside the run folder.

    Read by transformers' callbacks from the environment; a value the user set already wins
    (a team's MLflow server, say), so training_arguments only fills what is missing.
    """
    run_dir = Path(run_dir).resolve()
    return {
        "wandb": {"WANDB_DIR": str(run_dir)},  # wandb writes <run>/wandb/
        # MLflow 3's file store works with mlflow-skinny and keeps the run in one folder, but is in
        # "maintenance mode" and refused unless allowed; its sqlite store needs the full mlflow (alembic).
        "mlflow": {"MLFLOW_TRACKING_URI": (run_dir / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"},
        "swanlab": {"SWANLAB_LOG_DIR": str(run_dir / "swanlog")},
    }.get(report_to, {})


def build_sft_config(config: TrainConfig, output_dir: Path, has_eval: bool, backend: str, model_dtype: str, world_size: int = 1):
    """The TRL SFTConfig for `config` (pre-tokenized data: TRL only batches, packs and trains)."""
    from trl import SFTConfig

    return SFTConfig(
        **training_arguments(config, output_dir, has_eval, backend, model_dtype, world_size),
        # Items are truncated during our own tokenization; packing needs the length to fill rows.
        max_length=config.max_length if BATCHING_MODES[config.batching].trl_packing else None,
        packing=BATCHING_MODES[config.batching].trl_packing,
        packing_strategy="bfd",
        padding_free=BATCHING_MODES[config.batching].trl_padding_free,
        completion_only_loss=False,  # our labels already mask everything but the assistant's answers
    )


def training_arguments(config: TrainConfig, output_dir: Path, has_eval: bool, backend: str, model_dtype: str,
                       world_size: int = 1) -> dict:
    """The transformers TrainingArguments every stage's TRL config shares (schedule, checkpoints, logging,
    precision, devices); the stage adds its own (SFT's batching, the preference stages' beta).

    It runs in the worker: a chosen tracker's file locations go into this process's environment.
    """
    import torch

    for name, value in tracker_environment(config.report_to, output_dir).items():
        os.environ.setdefault(name, value)
    on_cuda = torch.cuda.is_available()
    patience = config.early_stopping_patience if has_eval else 0
    return dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps > 0 else -1,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type=config.scheduler,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps if has_eval else None,
        load_best_model_at_end=bool(patience),
        metric_for_best_model="eval_loss" if patience else None,
        greater_is_better=False if patience else None,
        # TensorBoard is attached as a callback writing into the run folder; a chosen tracker
        # (wandb, mlflow, swanlab) through transformers' own integration, named after the run.
        report_to=config.report_to or "none",
        run_name=Path(output_dir).name,
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        gradient_checkpointing=on_cuda and backend != "unsloth",  # unsloth sets up its own
        bf16=on_cuda and model_dtype == "bfloat16",
        fp16=on_cuda and model_dtype == "float16",
        use_cpu=not on_cuda,
        # Several processes (torchrun): gloo on CPU, NCCL on GPUs; LoRA leaves most weights frozen,
        # so DDP must not search the graph for parameters without gradients at every step.
        ddp_backend="gloo" if world_size > 1 and not on_cuda else None,
        ddp_find_unused_parameters=False,
        deepspeed=deepspeed_config(config.deepspeed) if config.deepspeed else None,
        dataloader_num_workers=0,
        save_only_model=False,  # optimizer and scheduler state are needed to resume
    )


@contextlib.contextmanager
def _own_attention_notice(flattened: bool):
    """While the trainer is built: drop TRL's warning that padding-free batches or packing without
    Flash Attention "may lead to unexpected behavior" / "cross-contamination between samples". It
    does not hold for our path: a flattened batch attends per item (train/attention.py finds the items'
    boundaries in position_ids and runs SDPA per item; Unsloth is given the lengths), which the
    padding-free tests check against padded batches. Only that warning is dropped, only here."""
    import logging

    class DropNotice(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "attention implementation is not set to a supported Flash Attention" not in record.getMessage()

    sft_logger = logging.getLogger("trl.trainer.sft_trainer")
    notice = DropNotice()
    if flattened:
        sft_logger.addFilter(notice)
    try:
        yield
    finally:
        sft_logger.removeFilter(notice)


def _train(job: TrainingJob, train_items, eval_items) -> None:
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback
    from transformers.integrations import TensorBoardCallback
    from trl import SFTTrainer

    config = job.config
    preference = is_preference_stage(config.stage)  # dpo, orpo, kto: TRL's trainer of the stage (train.preference)
    loaded = _prepare_model(job)
    tokenizer = loaded.tokenizer
    ensure_chat_template(tokenizer, config.fallback_template)
    if preference:
        train_rows, train_stats = preference_rows(tokenizer, config.stage, train_items, config.seed)
        eval_rows, _ = preference_rows(tokenizer, config.stage, eval_items, config.seed)
    else:
        train_rows, train_stats = tokenize_items(tokenizer, train_items, config.max_length)
        train_stats.update(mix_counts(train_items))  # question/answer, doc-text and general items (train.cpt)
        eval_rows, _ = tokenize_items(tokenizer, eval_items, config.max_length)
    if not train_rows:
        raise UserError("error.train_no_items")
    # Dropped items change the step count: recompute so the display and the trainer agree.
    job.total_steps = plan_steps(len(train_rows), config.batch_size, config.grad_accum, config.epochs, config.max_steps,
                                 job.world_size)["total_steps"]
    # init_run: that run's adapter (copied into this run's folder at the start) trained on, else a fresh LoRA.
    model = load_init_adapter(loaded, job.run_dir / INIT_ADAPTER_DIR) if config.init_run else _apply_lora(loaded, config)
    if converts_on_save(config) and job.reports:
        keep_initial_adapter(model, job.run_dir)  # PiSSA's A0, B0: the saved adapter is converted against them
    has_eval = bool(eval_rows)

    class WorkbenchSFTTrainer(SFTTrainer):
        def log(self, logs, start_time=None):
            # Perplexity is what the over-fitting guide reads; derive it where eval_loss is logged.
            if "eval_loss" in logs:
                logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
            super().log(logs, start_time)

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(job.run_dir / TENSORBOARD_DIR)) if job.reports else None
    progress = ProgressCallback(job)
    callbacks = [progress] + ([TensorBoardCallback(tb_writer=writer)] if writer is not None else [])
    if has_eval and config.validation_samples and job.reports:
        questions = [item for item in eval_items if not is_text_item(item)]  # running text has no question to answer
        callbacks.append(ValidationSamplesCallback(job, questions[: config.validation_samples], tokenizer, loaded.backend))
    if converts_on_save(config) and job.reports:
        callbacks.append(ConvertedAdapterCallback(job.run_dir, tokenizer))
    early = None
    if has_eval and config.early_stopping_patience:
        early = EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)
        callbacks.append(early)
    model_dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    if preference:
        arguments = training_arguments(config, job.run_dir, has_eval, loaded.backend, model_dtype, job.world_size)
        trainer = build_preference_trainer(config, model, tokenizer, arguments, train_rows, eval_rows, callbacks)
    else:
        args = build_sft_config(config, job.run_dir, has_eval, loaded.backend, model_dtype, job.world_size)
        with _own_attention_notice(BATCHING_MODES[config.batching].flattened):
            trainer = WorkbenchSFTTrainer(
                model=model,
                args=args,
                train_dataset=to_hf_dataset(train_rows),
                eval_dataset=to_hf_dataset(eval_rows) if has_eval else None,
                processing_class=tokenizer,
                callbacks=callbacks,
            )
    # Our progress callback reports; the default printer would dump every log dict to stdout.
    trainer.remove_callback(PrinterCallback)
    # The preference trainers batch padded (build_preference_trainer): no flattened rows to attend per item.
    batching = BATCHING_MODES["padded" if preference else config.batching]
    if loaded.backend == "unsloth" and batching.flattened:
        # Unsloth cuts any row longer than max_seq_length, and a flattened batch is such a row:
        # give it the items' lengths so it attends per item and keeps every token.
        from unsloth.utils import enable_padding_free_metadata, enable_sample_packing

        (enable_sample_packing if batching.trl_packing else enable_padding_free_metadata)(model, trainer)
    job.state = RunState.STOPPING if job.stop_requested() else RunState.RUNNING
    write_status(job, data=train_stats)
    restore_cache = disable_kv_cache_for_training(model)
    restore_attention = lambda: None  # noqa: E731
    if loaded.backend != "unsloth" and batching.flattened:
        # Attend within each item of a flattened row instead of over the whole row (train/attention.py).
        restore_attention = use_item_attention(model)
    try:
        result = trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
    finally:
        restore_cache()  # generation after training (chat, evaluation) wants the cache back
        restore_attention()
        if writer is not None:
            writer.close()
    job.step = trainer.state.global_step
    job.best_checkpoint = Path(trainer.state.best_model_checkpoint).name if trainer.state.best_model_checkpoint else None
    if progress.stopped:
        job.state = RunState.STOPPED
    else:
        job.early_stopped = bool(early and early.early_stopping_patience_counter >= config.early_stopping_patience)
        job.state = RunState.EARLY_STOPPED if job.early_stopped else RunState.COMPLETED
        if job.reports and converts_on_save(config):
            save_converted_adapter(model, job.run_dir / ADAPTER_DIR, job.run_dir)  # PiSSA: loads on the original base
            tokenizer.save_pretrained(str(job.run_dir / ADAPTER_DIR))
        elif job.reports:
            save_adapter(model, job.run_dir / ADAPTER_DIR)
            tokenizer.save_pretrained(str(job.run_dir / ADAPTER_DIR))
    if not job.reports:
        return
    metrics = {
        **result.metrics,
        "state": job.state,
        "global_step": job.step,
        "total_steps": job.total_steps,
        "best_checkpoint": job.best_checkpoint,
        "best_eval_loss": trainer.state.best_metric,
        "data": train_stats,
        "eval_items": len(eval_rows),
        "lora_variant": config.lora_variant,
    }
    if trainer.state.best_metric is not None and not preference:  # a preference loss is no language-model loss
        metrics["best_eval_perplexity"] = math.exp(min(trainer.state.best_metric, 50.0))
    metrics.update(stage_facts(config))
    metrics.update(_run_facts(job, loaded, model))
    atomic_write_text(job.run_dir / METRICS_FILE, json.dumps(metrics, ensure_ascii=False, indent=2, default=str))
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _run_facts(job: TrainingJob, loaded, model) -> dict:
    """What the run ran on, for metrics.json and the benchmarks: the worker cannot be asked afterwards."""
    import psutil
    import torch

    facts = {"backend": loaded.backend, "load_in_4bit": bool(loaded.info.get("load_in_4bit")), **parameter_counts(model),
             "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU", "world_size": job.world_size}
    if job.train_began is not None:
        # From the worker process's start to its first training step: imports, model load, tokenization.
        facts["worker_startup_s"] = round(job.train_began - psutil.Process().create_time(), 2)
    if torch.cuda.is_available():
        facts["peak_gpu_memory_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        facts["peak_gpu_memory_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 3)
    return facts


def ProgressCallback(job: TrainingJob):  # noqa: N802 - a factory, so transformers loads lazily
    """The trainer callback that appends JSON lines (rank 0), tracks progress and honours stop requests."""
    from transformers import TrainerCallback

    def agreed(flag: bool) -> bool:
        """Every rank stops at the same step: the stop is the max of the ranks' flags."""
        if job.world_size == 1:
            return flag
        import torch
        import torch.distributed as dist

        backend = dist.get_backend()
        device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        value = torch.tensor([1 if flag else 0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    class _Progress(TrainerCallback):
        def __init__(self):
            self.stopped = False
            self.last_status_write = 0.0
            self.log_path = job.run_dir / LOG_FILE
            self.session_start = None
            self.cpu_start = 0.0
            self.session_first_step = 0
            self.last_time = None
            self.last_tokens = 0

        def on_train_begin(self, args, state_, control, **kwargs):
            job.train_began = time.time()
            self.session_start = self.last_time = time.monotonic()
            self.cpu_start = time.process_time()  # CPU time: a throughput figure that other load does not move
            self.session_first_step = state_.global_step
            self.last_tokens = state_.num_input_tokens_seen
            job.total_steps = state_.max_steps
            job.step = state_.global_step

        def on_step_end(self, args, state_, control, **kwargs):
            job.step = state_.global_step
            if agreed(job.stop_requested()):
                # Runs after an optimizer step, never mid-accumulation; the save makes resume possible.
                self.stopped = True
                job.state = RunState.STOPPING
                control.should_training_stop = True
                control.should_save = True
            if job.reports and (self.stopped or time.monotonic() - self.last_status_write > 2.0):
                self.last_status_write = time.monotonic()
                write_status(job)
            return control

        def on_log(self, args, state_, control, logs=None, **kwargs):
            if not job.reports:
                return
            logs = dict(logs or {})
            now = time.monotonic()
            record = {"step": state_.global_step, "total_steps": state_.max_steps, "epoch": round(state_.epoch or 0.0, 4)}
            if "loss" in logs:
                tokens = state_.num_input_tokens_seen
                elapsed = max(now - self.last_time, 1e-9)
                done = state_.global_step - self.session_first_step
                per_step = (now - self.session_start) / done if done > 0 else None
                record.update({
                    "loss": logs["loss"],
                    "learning_rate": logs.get("learning_rate"),
                    "grad_norm": logs.get("grad_norm"),
                    # None where the trainer counts no tokens (orpo batches carry no input_ids): unmeasured, not 0
                    "tokens_per_s": round((tokens - self.last_tokens) / elapsed, 1) if tokens else None,
                    "tokens_seen": tokens or None,
                    "eta_s": round(per_step * (state_.max_steps - state_.global_step), 1) if per_step else None,
                    "cpu_s": round(time.process_time() - self.cpu_start, 3),
                })
                self.last_time, self.last_tokens = now, tokens
            elif "eval_loss" in logs:
                record.update({"eval_loss": logs["eval_loss"], "eval_perplexity": logs.get("eval_perplexity")})
            elif "train_runtime" in logs:
                record.update({"train_runtime": logs["train_runtime"], "train_loss": logs.get("train_loss")})
            else:
                return
            record.update(reward_fields(logs))  # dpo, orpo, kto: the reward margin and accuracy beside the loss
            record["percent"] = round(100.0 * state_.global_step / state_.max_steps, 1) if state_.max_steps else 0.0
            record["time"] = datetime.now().isoformat(timespec="seconds")
            # One line per event, appended: the page re-reads the file, a crash loses at most this line.
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    return _Progress()


def ValidationSamplesCallback(job: TrainingJob, items: list[dict], tokenizer, backend: str):  # noqa: N802 - lazy factory
    """A trainer callback appending greedy answers to `items` to validation_samples.jsonl at each evaluation."""
    from transformers import TrainerCallback

    # Here, not at the top: a run without validation samples starts without train.evaluation and the LLM
    # runner it brings (about 0.5 s of the worker's start, measured with bench.training).
    from train.evaluation import greedy_answers, split_item

    prompts, questions, references = zip(*(split_item(item) for item in items)) if items else ((), (), ())

    class _Samples(TrainerCallback):
        def on_evaluate(self, args, state_, control, model=None, **kwargs):
            if model is None or not prompts:
                return
            was_training = model.training
            if backend == "unsloth":
                from unsloth import FastLanguageModel

                FastLanguageModel.for_inference(model)
            else:
                model.eval()
            try:
                answers = greedy_answers(model, tokenizer, list(prompts), VALIDATION_MAX_NEW_TOKENS)
            finally:
                if backend == "unsloth":
                    FastLanguageModel.for_training(model)
                elif was_training:
                    model.train()
            stamp = datetime.now().isoformat(timespec="seconds")
            lines = [json.dumps({"step": state_.global_step, "index": i, "question": q, "reference": r, "generated": a, "time": stamp},
                                ensure_ascii=False) for i, (q, r, a) in enumerate(zip(questions, references, answers))]
            # Appended per evaluation: a crash loses at most the lines being written.
            with open(job.run_dir / SAMPLES_FILE, "a", encoding="utf-8") as handle:
                handle.write("".join(line + "\n" for line in lines))

    return _Samples()
