"""Saving a run's result: LoRA adapter, merged 16-bit, GGUF (llama.cpp's converter, CPU or GPU, with an
Ollama Modelfile), and (Unsloth only) merged 4-bit and Unsloth's GGUF.

The formats are one table, EXPORT_FORMATS (name, what it needs: Unsloth/GPU or llama.cpp's tools,
the function that writes it, what its README says); the Model tab, the `export` command and
validation all read it, so a new format is one row and one function. Every export folder gets the tokenizer with its chat
template and a README.md naming the base model, dataset, run config and metrics. An export holds
the device (global_var's job rule): it is refused while training or an evaluation runs.

An export is written aside, into a hidden temp folder beside its target, and renamed into place
once complete (README included): a failed or killed export never shows up as a model.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import global_var
from tools.core.errors import Message, UserError
from tools.core.i18n import t
from tools.core.workdir import SHARED_FILE_MODE, atomic_write_text, temp_beside
from train import gguf
from train.data import ensure_chat_template
from train.gguf import TOOL_NAMES, missing_tools_message
from train.loading import hub_kwargs, resolve_source, unsloth_available
from train.runs import ADAPTER_DIR, CONFIG_FILE, METRICS_FILE, latest_checkpoint, read_json, require_run

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def export_capabilities(lang: str | None = None) -> dict[str, dict]:
    """format -> {"available": bool, "reason": str | None, "why": Message | None}; the reason is `why` in
    `lang` (default language) and names what to do (Unsloth on a GPU, `make gguf-tools`, `make gguf-quantize`)."""
    unsloth = unsloth_available()
    capabilities = {}
    for fmt, spec in EXPORT_FORMATS.items():
        why = None
        if spec.needs_unsloth and not unsloth:
            why = Message("models.export_needs_unsloth")
        elif spec.needs_llama_cpp:
            why = missing_tools_message(spec.needs_quantize)
        capabilities[fmt] = {"available": why is None, "reason": why.render(lang) if why else None, "why": why}
    return capabilities


def run_adapter_dir(run_folder: Path) -> Path:
    """The run's final adapter, or its latest checkpoint for a run that was stopped before the end."""
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


def page_export_dir(out_dir: str | None, root: Path) -> Path | None:
    """The folder the page may export into: None (empty) for the default, a path inside the work directory
    `root` (a relative one is taken from it), else UserError. Whoever opens the page is not the server's owner,
    so `~`, an absolute path elsewhere, `..` or a link out of the work directory is refused; the `export`
    command (--out) writes anywhere."""
    text = (out_dir or "").strip()
    if not text:
        return None
    root = Path(root).resolve()
    given = Path(text).expanduser()
    resolved = (given if given.is_absolute() else root / given).resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise UserError("bfiles.export_outside_workdir", path=text, workdir=str(root))
    return resolved


def is_tool_output(line: str) -> bool:
    """A line an external tool printed ("convert_hf_to_gguf: ..."), not one of the export's own stage lines."""
    return line.split(": ", 1)[0] in TOOL_NAMES


