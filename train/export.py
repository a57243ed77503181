"""Saving a run's result: LoRA adapter, merged 16-bit, and (Unsloth only) merged 4-bit and GGUF.

Every export folder gets the tokenizer with its chat template and a README.md naming the base
model, dataset, run config and metrics. A format the current backend cannot produce raises a
UserError with the reason; `export_capabilities()` tells the UI the same thing up front.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

from schema.errors import UserError
from tools.workdir import atomic_write_text

FORMATS = ("lora", "merged_16bit", "merged_4bit", "gguf_q4_k_m", "gguf_q8_0", "gguf_f16")
UNSLOTH_ONLY = ("merged_4bit", "gguf_q4_k_m", "gguf_q8_0", "gguf_f16")
_GGUF_METHOD = {"gguf_q4_k_m": "q4_k_m", "gguf_q8_0": "q8_0", "gguf_f16": "f16"}
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def export_capabilities(lang: str | None = None) -> dict[str, dict]:
    """format -> {"available": bool, "reason": str | None}; the reason is in `lang` (default language)."""
    from tools.i18n import t
    from train.loading import unsloth_available

    unsloth = unsloth_available()
    capabilities = {}
    for fmt in FORMATS:
        available = fmt not in UNSLOTH_ONLY or unsloth
        capabilities[fmt] = {"available": available, "reason": None if available else t("models.export_needs_unsloth", lang)}
    return capabilities


def run_adapter_dir(run_folder: Path) -> Path:
    """The run's final adapter, or its latest checkpoint for a run that was stopped before the end."""
    from train.trainer import ADAPTER_DIR, latest_checkpoint

    final = run_folder / ADAPTER_DIR
    if (final / "adapter_config.json").exists():
        return final
    checkpoint = latest_checkpoint(run_folder) if run_folder.is_dir() else None
    if checkpoint is not None and (checkpoint / "adapter_config.json").exists():
        return checkpoint
    raise UserError("error.train_run_no_adapter", run=run_folder.name)


def default_export_dir(run: str, fmt: str) -> Path:
    """workdir/models/<run>-<format>: merged exports then show up in the model list."""
    import global_var

    return global_var.workdir().child("models", f"{run}-{fmt}", what="model")


def export_run(run: str, fmt: str, out_dir: Path | str | None = None) -> dict:
    """Export run `run` as `fmt` into `out_dir` (default: workdir/models/<run>-<fmt>); returns a summary."""
    from train.trainer import CONFIG_FILE, METRICS_FILE, read_json, require_run

    if fmt not in FORMATS:
        raise UserError("error.train_export_format", format=fmt, choices=", ".join(FORMATS))
    capability = export_capabilities()[fmt]
    if not capability["available"]:
        raise UserError("error.train_export_unavailable", format=fmt, reason=capability["reason"])
    folder = require_run(run)
    adapter = run_adapter_dir(folder)
    config = read_json(folder / CONFIG_FILE)
    metrics = read_json(folder / METRICS_FILE)
    out = Path(out_dir).expanduser().resolve() if out_dir else default_export_dir(run, fmt)
    if out.exists() and any(out.iterdir()):
        raise UserError("error.train_export_out_not_empty", path=str(out))
    out.mkdir(parents=True, exist_ok=True)
    try:
        if fmt == "lora":
            _export_lora(adapter, config, out)
        elif fmt in UNSLOTH_ONLY or _backend_is_unsloth():
            _export_unsloth(adapter, fmt, out)
        else:
            _export_merged_transformers(adapter, config, out)
    except BaseException:
        # Never leave a half-written export that looks complete.
        shutil.rmtree(out, ignore_errors=True)
        raise
    _write_readme(out, run, fmt, adapter, config, metrics)
    return {"run": run, "format": fmt, "path": str(out), "adapter": str(adapter)}


def _backend_is_unsloth() -> bool:
    from train.loading import unsloth_available

    return unsloth_available()


