"""GGUF through llama.cpp's own tools, on CPU or GPU alike and offline: where the tools are, running
the converter and llama-quantize as child processes, reading a GGUF back, and the Ollama Modelfile.

`make gguf-tools` extracts llama.cpp's converter from the llama-cpp-python source distribution
into a cache outside the repo (WORKBENCH_LLAMA_CPP, default ~/.cache/workbench/llama.cpp);
`make gguf-quantize` builds llama-quantize and llama-simple there. train.export's gguf_* rows call
the functions below; nothing here imports torch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tools.core.errors import Message, UserError
from tools.core.i18n import t
from tools.core.workdir import REPO_ROOT, SHARED_FILE_MODE, atomic_write_text

Progress = Callable[[str], None]

TOOLS_ENV = "WORKBENCH_LLAMA_CPP"
CONVERTER_FILES = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/__init__.py", "gguf-py/gguf/__init__.py")
TAIL_LINES = 25
# The converter's --outtype values we offer; k-quants go through llama-quantize from f16.
CONVERTER_OUTTYPES = ("f16", "q8_0")
QUANTIZE_METHODS = {"q4_k_m": "Q4_K_M"}
# Ollama's own default, used when the model's generation_config.json gives none.
DEFAULT_TEMPERATURE = 0.7

log = logging.getLogger("workbench")


def log_progress(line: str) -> None:
    log.info("%s", line)


# ---------------------------------------------------------------- where the tools are


def tools_dir() -> Path:
    """The llama.cpp tools cache: $WORKBENCH_LLAMA_CPP, else ~/.cache/workbench/llama.cpp (the Makefile's default)."""
    configured = os.environ.get(TOOLS_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "workbench" / "llama.cpp"


def converter_ready(root: Path | None = None) -> bool:
    """`make gguf-tools` finished (its stamp is written last) and the converter's files are there."""
    root = root or tools_dir()
    return any(root.glob(".gguf-tools-*")) and all((root / name).is_file() for name in CONVERTER_FILES)


def tool_binary(name: str, root: Path | None = None) -> Path | None:
    """A program built by `make gguf-quantize` (llama-quantize, llama-simple), or None."""
    path = (root or tools_dir()) / "bin" / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def missing_tools_message(need_quantize: bool) -> Message | None:
    """Why the llama.cpp path cannot run here (naming the make target), or None when it can."""
    root = tools_dir()
    if not converter_ready(root):
        return Message("gguf.needs_tools", path=str(root))
    if need_quantize and tool_binary("llama-quantize", root) is None:
        return Message("gguf.needs_quantize", path=str(root))
    return None


def missing_tools_reason(need_quantize: bool, lang: str | None = None) -> str | None:
    """`missing_tools_message` in `lang` (default language)."""
    message = missing_tools_message(need_quantize)
    return message.render(lang) if message else None


def require_tools(need_quantize: bool = False) -> Path:
    reason = missing_tools_message(need_quantize)
    if reason:
        raise UserError("error.train_export_unavailable", format="gguf", reason=reason)
    return tools_dir()


# ---------------------------------------------------------------- running the tools


# The tools run_tool names in the lines it passes on ("<tool>: <line>").
TOOL_NAMES = frozenset({"convert_hf_to_gguf", "convert_lora_to_gguf", "llama-quantize"})


def run_tool(command: list[str], tool: str, progress: Progress | None = None, cwd: Path | None = None) -> None:
    """Run one tool, passing each output line to `progress`; on failure the error carries its last lines."""
    progress = progress or log_progress
    # Offline: the converter must never reach for a hub (a missing file is an error, not a download).
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                   cwd=str(cwd) if cwd else None, env=env)
    except OSError as exc:
        raise UserError("gguf.error_tool_not_started", tool=tool, detail=str(exc)) from None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                progress(f"{tool}: {line}")
        code = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        process.stdout.close()
    if code != 0:
        raise UserError("gguf.error_tool_failed", tool=tool, code=code, tail="\n".join(tail) or "-")


def gguf_name(source: str) -> str:
    """The `general.name` for a model given as a folder name, a path or a hub id: its last part
    ("Qwen/Qwen2.5-0.5B-Instruct" -> "Qwen2.5-0.5B-Instruct")."""
    return re.split(r"[/\\]", str(source).rstrip("/\\"))[-1] or str(source)


def _converter_command(script: str, args: list[str], name: str | None = None) -> list[str]:
    # Our interpreter (the project's .venv) runs the converter through train.gguf_convert, which adds
    # the Qwen2 pre-tokenizer rule and the file's name (general.name, else llama.cpp takes the folder's:
    # "Merged", "Base"); its torch/transformers/numpy are the ones our requirements pin.
    named = ["--name", name] if name else []
    return [sys.executable, "-m", "train.gguf_convert", str(require_tools()), script, *named, *args]


def convert_model(model_dir: Path, out_file: Path, outtype: str, progress: Progress | None = None, name: str | None = None) -> Path:
    """A Hugging Face model folder (16-bit or 32-bit weights) -> one GGUF file of `outtype` (f16, q8_0), its
    `general.name` `name` (a run's, a model's) when given."""
    if outtype not in CONVERTER_OUTTYPES:
        raise ValueError(f"outtype {outtype!r} is not one of {CONVERTER_OUTTYPES}")
    (progress or log_progress)(t("gguf.progress_convert", outtype=outtype, file=out_file.name))
    run_tool(_converter_command("convert_hf_to_gguf.py", [str(model_dir), "--outfile", str(out_file), "--outtype", outtype], name),
             "convert_hf_to_gguf", progress, cwd=REPO_ROOT)
    return out_file


def convert_lora(adapter_dir: Path, base_dir: Path, out_file: Path, outtype: str = "f16", progress: Progress | None = None,
                 name: str | None = None) -> Path:
    """A PEFT LoRA adapter -> a GGUF adapter file; `base_dir` is the base model's folder (its config is read);
    its `general.name` `name` (the run's) when given."""
    (progress or log_progress)(t("gguf.progress_convert", outtype=outtype, file=out_file.name))
    args = [str(adapter_dir), "--base", str(base_dir), "--outfile", str(out_file), "--outtype", outtype]
    run_tool(_converter_command("convert_lora_to_gguf.py", args, name), "convert_lora_to_gguf", progress, cwd=REPO_ROOT)
    return out_file


def quantize(source: Path, out_file: Path, method: str, progress: Progress | None = None) -> Path:
    """An f16 GGUF -> a k-quant GGUF (q4_k_m) with llama-quantize."""
    binary = tool_binary("llama-quantize", require_tools(need_quantize=True))
    (progress or log_progress)(t("gguf.progress_quantize", method=QUANTIZE_METHODS[method], file=out_file.name))
    run_tool([str(binary), str(source), str(out_file), QUANTIZE_METHODS[method]], "llama-quantize", progress)
    return out_file


def greedy_with_runner(gguf_file: Path, prompt: str, max_new_tokens: int) -> str | None:
    """The text llama-simple generates greedily after `prompt` (special tokens parsed), or None when
    it is not built. The prompt is echoed first; it is cut off here."""
    binary = tool_binary("llama-simple")
    if binary is None:
        return None
    done = subprocess.run([str(binary), "-m", str(gguf_file), "-n", str(max_new_tokens), "-ngl", "0", prompt],
                          capture_output=True, text=True, errors="replace", timeout=300)
    if done.returncode != 0:
        raise UserError("gguf.error_tool_failed", tool="llama-simple", code=done.returncode,
                        tail="\n".join(done.stderr.strip().splitlines()[-TAIL_LINES:]) or "-")
    text = done.stdout[:-1] if done.stdout.endswith("\n") else done.stdout
    return text[len(prompt):] if text.startswith(prompt) else text


# ---------------------------------------------------------------- reading a GGUF back


def read_gguf(path: Path) -> dict:
    """The facts of a GGUF file that say it is usable: architecture, tensors, tokenizer, chat template."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def value(key: str):
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    tokens = reader.fields.get("tokenizer.ggml.tokens")
    return {
        "architecture": value("general.architecture"),
        "type": value("general.type"),
        "name": value("general.name"),
        "file_type": value("general.file_type"),
        "tensor_count": len(reader.tensors),
        "tensor_types": sorted({tensor.tensor_type.name for tensor in reader.tensors}),
        "chat_template": value("tokenizer.chat_template"),
        "tokenizer_model": value("tokenizer.ggml.model"),
        "tokenizer_pre": value("tokenizer.ggml.pre"),
        "vocab_size": len(tokens.data) if tokens is not None else 0,
        "eos_token_id": value("tokenizer.ggml.eos_token_id"),
        "adapter_type": value("adapter.type"),
        "lora_alpha": value("adapter.lora.alpha"),
        "size": Path(path).stat().st_size,
    }


def check_gguf(path: Path, architecture: str | None = None, adapter: bool = False, progress: Progress | None = None) -> dict:
    """Read `path` back and refuse it when it lacks what a runner needs; returns read_gguf's facts."""
    def refuse(problem_key: str, **params):
        raise UserError("gguf.error_readback", path=str(path), problem=t(problem_key, **params))

    try:
        facts = read_gguf(path)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        refuse("gguf.problem_unreadable", detail=f"{type(exc).__name__}: {exc}")
    if not facts["architecture"]:
        refuse("gguf.problem_no_architecture")
    if architecture and facts["architecture"] != architecture:
        refuse("gguf.problem_architecture", found=facts["architecture"], expected=architecture)
    if facts["tensor_count"] == 0:
        refuse("gguf.problem_no_tensors")
    if adapter and facts["adapter_type"] != "lora":
        refuse("gguf.problem_not_adapter")
    if not adapter and not facts["chat_template"]:
        refuse("gguf.problem_no_chat_template")
    (progress or log_progress)(t("gguf.progress_check", architecture=facts["architecture"], tensors=facts["tensor_count"],
                                      size=human_size(facts["size"])))
    return facts


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


# ---------------------------------------------------------------- Go templates (the subset we write)

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.S)


