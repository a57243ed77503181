"""Loading and unloading the one base model: Unsloth on CUDA when installed, transformers + peft otherwise.

`load_model` is the only entry point; the loaded model is kept by global_var.
torch / transformers / unsloth are imported inside the functions so the app starts light.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import global_var
from tools.core.errors import UserError
from tools.core.workdir import validate_name
from train.inference import GENERATION_QUEUE

DTYPES = ("auto", "float32", "bfloat16", "float16")
ROPE_SCALINGS = ("linear", "dynamic", "yarn")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedModel:
    """A loaded model with its tokenizer and what the Model tab shows about it."""

    model: Any
    tokenizer: Any
    source: str  # what the user typed: folder name, path or hub id
    location: str  # resolved local folder or hub id
    backend: str  # "unsloth" | "transformers"
    max_seq_length: int
    info: dict = field(default_factory=dict)
    adapter_run: str | None = None  # training run whose adapter the model carries
    loaded_at: float = field(default_factory=time.time)  # when it was loaded (/v1/models' `created`)

    def refresh_info(self) -> dict:
        self.info.update(parameter_counts(self.model))
        self.info["adapter"] = self.adapter_run
        return self.info


# ---------------------------------------------------------------- where models come from


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def unsloth_available() -> bool:
    """Unsloth needs CUDA; check for the package without importing it (importing patches torch)."""
    return importlib.util.find_spec("unsloth") is not None and cuda_available()


def list_local_models(models_dir: Path | None = None) -> list[str]:
    """Names of the model folders under workdir/models (those holding a config.json), sorted."""
    folder = Path(models_dir) if models_dir else _workdir_models()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "config.json").exists())


def local_native_context(source: str | None) -> int | None:
    """The native context (max_position_embeddings) of a local model folder, read from its
    config.json without loading anything; None for a hub id or an unreadable config."""
    try:
        location, is_local = resolve_source(source or "")
    except UserError:
        return None
    if not is_local:
        return None
    try:
        config = json.loads((Path(location) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings") or (config.get("text_config") or {}).get("max_position_embeddings")
    return int(value) if isinstance(value, int) and value > 0 else None


def _workdir_models() -> Path:
    return global_var.workdir().models


def hub_offline() -> bool:
    """True when the hub cannot be used: HF_HUB_OFFLINE is set or huggingface.co is unreachable."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=3):
            return False
    except OSError:
        return True


def resolve_source(source: str) -> tuple[str, bool]:
    """(location, is_local) for a folder name under workdir/models, an absolute path or a hub id."""
    text = (source or "").strip()
    if not text:
        raise UserError("error.field_required", field="model")
    path = Path(text).expanduser()
    if path.is_absolute():
        if not (path / "config.json").exists():
            raise UserError("error.train_model_path_missing", path=str(path))
        return str(path), True
    models = _workdir_models()
    if "/" not in text and "\\" not in text:
        local = models / validate_name(text, "model")
        if (local / "config.json").exists():
            return str(local), True
    if _HUB_ID.match(text):
        return text, False
    raise UserError("error.train_model_unknown", name=text, folder=str(models), available=", ".join(list_local_models(models)) or "-")


# ---------------------------------------------------------------- load / unload


def load_model(
    source: str,
    max_seq_length: int = 2048,
    load_in_4bit: bool = False,
    dtype: str = "auto",
    rope_scaling: str | None = None,
    adapter_dir: str | Path | None = None,
) -> LoadedModel:
    """Load `source` as the process-wide model (unloading any previous one) and return it.

    Refused while a training runs. `rope_scaling` ("linear", "dynamic", "yarn") is applied when
    `max_seq_length` exceeds the model's native context; `adapter_dir` attaches a saved LoRA adapter.
    """
    if dtype not in DTYPES:
        raise UserError("error.train_choice", field="dtype", value=dtype, choices=", ".join(DTYPES))
    if rope_scaling not in (None, "", "none", *ROPE_SCALINGS):
        raise UserError("error.train_choice", field="rope_scaling", value=rope_scaling, choices=", ".join(("none",) + ROPE_SCALINGS))
    try:
        max_seq_length = int(max_seq_length)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field="max_seq_length", value=max_seq_length) from None
    if not 16 <= max_seq_length <= 1_048_576:
        raise UserError("error.number_range", field="max_seq_length", low=16, high=1_048_576, value=max_seq_length)
    rope_scaling = rope_scaling if rope_scaling in ROPE_SCALINGS else None
    global_var.refuse_while_device_busy("load a model")
    # Wait for the answer being generated (chat, API) to finish: its weights are about to go.
    with _generation_paused():
        return _load_into_state(source, max_seq_length, load_in_4bit, dtype, rope_scaling, adapter_dir)