def export_run(run: str, fmt: str, out_dir: Path | str | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Export run `run` as `fmt` into `out_dir` (default: workdir/models/<run>-<fmt>); returns a summary.

    `progress` receives progress lines: the format's stage lines (EXPORT_FORMATS[fmt].stages of them) and
    the GGUF tools' output (`is_tool_output`); without it they go to the log."""
    if fmt not in FORMATS:
        raise UserError("error.train_export_format", format=fmt, choices=", ".join(FORMATS))
    capability = export_capabilities()[fmt]
    if not capability["available"]:
        raise UserError("error.train_export_unavailable", format=fmt, reason=capability["why"])
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
            details = EXPORT_FORMATS[fmt].write(adapter, config, staged, progress) or {}
            _write_readme(staged, run, fmt, adapter, config, metrics, out, details)
            if out.exists() and any(out.iterdir()):
                raise UserError("error.train_export_out_not_empty", path=str(out))
            os.replace(staged, out)
    # Writers name their files relative to the folder; the summary gives them where they now are.
    details.update({key: str(out / details[key]) for key in ("gguf", "base_gguf") if key in details})
    return {"run": run, "format": fmt, "path": str(out), "adapter": str(adapter), **details}


def _backend_is_unsloth() -> bool:
    return unsloth_available()


def _export_merged_16bit(adapter: Path, config: dict, out: Path, progress=None) -> None:
    if _backend_is_unsloth():
        _export_unsloth(adapter, "merged_16bit", out)
    else:
        _export_merged_transformers(adapter, config, out)


def _base_tokenizer(adapter: Path, config: dict):
    from transformers import AutoTokenizer

    if (adapter / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(str(adapter), local_files_only=True)
    else:
        location, is_local = resolve_source(config["model"])
        tokenizer = AutoTokenizer.from_pretrained(location, **hub_kwargs(is_local))
    ensure_chat_template(tokenizer, config.get("fallback_template") or "chatml")
    return tokenizer


def _export_lora(adapter: Path, config: dict, out: Path, progress=None) -> None:
    for name in ADAPTER_FILES:
        if (adapter / name).exists():
            shutil.copy2(adapter / name, out / name)
    _base_tokenizer(adapter, config).save_pretrained(str(out))


def _export_merged_transformers(adapter: Path, config: dict, out: Path) -> None:
    """Base + adapter merged into plain weights, in the base checkpoint's own dtype."""
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

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


def _export_unsloth(adapter: Path, fmt: str, out: Path, gguf_method: str | None = None) -> None:
    # Imported only here: unsloth patches torch/transformers at import time and needs CUDA.
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(model_name=str(adapter), load_in_4bit=fmt == "merged_4bit")
    if fmt == "merged_16bit":
        model.save_pretrained_merged(str(out), tokenizer, save_method="merged_16bit")
    elif fmt == "merged_4bit":
        model.save_pretrained_merged(str(out), tokenizer, save_method="merged_4bit_forced")
    else:
        model.save_pretrained_gguf(str(out), tokenizer, quantization_method=gguf_method)


# ---------------------------------------------------------------- GGUF


def _context_length(config: dict, model_dir: Path) -> int | None:
    """The Modelfile's num_ctx: the length the run trained at, within the model's native context."""
    try:
        native = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("max_position_embeddings")
    except (OSError, ValueError):
        native = None
    lengths = [n for n in (config.get("max_length"), native) if isinstance(n, int) and n > 0]
    return min(lengths) if lengths else None


def _export_gguf(kind: str):
    """gguf_f16 / gguf_q8_0 (llama.cpp's converter) and gguf_q4_k_m (converter f16 + llama-quantize),
    from the merged 16-bit model, with an Ollama Modelfile beside the file."""

    def write(adapter: Path, config: dict, out: Path, progress=None) -> dict:
        gguf.require_tools(need_quantize=kind in gguf.QUANTIZE_METHODS)
        progress = progress or gguf.log_progress
        gguf_file = out / f"{out.name}.gguf"
        # Intermediate files go beside `out` (inside the export's hidden temp folder), never into it.
        with tempfile.TemporaryDirectory(prefix=".gguf-", dir=out.parent) as work:
            merged = Path(work) / "merged"
            merged.mkdir()
            progress(t("gguf.progress_merge"))
            _export_merged_16bit(adapter, config, merged)
            name = config.get("run_name") or out.name  # general.name: the run, not the temp folder ("Merged")
            if kind in gguf.QUANTIZE_METHODS:
                f16 = gguf.convert_model(merged, Path(work) / "f16.gguf", "f16", progress, name=name)
                gguf.quantize(f16, gguf_file, kind, progress)
            else:
                gguf.convert_model(merged, gguf_file, kind, progress, name=name)
            facts = gguf.check_gguf(gguf_file, progress=progress)
            modelfile = gguf.write_modelfile(out, gguf_file.name, _base_tokenizer(adapter, config), merged,
                                             _context_length(config, merged), progress=progress)
        return {"gguf": gguf_file.name, "architecture": facts["architecture"], "size": facts["size"],
                "chat_family": modelfile["family"], "warning": modelfile["warning"]}

    return write


def _base_model_dir(config: dict) -> Path:
    """The base model as a local folder (a hub id resolves to its cached snapshot)."""
    location, is_local = resolve_source(config["model"])
    if is_local:
        return Path(location)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(location, **hub_kwargs(False)))
    except Exception as exc:  # offline without a cached copy, gated, gone: say which base is needed
        raise UserError("gguf.error_base_missing", model=location, detail=f"{type(exc).__name__}: {exc}") from None


_TOKENIZER_FILE_PREFIXES = ("tokenizer", "special_tokens", "chat_template", "vocab", "merges", "added_tokens")


def _export_gguf_lora(adapter: Path, config: dict, out: Path, progress=None) -> dict:
    """The adapter as a GGUF LoRA (convert_lora_to_gguf.py --base), plus the base model as f16 GGUF so
    that the folder runs as it is (Modelfile: FROM the base, ADAPTER the adapter)."""
    gguf.require_tools()
    progress = progress or gguf.log_progress
    base_dir = _base_model_dir(config)
    adapter_file = out / f"{out.name}-adapter-f16.gguf"
    base_file = out / f"{out.name}-base-f16.gguf"
    tokenizer = _base_tokenizer(adapter, config)
    with tempfile.TemporaryDirectory(prefix=".gguf-", dir=out.parent) as work:
        # The base's weights (linked, not copied) with the tokenizer the run trained with (its chat
        # template may be the fallback one the base lacked).
        base = Path(work) / "base"
        base.mkdir()
        for item in base_dir.iterdir():
            if item.is_file() and not item.name.startswith(_TOKENIZER_FILE_PREFIXES):
                (base / item.name).symlink_to(item.resolve())
        tokenizer.save_pretrained(str(base))
        gguf.convert_model(base, base_file, "f16", progress, name=gguf.gguf_name(config["model"]))
        gguf.convert_lora(adapter, base, adapter_file, "f16", progress, name=config.get("run_name") or out.name)
        base_facts = gguf.check_gguf(base_file, progress=progress)
        adapter_facts = gguf.check_gguf(adapter_file, architecture=base_facts["architecture"], adapter=True, progress=progress)
        modelfile = gguf.write_modelfile(out, base_file.name, tokenizer, base, _context_length(config, base),
                                         adapter_name=adapter_file.name, progress=progress)
    return {"gguf": adapter_file.name, "base_gguf": base_file.name, "architecture": base_facts["architecture"],
            "size": adapter_facts["size"], "chat_family": modelfile["family"], "warning": modelfile["warning"]}


def _export_gguf_unsloth(method: str):
    def write(adapter: Path, config: dict, out: Path, progress=None) -> dict:
        _export_unsloth(adapter, "gguf", out, gguf_method=method)
        files = sorted(out.rglob("*.gguf"), key=lambda path: path.stat().st_size, reverse=True)
        if not files:
            return {}
        # Our Modelfile (template checked against the tokenizer) replaces Unsloth's when we know the layout.
        tokenizer = _base_tokenizer(adapter, config)
        relative = str(files[0].relative_to(out))
        if gguf.identify_chat(tokenizer) is None and (files[0].parent / "Modelfile").exists():
            return {"gguf": relative}
        modelfile = gguf.write_modelfile(files[0].parent, files[0].name, tokenizer, None, config.get("max_length"), progress=progress)
        return {"gguf": relative, "chat_family": modelfile["family"], "warning": modelfile["warning"]}

    return write


@dataclass(frozen=True)
class ExportFormat:
    """One way to ship a run: the UI's choices, the CLI's --format and validation read this table."""

    name: str
    needs_unsloth: bool  # CUDA + Unsloth (merged 4-bit, Unsloth's GGUF)
    # (adapter folder, run config, empty output folder, progress callback or None) -> extra summary;
    # its "gguf"/"base_gguf" are paths relative to the output folder
    write: Callable[[Path, dict, Path, Callable[[str], None] | None], dict | None]
    how_to_use: str  # the line of the export's README that says how to load it
    needs_llama_cpp: bool = False  # llama.cpp's converter from `make gguf-tools`
    needs_quantize: bool = False  # llama-quantize from `make gguf-quantize`
    run_help: tuple[str, ...] = ()  # the "Run it" lines' message keys, filled with {folder}, {name}, {gguf}, {base}
    # The stage lines its writer reports (merge, convert, quantize, check, Modelfile), for the page's
    # progress bar; 0: none (a quick copy or one library call). tests/test_gguf.py counts them.
    stages: int = 0


# The README's and the page's "Run it" lines, as message keys (tools/core/locales/ui_models.py): the README
# is written in English, the page shows them in its language.
_GGUF_HELP = ("export.help.ollama", "export.help.llama_cpp")
_GGUF_LORA_HELP = ("export.help.ollama", "export.help.llama_cpp_lora")
_VLLM_MERGED_HELP = ("export.help.vllm_merged",)
_VLLM_LORA_HELP = ("export.help.vllm_lora",)


def _gguf_row(kind: str) -> ExportFormat:
    how = {"f16": "GGUF, 16-bit (llama.cpp's converter).", "q8_0": "GGUF, 8-bit Q8_0 (llama.cpp's converter).",
           "q4_k_m": "GGUF, 4-bit Q4_K_M (llama.cpp's converter, then llama-quantize)."}[kind]
    return ExportFormat(f"gguf_{kind}", False, _export_gguf(kind), how + " Runs on llama.cpp and Ollama (Modelfile beside it).",
                        needs_llama_cpp=True, needs_quantize=kind == "q4_k_m", run_help=_GGUF_HELP,
                        stages=5 if kind == "q4_k_m" else 4)


def _unsloth_gguf_row(method: str) -> ExportFormat:
    return ExportFormat(f"gguf_unsloth_{method}", True, _export_gguf_unsloth(method),
                        "GGUF file for llama.cpp / Ollama, written by Unsloth (CUDA GPU).", run_help=_GGUF_HELP)


EXPORT_FORMATS: dict[str, ExportFormat] = {spec.name: spec for spec in (
    ExportFormat("lora", False, _export_lora,
                 "LoRA adapter: load the base model, then `PeftModel.from_pretrained(base, this_folder)`.", run_help=_VLLM_LORA_HELP),
    ExportFormat("merged_16bit", False, _export_merged_16bit,
                 "Base and adapter merged into plain weights: load with `AutoModelForCausalLM.from_pretrained(this_folder)`.",
                 run_help=_VLLM_MERGED_HELP),
    ExportFormat("merged_4bit", True, lambda adapter, config, out, progress=None: _export_unsloth(adapter, "merged_4bit", out),
                 "Merged and quantised to 4 bit (bitsandbytes) by Unsloth."),
    _gguf_row("f16"),
    _gguf_row("q8_0"),
    _gguf_row("q4_k_m"),
    ExportFormat("gguf_lora", False, _export_gguf_lora,
                 "LoRA adapter as GGUF (convert_lora_to_gguf.py), with the base model as f16 GGUF so the folder runs as it is.",
                 needs_llama_cpp=True, run_help=_GGUF_LORA_HELP, stages=5),
    _unsloth_gguf_row("q4_k_m"),
    _unsloth_gguf_row("q8_0"),
    _unsloth_gguf_row("f16"),
)}
FORMATS = tuple(EXPORT_FORMATS)


def _run_help(fmt: str, final: Path, config: dict, details: dict, lang: str = "en", readme: bool = False) -> str:
    """The "Run it" section, with this export's paths filled in, in `lang`. Every name and path is quoted for
    the shell (a folder "my model $(id)" stays one word and runs nothing). For the README (`readme`, in
    English), paths are relative to the export folder it lies in, so they hold where the folder is copied to."""
    spec = EXPORT_FORMATS[fmt]
    if not spec.run_help:
        return ""

    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in final.name.lower())
    if "base_gguf" in details:
        base = Path(details["base_gguf"]).name
    else:
        try:
            base = resolve_source(config.get("model") or "")[0]
        except UserError:
            base = config.get("model")
    gguf = Path(details["gguf"]).name if details.get("gguf") else ""
    words = {"folder": "." if readme else str(final), "name": name, "gguf": gguf, "base": str(base or "")}
    quoted = {field: shlex.quote(word) for field, word in words.items()}
    text = "".join(t(key, lang, **quoted) for key in spec.run_help)
    if readme:  # run from the folder itself: "cd ." says nothing
        text = t("bfiles.readme_run_here", lang) + "\n\n" + "".join(
            line for line in text.splitlines(keepends=True) if line.strip() != "cd .")
    if details.get("warning"):
        text += "\n> " + t(details["warning"], lang) + "\n"
    return f"## {t('export.help.title', lang)}\n\n" + text + "\n"


