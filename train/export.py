"""Saving a run's result: LoRA adapter, merged 16-bit, and (Unsloth only) merged 4-bit and GGUF.

The formats are one table, EXPORT_FORMATS (name, needs Unsloth/GPU, the function that writes it,
what its README says); the Model tab, the `export` command and validation all read it, so a new
format is one row and one function. Every export folder gets the tokenizer with its chat
template and a README.md naming the base model, dataset, run config and metrics. An export holds
the device (global_var's job rule): it is refused while training or an evaluation runs.

An export is written aside, into a hidden temp folder beside its target, and renamed into place
once complete (README included): a failed or killed export never shows up as a model.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import global_var
from tools.core.errors import UserError
from tools.core.workdir import atomic_write_text, temp_beside

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def export_capabilities(lang: str | None = None) -> dict[str, dict]:
    """format -> {"available": bool, "reason": str | None}; the reason is in `lang` (default language)."""
    from tools.core.i18n import t
    from train.loading import unsloth_available

    unsloth = unsloth_available()
    capabilities = {}
    for fmt, spec in EXPORT_FORMATS.items():
        available = not spec.needs_unsloth or unsloth
        capabilities[fmt] = {"available": available, "reason": None if available else t("models.export_needs_unsloth", lang)}
    return capabilities


def run_adapter_dir(run_folder: Path) -> Path:
    """The run's final adapter, or its latest checkpoint for a run that was stopped before the end."""
    from train.runs import ADAPTER_DIR, latest_checkpoint

    final = run_folder / ADAPTER_DIR
    if (final / "adapter_config.json").exists():
        return final
    checkpoint = latest_checkpoint(run_folder) if run_folder.is_dir() else None
    if checkpoint is not None and (checkpoint / "adapter_config.json").exists():
        return checkpoint
    raise UserError("error.train_run_no_adapter", run=run_folder.name)


def default_export_dir(run: str, fmt: str) -> Path:
    """workdir/models/<run>-<format>: merged exports then show up in the model list."""
    return global_var.workdir().child("models", f"{run}-{fmt}", what="model")


def export_run(run: str, fmt: str, out_dir: Path | str | None = None) -> dict:
    """Export run `run` as `fmt` into `out_dir` (default: workdir/models/<run>-<fmt>); returns a summary."""
    from train.runs import CONFIG_FILE, METRICS_FILE, read_json, require_run

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
    with global_var.device_job("export", run):
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written into <hidden temp>/<out name> (writers that name files after their folder see the
        # real name), then renamed onto `out` (absent or empty) in one step. A failure removes the
        # temp; a kill leaves it hidden, for the stale-temp cleanup at the next start.
        with temp_beside(out, "export", folder=True) as temp:
            staged = temp / out.name
            staged.mkdir()
            EXPORT_FORMATS[fmt].write(adapter, config, staged)
            _write_readme(staged, run, fmt, adapter, config, metrics)
            if out.exists() and any(out.iterdir()):
                raise UserError("error.train_export_out_not_empty", path=str(out))
            os.replace(staged, out)
    return {"run": run, "format": fmt, "path": str(out), "adapter": str(adapter)}


def _backend_is_unsloth() -> bool:
    from train.loading import unsloth_available

    return unsloth_available()


def _export_merged_16bit(adapter: Path, config: dict, out: Path) -> None:
    if _backend_is_unsloth():
        _export_unsloth(adapter, "merged_16bit", out)
    else:
        _export_merged_transformers(adapter, config, out)


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
        model.save_pretrained_gguf(str(out), tokenizer, quantization_method=EXPORT_FORMATS[fmt].gguf_method)


@dataclass(frozen=True)
class ExportFormat:
    """One way to ship a run: the UI's choices, the CLI's --format and validation read this table."""

    name: str
    needs_unsloth: bool  # CUDA + Unsloth (merged 4-bit, GGUF); the others work everywhere
    write: Callable[[Path, dict, Path], None]  # (adapter folder, run config, empty output folder)
    how_to_use: str  # the line of the export's README that says how to load it
    gguf_method: str | None = None


def _gguf(method: str) -> ExportFormat:
    return ExportFormat(f"gguf_{method}", True, lambda adapter, config, out: _export_unsloth(adapter, f"gguf_{method}", out),
                        "GGUF file for llama.cpp / Ollama, written by Unsloth.", gguf_method=method)


EXPORT_FORMATS: dict[str, ExportFormat] = {spec.name: spec for spec in (
    ExportFormat("lora", False, _export_lora,
                 "LoRA adapter: load the base model, then `PeftModel.from_pretrained(base, this_folder)`."),
    ExportFormat("merged_16bit", False, _export_merged_16bit,
                 "Base and adapter merged into plain weights: load with `AutoModelForCausalLM.from_pretrained(this_folder)`."),
    ExportFormat("merged_4bit", True, lambda adapter, config, out: _export_unsloth(adapter, "merged_4bit", out),
                 "Merged and quantised to 4 bit (bitsandbytes) by Unsloth."),
    _gguf("q4_k_m"),
    _gguf("q8_0"),
    _gguf("f16"),
)}
FORMATS = tuple(EXPORT_FORMATS)


def _write_readme(out: Path, run: str, fmt: str, adapter: Path, config: dict, metrics: dict) -> None:
    shown_config = {k: v for k, v in config.items() if k not in ("plan",)}
    keep = ("state", "global_step", "total_steps", "train_loss", "train_runtime", "best_eval_loss", "best_eval_perplexity", "best_checkpoint")
    shown_metrics = {k: metrics[k] for k in keep if k in metrics}
    how = EXPORT_FORMATS[fmt].how_to_use
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
