"""TrainConfig: every input of the Fine-tuning tab and of `python main.py train`, validated in one place.

Each field carries `help` metadata (shown as the CLI flag help and usable as the UI's info text)
and, where it matters, `choices`/`min`/`max`. `validate()` raises a UserError naming the field.
No torch here: the UI builds and validates configs without importing it.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from tools.core.errors import UserError
from tools.core.workdir import validate_name

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")
# Experiment trackers a run may also log to, through transformers' own integrations (report_to):
# name -> the package that must be importable, and how to install it.
TRACKERS = {"wandb": ("wandb", "pip install wandb"), "mlflow": ("mlflow", "pip install mlflow (or the smaller mlflow-skinny)"),
            "swanlab": ("swanlab", "pip install swanlab")}
ALWAYS_LOGGED = ("tensorboard", "none")  # report_to values that mean the default: TensorBoard, written by every run


@dataclass(frozen=True)
class BatchingMode:
    """How items become batches; the trainer, the UI's choices and the CLI's --batching read this table."""

    name: str
    flattened: bool  # the items of a batch share one row: attention must stay within each item
    trl_packing: bool  # TRL fills rows up to max_length
    trl_padding_free: bool  # TRL concatenates the batch's items without pad tokens


BATCHING_MODES: dict[str, BatchingMode] = {mode.name: mode for mode in (
    BatchingMode("padding_free", flattened=True, trl_packing=False, trl_padding_free=True),
    BatchingMode("packing", flattened=True, trl_packing=True, trl_padding_free=False),
    BatchingMode("padded", flattened=False, trl_packing=False, trl_padding_free=False),
)}
BATCHING = tuple(BATCHING_MODES)


@dataclass(frozen=True)
class Stage:
    """What a run trains on and with which objective; the trainer, the tab and `train --stage` read this table."""

    name: str
    data: str  # "items": instruction items; "preference": items with a rejected answer or a label; "docs": the doc set's text
    trainer: str  # the TRL trainer behind it


STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("sft", data="items", trainer="SFTTrainer"),  # supervised: loss on the assistant's answers
    Stage("cpt", data="docs", trainer="SFTTrainer"),  # continued pre-training: loss on every token of the docs' text
    Stage("dpo", data="preference", trainer="DPOTrainer"),
    Stage("orpo", data="preference", trainer="ORPOTrainer"),
    Stage("kto", data="preference", trainer="KTOTrainer"),
)}
# LoRA variants (peft options); the tab shows `lora_variant`'s help, one line on when each helps.
LORA_VARIANTS = ("lora", "dora", "rslora", "pissa", "loftq")
DPO_LOSSES = ("sigmoid", "ipo", "hinge", "robust")


def _f(default, help: str, **extra) -> Any:
    return field(default=default, metadata={"help": help, **extra})


def gpu_ids(text: str) -> list[str]:
    """The device ids of a `gpus` text ("0, 1" -> ["0", "1"]), in order."""
    return [part.strip() for part in str(text or "").split(",") if part.strip()]


@dataclass
class TrainConfig:
    model: str = _f("", "Base model: a folder under workdir/models, an absolute path or a Hugging Face hub id.", required=True)
    stage: str = _f("sft", "What the run trains: sft (question/answer items, loss on the answers), cpt (continued pre-training "
                           "on the doc set's text, loss on every token), dpo, orpo or kto (a preference dataset: chosen and "
                           "rejected answers, or KTO labels).", choices=tuple(STAGES))
    dataset: str = _f("", "Dataset name (workdir/dataset/<name>.jsonl); a preference dataset for dpo, orpo and kto; not used by cpt.")
    docs: str = _f("", "Doc set (a folder under workdir/docs) whose slices cpt trains on as running text, or that sft mixes in "
                       "with doc_mix.")
    doc_mix: float = _f(0.0, "sft only: share of the doc set's slices, as running text with the loss on every token, mixed into "
                             "the training items (0.2 = one item in five); 0 = off.", min=0.0, max=0.9)
    init_run: str = _f("", "Start from this finished run's adapter (train it on) instead of a fresh LoRA: the usual way to put "
                           "dpo, orpo or kto on top of an sft run; dpo and kto then use that run's model as the reference.")
    pref_beta: float = _f(0.1, "dpo, orpo, kto: beta, how far the tuned model may move from the reference (dpo/kto) or the "
                               "weight of the odds-ratio term (orpo); larger keeps closer.", min=0.0, max=10.0)
    dpo_loss: str = _f("sigmoid", "dpo: the loss (sigmoid = the DPO paper; ipo, hinge, robust = its variants).", choices=DPO_LOSSES)
    dataset_version: int = _f(0, "Dataset version to train on (`datasets versions NAME` lists them); 0: the latest, "
                                 "which the run records as the version it used.", min=0, max=2**31 - 1)
    run_name: str = _f("", "Name of the run folder under workdir/training (default: <dataset>-<timestamp>).")
    learning_rate: float = _f(2e-4, "Peak learning rate of the optimizer.", min=1e-7, max=1.0)
    epochs: float = _f(3.0, "Passes over the training items (ignored when max_steps > 0).", min=0.01, max=1000)
    max_steps: int = _f(0, "Total optimizer steps; 0 means use epochs.", min=0, max=10_000_000)
    batch_size: int = _f(2, "Items per device batch.", min=1, max=4096)
    grad_accum: int = _f(4, "Batches accumulated per optimizer step (effective batch = batch_size × grad_accum).", min=1, max=4096)
    warmup_ratio: float = _f(0.03, "Fraction of the optimizer steps spent warming the learning rate up from 0.", min=0.0, max=0.99)
    scheduler: str = _f("cosine", "Learning-rate schedule after warm-up.", choices=SCHEDULERS)
    weight_decay: float = _f(0.0, "AdamW weight decay (an over-fitting guard).", min=0.0, max=1.0)
    lora_r: int = _f(16, "LoRA rank.", min=1, max=1024)
    lora_alpha: int = _f(16, "LoRA alpha (scale = alpha / r).", min=1, max=4096)
    lora_dropout: float = _f(0.0, "Dropout on the LoRA branch (an over-fitting guard).", min=0.0, max=0.9)
    lora_variant: str = _f("lora", "lora (plain); dora (weight-decomposed, often closer to full tuning at low rank, slower); "
                                   "rslora (scale alpha/sqrt(r): helps at high ranks); pissa (starts from the weights' "
                                   "principal components: faster convergence); loftq (initialises to offset 4-bit "
                                   "quantisation error).", choices=LORA_VARIANTS)
    target_modules: str = _f("all-linear", "Modules that get LoRA: 'all-linear' or a comma-separated list such as q_proj,v_proj.")
    max_length: int = _f(2048, "Tokens per item; longer items are cut (items whose answer is cut away are dropped).", min=16, max=1_048_576)
    seed: int = _f(42, "Random seed (data order, LoRA init, eval split).", min=0, max=2**31 - 1)
    logging_steps: int = _f(1, "Log loss, learning rate and throughput every N optimizer steps.", min=1, max=1_000_000)
    report_to: str = _f("", "Also log the run to an experiment tracker through transformers' integration: wandb, mlflow or "
                            "swanlab (its package must be installed); TensorBoard is always written. Empty (or tensorboard, none): TensorBoard only.",
                        choices=("", *TRACKERS))
    save_steps: int = _f(50, "Save a checkpoint every N optimizer steps (stop and resume use them).", min=1, max=1_000_000)
    save_total_limit: int = _f(3, "Keep at most N checkpoints (the best one is always kept).", min=1, max=1000)
    eval_steps: int = _f(50, "Evaluate on the eval split every N optimizer steps.", min=1, max=1_000_000)
    eval_ratio: float = _f(0.0, "Share of items held out for evaluation; 0 uses the dataset's own split (if it has one).", min=0.0, max=0.9)
    general_mix: float = _f(0.0, "Share of general (non-doc) items mixed into the training items, a guard against forgetting: "
                                 "question/answer pairs from Python standard-library docstrings; 0.1 = one item in ten. 0 = off.",
                            min=0.0, max=0.5)
    early_stopping_patience: int = _f(0, "Stop when eval loss has not improved for N evaluations and keep the best checkpoint; 0 = off.", min=0, max=1000)
    validation_samples: int = _f(0, "At each evaluation, answer the first N held-out questions greedily and save them to validation_samples.jsonl; 0 = off.", min=0, max=100)
    batching: str = _f("padding_free", "How items are batched: padding_free (default, no pad tokens), packing (items packed to max_length) or padded (like the prototype).", choices=BATCHING)
    load_in_4bit: bool = _f(False, "Load the base model in 4 bit (QLoRA; needs a CUDA GPU).")
    rope_scaling: str = _f("", "RoPE scaling when max_length exceeds the native context: linear, dynamic or yarn (empty: none).", choices=("", "linear", "dynamic", "yarn"))
    fallback_template: str = _f("chatml", "Chat template used when the tokenizer has none.", choices=("chatml",))
    # ---- where it runs: one worker process, or torchrun with one process per GPU (data parallel) ----
    nproc: int = _f(1, "Training processes on this machine, one per GPU (data parallel through torchrun; on CPU: gloo). "
                       "Effective batch = batch_size × grad_accum × processes (× nodes).", min=1, max=64)
    gpus: str = _f("", "CUDA devices the processes use, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES); empty: the first `nproc`.")
    nnodes: int = _f(1, "Machines taking part (torchrun --nnodes); more than 1 needs master_addr and the same run on every node.", min=1, max=1024)
    node_rank: int = _f(0, "This machine's rank among the nodes (torchrun --node-rank).", min=0, max=1023)
    master_addr: str = _f("", "Address of node 0 (torchrun --master-addr); empty: this machine.")
    master_port: int = _f(0, "Port of node 0's rendezvous (torchrun --master-port); 0: a free port (one node only).", min=0, max=65535)
    deepspeed: str = _f("", "DeepSpeed ZeRO stage for several GPUs: zero2 (optimizer state and gradients sharded) or zero3 "
                            "(the weights too); empty: plain data parallel. Needs `pip install deepspeed` (GPU extra).",
                        choices=("", "zero2", "zero3"))

    # ---- validation ----

    def validate(self) -> "TrainConfig":
        """Check every field; raise a UserError naming the first wrong one. Returns self."""
        if self.report_to in ALWAYS_LOGGED:  # what users of transformers write for "TensorBoard only"
            self.report_to = ""
        for spec in fields(self):
            value = getattr(self, spec.name)
            meta = spec.metadata
            if meta.get("required") and not str(value or "").strip():
                raise UserError("error.field_required", field=spec.name)
            if spec.type in ("int", "float"):
                self._check_number(spec.name, value, spec.type, meta)
            if "choices" in meta and (value or "") not in meta["choices"]:
                raise UserError("error.train_choice", field=spec.name, value=value, choices=", ".join(c or "''" for c in meta["choices"]))
        if not self.target_modules.strip():
            raise UserError("error.field_required", field="target_modules")
        self._validate_stage()
        self._validate_lora_variant()
        if self.max_steps == 0 and self.epochs <= 0:
            raise UserError("error.train_no_length")
        if self.save_steps % self.eval_steps and self.early_stopping_patience:
            # load_best_model_at_end can only pick among evaluated checkpoints.
            raise UserError("error.train_save_eval_steps", save_steps=self.save_steps, eval_steps=self.eval_steps)
        if self.run_name:
            self.run_name = validate_name(self.run_name, "run name")
        self._validate_launch()
        self._validate_tracker()
        return self

    def _validate_stage(self) -> None:
        """What each stage needs: a dataset (sft, and a preference one for dpo/orpo/kto, checked when its items
        are read), or a doc set (cpt, and sft with doc_mix)."""
        stage = STAGES[self.stage]
        if stage.data == "docs" or self.doc_mix:
            if not self.docs.strip():
                raise UserError("error.train_stage_needs_docs", stage=self.stage)
            self.docs = validate_name(self.docs, "docs")
        if stage.data != "docs" and not self.dataset.strip():
            raise UserError("error.field_required", field="dataset")
        if self.doc_mix and self.stage != "sft":
            raise UserError("error.train_doc_mix_sft_only", stage=self.stage)
        if self.init_run:
            self.init_run = validate_name(self.init_run, "run name")
            if self.lora_variant in ("pissa", "loftq"):  # ways to initialise a fresh adapter; init_run's is trained
                raise UserError("error.init_run_variant", variant=self.lora_variant)
        if stage.data == "preference" and self.general_mix:
            raise UserError("error.pref_general_mix", stage=self.stage)  # general items have no rejected answer
        if self.stage == "kto" and self.batch_size < 2:
            raise UserError("error.kto_batch_size", batch_size=self.batch_size)  # TRL's KTO refuses it

    def _validate_lora_variant(self) -> None:
        """Variant rules that hold on any machine; train.lora_variants.check_variant_runs_here checks this one."""
        if self.lora_variant == "loftq" and not self.load_in_4bit:
            raise UserError("error.lora_loftq_needs_4bit")
        if self.lora_variant == "pissa" and self.load_in_4bit:
            raise UserError("error.lora_pissa_4bit")  # its SVD needs the full-precision weights
        if self.lora_variant == "pissa" and self.deepspeed == "zero3":
            raise UserError("error.lora_pissa_zero3")  # ZeRO-3 shards the weights the SVD has to see
        if self.init_run and self.lora_variant != "lora":
            raise UserError("error.lora_variant_init_run", variant=self.lora_variant, run=self.init_run)
        if self.lora_variant == "pissa" and self.stage in ("dpo", "kto"):
            # Their reference is the model with the adapter off: with PiSSA that is the residual, not the base.
            raise UserError("error.lora_pissa_reference", stage=self.stage)

    def _validate_tracker(self) -> None:
        if self.report_to:
            import importlib.util

            package, command = TRACKERS[self.report_to]
            if importlib.util.find_spec(package) is None:
                raise UserError("error.train_tracker_missing", tracker=self.report_to, command=command)

    def _validate_launch(self) -> None:
        devices = gpu_ids(self.gpus)
        if any(not part.isdigit() for part in devices):
            raise UserError("error.train_gpus_format", value=self.gpus)
        if devices and len(devices) < self.nproc:
            raise UserError("error.train_gpus_too_few", gpus=self.gpus, nproc=self.nproc)
        if self.node_rank >= self.nnodes:
            raise UserError("error.train_node_rank", node_rank=self.node_rank, nnodes=self.nnodes)
        if self.nnodes > 1 and not (self.master_addr.strip() and self.master_port):
            raise UserError("error.train_multinode_master")
        if self.deepspeed:
            import importlib.util

            if importlib.util.find_spec("deepspeed") is None:
                raise UserError("error.train_deepspeed_missing")
            if self.deepspeed == "zero3" and self.load_in_4bit:
                raise UserError("error.train_zero3_4bit")

    @property
    def world_size(self) -> int:
        """Processes taking part in the run across all nodes."""
        return int(self.nproc) * int(self.nnodes)

    def _check_number(self, name: str, value, kind: str, meta: dict) -> None:
        caster = int if kind == "int" else float
        if isinstance(value, bool):
            raise UserError("error.not_a_number", field=name, value=value)
        try:
            number = caster(value)
        except (TypeError, ValueError):
            raise UserError("error.not_a_number", field=name, value=value) from None
        if kind == "int" and float(value) != number:
            raise UserError("error.train_not_integer", field=name, value=value)
        if math.isnan(number) or not meta.get("min", -math.inf) <= number <= meta.get("max", math.inf):
            raise UserError("error.number_range", field=name, low=meta.get("min"), high=meta.get("max"), value=value)
        setattr(self, name, number)

    # ---- conversions ----

    def gpu_set(self) -> frozenset[str] | None:
        """The GPUs the worker is pinned to (`gpus`), None when it takes the device as it comes."""
        return frozenset(gpu_ids(self.gpus)) or None

    def target_module_list(self) -> str | list[str]:
        text = self.target_modules.strip()
        if text == "all-linear":
            return "all-linear"
        return [part.strip() for part in text.split(",") if part.strip()]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Build from a saved config.json; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def field_help(cls) -> dict[str, dict]:
        """name -> {default, help, choices?, min?, max?}: what the UI needs to build its inputs."""
        out = {}
        for spec in fields(cls):
            default = spec.default if spec.default is not MISSING else None
            out[spec.name] = {"default": default, "type": spec.type, **spec.metadata}
        return out


def plan_steps(items: int, batch_size: int, grad_accum: int, epochs: float = 1.0, max_steps: int = 0, processes: int = 1) -> dict:
    """Optimizer steps the trainer will run: ceil(items / (batch × accumulation × processes)) per epoch × epochs.

    Matches transformers' Trainer: it steps the optimizer after every `grad_accum` batches and once
    more for a partial group at the end of an epoch; with several processes each one takes its own
    batches of every step. `max_steps > 0` overrides epochs.
    """
    if items <= 0:
        raise UserError("error.train_no_items")
    processes = max(1, int(processes))
    steps_per_epoch = math.ceil(items / (batch_size * grad_accum * processes))
    if max_steps and max_steps > 0:
        total = int(max_steps)
        epochs_run = total / steps_per_epoch
    else:
        total = math.ceil(epochs * steps_per_epoch)
        epochs_run = epochs
    return {
        "items": items,
        "effective_batch": batch_size * grad_accum * processes,
        "processes": processes,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total,
        "epochs": round(float(epochs_run), 4),
    }