def _base_tokenizer(adapter: Path, config: dict):
    from transformers import AutoTokenizer

    from train.data import ensure_chat_template
    from train.loading import hub_kwargs, resolve_source

    if (adapter / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(str(adapter), local_files_only=True)
    else:
        location, is_local = resolve_source(config["model"])
        tokenizer = AutoTokenizer.from_pretrained(location, **hub_kwargs(is_local))
    ensure_chat_template(tokenizer, config.get("fallback_template") or "chatml")
    return tokenizer


def _export_lora(adapter: Path, config: dict, out: Path) -> None:
    for name in ADAPTER_FILES:
        if (adapter / name).exists():
            shutil.copy2(adapter / name, out / name)
    _base_tokenizer(adapter, config).save_pretrained(str(out))


def _export_merged_transformers(adapter: Path, config: dict, out: Path) -> None:
    """Base + adapter merged into plain weights, in the base checkpoint's own dtype."""
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

    from train.loading import hub_kwargs, resolve_source

    location, is_local = resolve_source(config["model"])
    base_config = AutoConfig.from_pretrained(location, **hub_kwargs(is_local))
    saved_dtype = getattr(base_config, "dtype", None) or torch.float32
    if isinstance(saved_dtype, str):
        saved_dtype = getattr(torch, saved_dtype)
    # Merge in float32 (exact on CPU), then store in the checkpoint's dtype: 16-bit bases stay 16-bit.
    base = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32, **hub_kwargs(is_local))
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged = merged.to(saved_dtype)
    merged.save_pretrained(str(out))
    if getattr(merged, "generation_config", None) is not None:
        merged.generation_config.save_pretrained(str(out))
    _base_tokenizer(adapter, config).save_pretrained(str(out))


def _export_unsloth(adapter: Path, fmt: str, out: Path) -> None:
    # Imported only here: unsloth patches torch/transformers at import time and needs CUDA.
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(model_name=str(adapter), load_in_4bit=fmt == "merged_4bit")
    if fmt == "merged_16bit":
        model.save_pretrained_merged(str(out), tokenizer, save_method="merged_16bit")
    elif fmt == "merged_4bit":
        model.save_pretrained_merged(str(out), tokenizer, save_method="merged_4bit_forced")
    else:
        model.save_pretrained_gguf(str(out), tokenizer, quantization_method=_GGUF_METHOD[fmt])


def _write_readme(out: Path, run: str, fmt: str, adapter: Path, config: dict, metrics: dict) -> None:
    shown_config = {k: v for k, v in config.items() if k not in ("plan",)}
    keep = ("state", "global_step", "total_steps", "train_loss", "train_runtime", "best_eval_loss", "best_eval_perplexity", "best_checkpoint")
    shown_metrics = {k: metrics[k] for k in keep if k in metrics}
    how = {
        "lora": "LoRA adapter: load the base model, then `PeftModel.from_pretrained(base, this_folder)`.",
        "merged_16bit": "Base and adapter merged into plain weights: load with `AutoModelForCausalLM.from_pretrained(this_folder)`.",
        "merged_4bit": "Merged and quantised to 4 bit (bitsandbytes) by Unsloth.",
    }.get(fmt, "GGUF file for llama.cpp / Ollama, written by Unsloth.")
    text = (
        f"# {out.name}\n\n"
        f"Exported {datetime.now().isoformat(sep=' ', timespec='seconds')} by the fine-tuning workbench.\n\n"
        f"- Format: `{fmt}`. {how}\n"
        f"- Base model: `{config.get('model')}`\n"
        f"- Dataset: `{config.get('dataset')}`\n"
        f"- Run: `{run}` (weights from `{adapter.name}`)\n\n"
        "## Run config\n\n```json\n" + json.dumps(shown_config, ensure_ascii=False, indent=2) + "\n```\n\n"
        "## Metrics\n\n```json\n" + json.dumps(shown_metrics, ensure_ascii=False, indent=2, default=str) + "\n```\n"
    )
    atomic_write_text(out / "README.md", text)