def load_for_training(source: str, location: str, is_local: bool, max_seq_length: int, load_in_4bit: bool,
                      rope_scaling: str | None, use_unsloth: bool = True) -> LoadedModel:
    """Load the base model in a training worker: from the location the launcher resolved, never
    kept as the process's chat model. `use_unsloth=False` forces transformers + peft (several processes)."""
    return _load(source, location, is_local, max_seq_length, load_in_4bit, "auto", rope_scaling, use_unsloth)


def _load(source, location, is_local, max_seq_length, load_in_4bit, dtype, rope_scaling, use_unsloth: bool = True) -> LoadedModel:
    if load_in_4bit and not cuda_available():
        raise UserError("error.train_4bit_needs_gpu")
    if use_unsloth and unsloth_available():
        return _load_unsloth(source, location, is_local, max_seq_length, load_in_4bit, dtype)
    return _load_transformers(source, location, is_local, max_seq_length, load_in_4bit, dtype, rope_scaling)


def _load_into_state(source, max_seq_length, load_in_4bit, dtype, rope_scaling, adapter_dir) -> LoadedModel:
    location, is_local = resolve_source(source)
    # A separate lock serialises loads without holding the state lock for minutes: status polls stay fast.
    with global_var.model_loading_lock():
        with global_var.model_lock():
            _drop_loaded()
        loaded = _load(source, location, is_local, max_seq_length, load_in_4bit, dtype, rope_scaling)
        if adapter_dir:
            attach_adapter(loaded, adapter_dir)
        loaded.refresh_info()
        global_var.set_loaded_model(loaded)
        return loaded


def unload_model() -> bool:
    """Drop the loaded model and free its memory (GPU cache too). True if one was loaded."""
    global_var.refuse_while_device_busy("unload the model")
    with _generation_paused(), global_var.model_lock():
        global_var.refuse_while_device_busy("unload the model")
        return _drop_loaded()


def _generation_paused(timeout_s: float = 300.0):
    """Hold the generation queue (chat and API requests wait) while the model changes."""
    return GENERATION_QUEUE.slot(timeout=timeout_s)


def _drop_loaded() -> bool:
    loaded = global_var.loaded_model()
    global_var.set_loaded_model(None)
    if loaded is None:
        return False
    # Drop our references so the tensors can be collected; callers may still hold the LoadedModel.
    loaded.model = None
    loaded.tokenizer = None
    del loaded
    free_memory()
    return True


def free_memory() -> None:
    gc.collect()
    if "torch" in __import__("sys").modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def loaded_model_info() -> dict | None:
    """What the Model tab shows about the loaded model, or None when none is loaded."""
    loaded = global_var.loaded_model()
    return dict(loaded.info) if loaded else None


def _torch_dtype(dtype: str, on_cuda: bool):
    import torch

    if dtype == "auto":
        if not on_cuda:
            # CPU kernels for 16-bit matmuls are slow and fp16 training is unsupported there.
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, dtype)


def hub_kwargs(is_local: bool) -> dict:
    if is_local:
        return {"local_files_only": True}
    return {"local_files_only": hub_offline()}


def _explain_load_error(exc: Exception, location: str, is_local: bool) -> UserError:
    if not is_local and hub_kwargs(False)["local_files_only"]:
        return UserError("error.train_hub_offline", model=location)
    return UserError("error.train_model_load_failed", model=location, detail=f"{type(exc).__name__}: {exc}")


def rope_parameters_for(config, max_seq_length: int, kind: str | None) -> dict | None:
    """RoPE parameters stretching `config`'s native context to `max_seq_length`, or None when not needed."""
    native = int(getattr(config, "max_position_embeddings", 0) or 0)
    if not kind or not native or max_seq_length <= native:
        return None
    current = dict(getattr(config, "rope_parameters", None) or {})
    params = {
        "rope_type": kind,
        "factor": round(max_seq_length / native, 4),
        "rope_theta": current.get("rope_theta", getattr(config, "rope_theta", 10000.0)),
    }
    if kind in ("yarn", "dynamic"):
        params["original_max_position_embeddings"] = native
    return params