def render_go_template(template: str, messages: list[dict]) -> str:
    """Render the Go-template subset our Modelfiles use, as Ollama would for `messages`:
    text, trim markers ({{- and -}}), {{ range .Messages }}…{{ end }}, {{ .Role }} and {{ .Content }}."""
    pieces: list[tuple[str, str]] = []  # ("text", s) / ("action", s)
    position = 0
    for match in _ACTION.finditer(template):
        text = template[position:match.start()]
        if match.group(1):
            text = text.rstrip(" \t\r\n")
        if pieces and pieces[-1][0] == "trim_next":
            pieces.pop()
            text = text.lstrip(" \t\r\n")
        pieces.append(("text", text))
        pieces.append(("action", match.group(2)))
        if match.group(3):
            pieces.append(("trim_next", ""))
        position = match.end()
    tail = template[position:]
    if pieces and pieces[-1][0] == "trim_next":
        pieces.pop()
        tail = tail.lstrip(" \t\r\n")
    pieces.append(("text", tail))

    out: list[str] = []
    index = 0
    while index < len(pieces):
        kind, value = pieces[index]
        if kind == "text":
            out.append(value)
            index += 1
            continue
        if value == "range .Messages":
            depth, body_end = 1, index + 1
            while depth:
                if body_end >= len(pieces):
                    raise ValueError("{{ range }} without {{ end }}")
                if pieces[body_end] == ("action", "range .Messages"):
                    raise ValueError("nested {{ range }} is not in the supported subset")
                if pieces[body_end] == ("action", "end"):
                    depth -= 1
                body_end += 1
            body = pieces[index + 1:body_end - 1]
            for message in messages:
                for body_kind, body_value in body:
                    if body_kind == "text":
                        out.append(body_value)
                    elif body_value == ".Role":
                        out.append(message["role"])
                    elif body_value == ".Content":
                        out.append(message["content"])
                    else:
                        raise ValueError(f"{{{{ {body_value} }}}} is not in the supported subset")
            index = body_end
            continue
        raise ValueError(f"{{{{ {value} }}}} is not in the supported subset (outside range)")
    return "".join(out)


