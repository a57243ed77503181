"""LoRA variants (TrainConfig.lora_variant) through peft's LoraConfig: what each one sets, where it cannot run,
and saving an adapter that loads on the original base model.

  lora    plain LoRA.
  dora    use_dora=True: weight-decomposed LoRA (a magnitude vector and a LoRA direction); slower per step.
  rslora  use_rslora=True: the update is scaled by alpha/sqrt(r) instead of alpha/r.
  pissa   init_lora_weights="pissa_niter_16": A and B start from the base weights' principal components (a
          16-iteration randomized SVD, seeded, as LLaMA-Factory does) and the base weights become the residual.
          An adapter trained on that residual does not fit the original base, so the run's adapter/ is saved
          converted (peft's path_initial_model_for_weight_conversion: dW = BA - B0A0 as a LoRA of rank 2r with
          alpha 2·alpha) from the initial A0, B0 kept in the run folder (pissa_init/). Checkpoints keep the
          residual form, which resume needs (a resumed worker repeats the seeded init); adapter/ is refreshed
          at every checkpoint, so a stopped or crashed run's adapter fits the original base too.
  loftq   LoftQ for a 4-bit base (QLoRA): peft's replace_lora_weights_loftq sets A and B so that the
          bitsandbytes-quantized base plus the adapter approximates the full-precision weights (read from the
          base's safetensors). Needs load_in_4bit, so a CUDA GPU with bitsandbytes; the adapter belongs to that
          4-bit base, which is how chat loads the run's model.

Unsloth's FastLanguageModel.get_peft_model takes use_rslora, passes use_dora on to peft's LoraConfig, accepts
init_lora_weights True/False/"gaussian"/"loftq"/"corda" only, and LoftQ only on an unquantized base: pissa and
loftq are refused before the worker starts when it would load with Unsloth.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tools.core.errors import UserError
from train.config import STAGES, TrainConfig
from train.runs import ADAPTER_DIR

PISSA_INIT = "pissa_init"  # the run folder's copy of PiSSA's initial adapter (A0, B0)
PISSA_INIT_WEIGHTS = "pissa_niter_16"
UNSLOTH_UNSUPPORTED = ("pissa", "loftq")


def peft_options(config: TrainConfig) -> dict:
    """The LoraConfig arguments of the run's variant (loftq's initialisation follows get_peft_model: init_loftq)."""
    return {"dora": {"use_dora": True}, "rslora": {"use_rslora": True},
            "pissa": {"init_lora_weights": PISSA_INIT_WEIGHTS}}.get(config.lora_variant, {})


def unsloth_options(config: TrainConfig) -> dict:
    """The variant's arguments for Unsloth's get_peft_model (use_dora reaches peft through its **kwargs)."""
    if config.lora_variant in UNSLOTH_UNSUPPORTED:
        raise UserError("error.lora_variant_unsloth", variant=config.lora_variant)
    return {"use_rslora": config.lora_variant == "rslora", **({"use_dora": True} if config.lora_variant == "dora" else {})}


def worker_uses_unsloth(config: TrainConfig) -> bool:
    """Will the run's worker load with Unsloth? The rule of train.trainer._prepare_model: one process, a stage Unsloth
    trains (not the preference ones), a fresh adapter (no init_run), and Unsloth usable (installed, CUDA)."""
    from train.loading import unsloth_available

    return (config.world_size == 1 and STAGES[config.stage].data != "preference" and not config.init_run
            and unsloth_available())


def check_variant_runs_here(config: TrainConfig) -> None:
    """Before a worker starts: refuse a variant this machine cannot train, with what to change (UserError).
    torch is imported only for pissa and loftq, whose refusals depend on the machine."""
    if config.lora_variant not in UNSLOTH_UNSUPPORTED:
        return
    if config.lora_variant == "loftq":
        from train.loading import cuda_available

        if not cuda_available():
            raise UserError("error.lora_loftq_needs_gpu")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("error.lora_loftq_bitsandbytes")
    if worker_uses_unsloth(config):
        raise UserError("error.lora_variant_unsloth", variant=config.lora_variant)


def init_loftq(model, location: str) -> None:
    """LoftQ's A and B for the LoRA layers on the 4-bit base, against each weight's quantization error."""
    from peft import replace_lora_weights_loftq

    # A local folder: its safetensors; a hub id: peft finds the files in the hub cache the base was loaded from.
    replace_lora_weights_loftq(model, model_path=location if Path(location).is_dir() else None)


def keep_initial_adapter(model, run_dir: Path) -> None:
    """PiSSA's A0, B0 saved as a plain LoRA adapter in the run folder (pissa_init/), as peft's conversion loads it;
    a resumed run keeps the one its first start saved (the seeded init repeats it)."""
    folder = Path(run_dir) / PISSA_INIT
    if (folder / "adapter_config.json").exists():
        return
    peft_config = model.peft_config["default"]
    init = peft_config.init_lora_weights
    peft_config.init_lora_weights = True
    try:
        model.save_pretrained(str(folder))
    finally:
        peft_config.init_lora_weights = init


def converts_on_save(config: TrainConfig) -> bool:
    """Is the run's adapter saved converted (save_converted_adapter) rather than as trained?"""
    return config.lora_variant == "pissa" and not config.init_run


def save_converted_adapter(model, folder: Path, run_dir: Path) -> None:
    """A PiSSA run's adapter as a plain LoRA that loads on the original base: dW = BA - B0A0 (rank 2r)."""
    model.save_pretrained(str(folder), path_initial_model_for_weight_conversion=str(Path(run_dir) / PISSA_INIT))


def ConvertedAdapterCallback(run_dir: Path, tokenizer):  # noqa: N802 - a factory, transformers loads lazily
    """For PiSSA (rank 0): at every checkpoint, adapter/ gets the converted adapter, so a run that stops or crashes
    before its end leaves an adapter that fits the original base (its checkpoints hold the residual form)."""
    from transformers import TrainerCallback

    class _Converted(TrainerCallback):
        def on_save(self, args, state, control, model=None, **kwargs):
            if model is not None:
                save_converted_adapter(model, Path(run_dir) / ADAPTER_DIR, run_dir)
                tokenizer.save_pretrained(str(Path(run_dir) / ADAPTER_DIR))

    return _Converted()