def _load_transformers(source, location, is_local, max_seq_length, load_in_4bit, dtype, rope_scaling) -> LoadedModel:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    on_cuda = torch.cuda.is_available()
    kwargs = hub_kwargs(is_local)
    try:
        config = AutoConfig.from_pretrained(location, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    except (OSError, ValueError) as exc:
        raise _explain_load_error(exc, location, is_local) from exc
    native = int(getattr(config, "max_position_embeddings", 0) or 0)
    rope = rope_parameters_for(config, max_seq_length, rope_scaling)
    if rope:
        config.rope_parameters = rope
        config.max_position_embeddings = max_seq_length
    model_kwargs: dict[str, Any] = {"config": config, "dtype": _torch_dtype(dtype, on_cuda), **kwargs}
    if load_in_4bit:
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("error.train_4bit_needs_bnb")
        from transformers import BitsAndBytesConfig

        model_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=model_kwargs["dtype"], bnb_4bit_use_double_quant=True
        )
    if on_cuda:
        # One process per GPU under torchrun: each rank puts its copy on its own device.
        model_kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    try:
        model = AutoModelForCausalLM.from_pretrained(location, **model_kwargs)
    except (OSError, ValueError) as exc:
        raise _explain_load_error(exc, location, is_local) from exc
    _ensure_pad_token(tokenizer, model)
    info = _describe(model, tokenizer, backend="transformers", native_context=native, max_seq_length=max_seq_length)
    info["rope_scaling"] = f"{rope['rope_type']} ×{rope['factor']}" if rope else None
    if max_seq_length > native > 0 and not rope:
        info["warning"] = "context_exceeds_native"
    return LoadedModel(model, tokenizer, source, location, "transformers", max_seq_length, info)


def _load_unsloth(source, location, is_local, max_seq_length, load_in_4bit, dtype) -> LoadedModel:
    # Imported only here: unsloth patches torch/transformers at import time.
    from unsloth import FastLanguageModel

    try:
        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=location,
            max_seq_length=max_seq_length,
            load_in_4bit=load_in_4bit,
            dtype=None if dtype == "auto" else _torch_dtype(dtype, True),
            **hub_kwargs(is_local),
        )
    except (OSError, ValueError) as exc:
        raise _explain_load_error(exc, location, is_local) from exc
    _ensure_pad_token(tokenizer, model)
    native = int(getattr(model.config, "max_position_embeddings", 0) or 0)
    info = _describe(model, tokenizer, backend="unsloth", native_context=native, max_seq_length=max_seq_length)
    # Unsloth scales RoPE itself when max_seq_length exceeds the native context.
    info["rope_scaling"] = "unsloth (automatic)" if max_seq_length > native > 0 else None
    info["load_in_4bit"] = bool(load_in_4bit)
    return LoadedModel(model, tokenizer, source, location, "unsloth", max_seq_length, info)


def _ensure_pad_token(tokenizer, model) -> None:
    # Batching needs a pad token; the end-of-text token is the usual stand-in.
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id


def parameter_counts(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total_params": total, "trainable_params": trainable}


def _describe(model, tokenizer, backend: str, native_context: int, max_seq_length: int) -> dict:
    config = model.config
    first = next(model.parameters())
    return {
        "architecture": (getattr(config, "architectures", None) or [type(model).__name__])[0],
        "model_type": getattr(config, "model_type", None),
        "dtype": str(first.dtype).replace("torch.", ""),
        "device": str(first.device),
        "native_context": native_context,
        "context_length": max_seq_length,
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "backend": backend,
        **parameter_counts(model),
    }


def switch_adapter(adapter_dir: str | Path | None, run_name: str | None = None) -> LoadedModel:
    """Put another training run's LoRA adapter on the loaded base model (None: the base alone), without
    loading the base again: the current adapter's layers are taken off first. Chat and the API wait."""
    global_var.refuse_while_device_busy("load a model")
    with _generation_paused(), global_var.model_lock():
        loaded = global_var.loaded_model()
        if loaded is None:
            raise UserError("error.chat_no_model")
        if loaded.adapter_run is not None and hasattr(loaded.model, "unload"):
            loaded.model = loaded.model.unload()  # the base model's own modules again, unmerged
            loaded.adapter_run = None
        if adapter_dir is not None:
            attach_adapter(loaded, adapter_dir, run_name)
        loaded.refresh_info()
        return loaded


def attach_adapter(loaded: LoadedModel, adapter_dir: str | Path, run_name: str | None = None) -> None:
    """Wrap the loaded base model with the LoRA adapter saved in `adapter_dir` (inference mode)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise UserError("error.train_adapter_missing", path=str(adapter_dir))
    loaded.model = PeftModel.from_pretrained(loaded.model, str(adapter_dir), is_trainable=False)
    loaded.model.eval()
    # run/adapter and run/checkpoint-N are named after their run; an exported folder after itself.
    inside_run = adapter_dir.name == "adapter" or adapter_dir.name.startswith("checkpoint-")
    loaded.adapter_run = run_name or (adapter_dir.parent.name if inside_run else adapter_dir.name)
    loaded.refresh_info()