@dataclass(frozen=True)
class ChatFamily:
    """A chat layout we can write as an Ollama TEMPLATE (Go syntax), with its end-of-turn stops."""

    name: str
    template: str
    stops: tuple[str, ...]


CHAT_FAMILIES = (
    # ChatML: Qwen family and the tiny model.
    ChatFamily("chatml",
               "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
               ("<|im_end|>", "<|im_start|>")),
    # Llama 3 / 3.x without the date preamble (the <|begin_of_text|> BOS is added by the tokenizer).
    ChatFamily("llama3",
               "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
               "<|start_header_id|>assistant<|end_header_id|>\n\n",
               ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>")),
)

# Conversations the chat template is probed with: the tokenizer's rendering must equal the Go
# template's (after a leading BOS, which llama.cpp adds itself) for every one of them.
PROBE_TURNS = [{"role": "user", "content": "Hello there."}, {"role": "assistant", "content": "Hi! How can I help?"},
               {"role": "user", "content": "What is 2+2?"}]
PROBE_SYSTEM = {"role": "system", "content": "You answer briefly."}
_MARK = "\u2063SYSTEM\u2063"


@dataclass(frozen=True)
class OllamaChat:
    family: ChatFamily
    default_system: str | None  # what the template says when the conversation has no system message


def render_with_tokenizer(tokenizer, messages: list[dict]) -> str:
    """The prompt text the tokenizer's chat template makes (generation prompt on, leading BOS removed)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = getattr(tokenizer, "bos_token", None)
    return text[len(bos):] if bos and text.startswith(bos) else text


def identify_chat(tokenizer) -> OllamaChat | None:
    """Which of CHAT_FAMILIES the tokenizer's chat template renders exactly, and its default system
    prompt; None when none does. Judged by what the template renders, not by its source text."""
    try:
        with_system = render_with_tokenizer(tokenizer, [PROBE_SYSTEM, *PROBE_TURNS])
        without_system = render_with_tokenizer(tokenizer, PROBE_TURNS)
    except Exception:  # a template may refuse a role (system) or need variables we do not pass
        return None
    for family in CHAT_FAMILIES:
        if render_go_template(family.template, [PROBE_SYSTEM, *PROBE_TURNS]) != with_system:
            continue
        if render_go_template(family.template, PROBE_TURNS) == without_system:
            return OllamaChat(family, None)
        before, after = render_go_template(family.template, [{"role": "system", "content": _MARK}, *PROBE_TURNS]).split(_MARK)
        if without_system.startswith(before) and without_system.endswith(after):
            default = without_system[len(before):len(without_system) - len(after)]
            if render_go_template(family.template, [{"role": "system", "content": default}, *PROBE_TURNS]) == without_system:
                return OllamaChat(family, default)
    return None


# ---------------------------------------------------------------- the Modelfile


def generation_parameters(model_dir: Path | None, context_length: int | None) -> list[tuple[str, str]]:
    """Ollama PARAMETER lines from the model's generation_config.json (greedy stays greedy) and the context."""
    config = {}
    if model_dir is not None and (Path(model_dir) / "generation_config.json").is_file():
        config = json.loads((Path(model_dir) / "generation_config.json").read_text(encoding="utf-8"))
    params: list[tuple[str, str]] = []
    if config and not config.get("do_sample", False):
        params.append(("temperature", "0"))
    else:
        params.append(("temperature", _number(config.get("temperature", DEFAULT_TEMPERATURE))))
        for ours, theirs in (("top_p", "top_p"), ("top_k", "top_k"), ("min_p", "min_p")):
            if config.get(theirs) is not None:
                params.append((ours, _number(config[theirs])))
    if config.get("repetition_penalty") not in (None, 1.0):
        params.append(("repeat_penalty", _number(config["repetition_penalty"])))
    if context_length:
        params.append(("num_ctx", str(int(context_length))))
    return params


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def end_tokens(tokenizer, model_dir: Path | None) -> list[str]:
    """The tokenizer's EOS and the generation config's eos ids, as text."""
    found = [tokenizer.eos_token] if getattr(tokenizer, "eos_token", None) else []
    config_file = Path(model_dir) / "generation_config.json" if model_dir is not None else None
    if config_file is not None and config_file.is_file():
        ids = json.loads(config_file.read_text(encoding="utf-8")).get("eos_token_id")
        for token_id in ids if isinstance(ids, list) else [ids] if ids is not None else []:
            found.append(tokenizer.convert_ids_to_tokens(int(token_id)))
    return [token for token in found if token]


def modelfile_text(gguf_name: str, chat: OllamaChat | None, stops: list[str], parameters: list[tuple[str, str]],
                   adapter_name: str | None = None) -> str:
    lines = [
        "# Ollama: `ollama create NAME -f Modelfile`, then `ollama run NAME` (written by the fine-tuning workbench).",
        f"FROM ./{gguf_name}",
    ]
    if adapter_name:
        lines.append(f"ADAPTER ./{adapter_name}")
    if chat is not None:
        lines.append(f'TEMPLATE """{chat.family.template}"""')
        if chat.default_system:
            lines.append(f'SYSTEM """{chat.default_system}"""')
    for stop in dict.fromkeys(stops):  # in order, once each
        if '"' not in stop and "\n" not in stop:
            lines.append(f'PARAMETER stop "{stop}"')
    lines += [f"PARAMETER {name} {value}" for name, value in parameters]
    return "\n".join(lines) + "\n"


def write_modelfile(out_dir: Path, gguf_name: str, tokenizer, model_dir: Path | None, context_length: int | None,
                    adapter_name: str | None = None, progress: Progress | None = None) -> dict:
    """Write out_dir/Modelfile for the GGUF beside it; returns {"path", "family", "warning"}."""
    chat = identify_chat(tokenizer)
    stops = [*(chat.family.stops if chat else ()), *end_tokens(tokenizer, model_dir)]
    text = modelfile_text(gguf_name, chat, stops, generation_parameters(model_dir, context_length), adapter_name)
    path = Path(out_dir) / "Modelfile"
    atomic_write_text(path, text, SHARED_FILE_MODE)  # read by ollama, often as another user
    (progress or log_progress)(t("gguf.progress_modelfile", path=str(path)))
    return {"path": str(path), "family": chat.family.name if chat else None, "warning": None if chat else "gguf.template_unknown"}


def parse_modelfile(text: str) -> dict:
    """FROM, ADAPTER, TEMPLATE, SYSTEM and PARAMETER lines of a Modelfile (the forms modelfile_text writes)."""
    found: dict = {"PARAMETER": []}
    for match in re.finditer(r'^(FROM|ADAPTER|TEMPLATE|SYSTEM|PARAMETER)[ \t]+("""(.*?)"""|[^\n]*)$', text, re.M | re.S):
        command, raw, quoted = match.group(1), match.group(2), match.group(3)
        value = quoted if quoted is not None else raw.strip()
        if command == "PARAMETER":
            name, _, rest = value.partition(" ")
            rest = rest.strip()
            found["PARAMETER"].append((name, rest[1:-1] if rest.startswith('"') and rest.endswith('"') else rest))
        else:
            found[command] = value
    return found