def run_help(result: dict, lang: str) -> str:
    """The "Run it" section of a finished export (`export_run`'s result) in the page's language."""
    config = read_json(require_run(result["run"]) / CONFIG_FILE)
    return _run_help(result["format"], Path(result["path"]), config, result, lang)


def _write_readme(out: Path, run: str, fmt: str, adapter: Path, config: dict, metrics: dict,
                  final: Path | None = None, details: dict | None = None) -> None:
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
        + _run_help(fmt, final or out, config, details or {}, readme=True) +
        "## Run config\n\n```json\n" + json.dumps(shown_config, ensure_ascii=False, indent=2) + "\n```\n\n"
        "## Metrics\n\n```json\n" + json.dumps(shown_metrics, ensure_ascii=False, indent=2, default=str) + "\n```\n"
    )
    atomic_write_text(out / "README.md", text, SHARED_FILE_MODE)  # read by other tools and users


# ---------------------------------------------------------------- downloads from the page

DOWNLOAD_ZIP_LIMIT = 4 * 1024**3  # a larger export (merged 16-bit weights) is not zipped: it is copied off the machine
DOWNLOAD_PREFIX = "workbench-export-"
DOWNLOAD_KEEP_S = 3600  # an earlier export's download folder is removed after an hour


def export_downloads(path: Path | str, into: Path | str | None = None) -> list[Path]:
    """What the page offers to download for an export folder (through an SSH tunnel the printed server path
    is of no use): each GGUF file with its Modelfile and README as they are (a GGUF is one file and usually
    large); anything else as one zip of the folder, up to DOWNLOAD_ZIP_LIMIT bytes; nothing beyond it.
    A zip is written into `into` (default: a fresh temporary folder; those of earlier exports go after an hour)."""
    import zipfile

    folder = Path(path)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    ggufs = [p for p in files if p.suffix == ".gguf"]
    if ggufs:
        return ggufs + [p for p in files if p.name in ("Modelfile", "README.md") and p.parent == folder]
    if sum(p.stat().st_size for p in files) > DOWNLOAD_ZIP_LIMIT:
        return []
    target = Path(into) if into else _download_folder()
    archive = target / f"{folder.name}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
        for file in files:
            zipped.write(file, Path(folder.name) / file.relative_to(folder))
    return [archive]


def _download_folder() -> Path:
    import time

    root = Path(tempfile.gettempdir())
    for old in root.glob(DOWNLOAD_PREFIX + "*"):
        try:
            if time.time() - old.stat().st_mtime > DOWNLOAD_KEEP_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return Path(tempfile.mkdtemp(prefix=DOWNLOAD_PREFIX))
