"""The forgetting guard: perplexity on general text (not the docs) with the adapter off and on, and
general items that training can mix in (chat items for sft, running text for cpt).

The general text must be there offline on every machine, so it is taken from what is installed:
  English  docstrings of Python standard-library modules (inspect.getdoc; PSF licence), prose
           paragraphs only, in a fixed module order. Docstrings change a little between Python
           versions, so the sample carries a hash: compare figures measured on the same sample.
  Chinese  the sentences of gradio's zh-CN interface translation (gradio is a requirement of the
           app; Apache-2.0): about 30 UI messages, ~600 characters. Short and not long prose, but
           natural Chinese written by people; the only Chinese text an installed requirement ships
           (searched: site-packages holds no other Chinese prose). Absent when gradio has no zh-CN file.
The measured sample and the mixed-in items come from different modules, so mixing general items
into training cannot make the guard look better than it is. torch is imported inside functions.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import math
import random
import re
from functools import lru_cache
from pathlib import Path

from tools.core.i18n import t
from train.data import IGNORE_INDEX, pad_batch
from train.inference import adapter_enabled

DEFAULT_MARGIN = 0.10
GENERAL_BLOCK_TOKENS = 256
SAMPLE_MAX_CHARS = {"en": 12_000, "zh": 4_000}

# Modules whose docstrings form the measured English sample ...
SAMPLE_MODULES = (
    "abc", "argparse", "base64", "bisect", "calendar", "collections", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "enum", "fnmatch", "fractions", "functools",
    "glob", "gzip", "hashlib", "heapq", "hmac", "html", "inspect", "io", "ipaddress",
)
# ... and, disjoint from them, those that become general training items.
MIX_MODULES = (
    "json", "logging", "pathlib", "pickle", "queue", "random", "sched", "secrets", "shlex", "shutil",
    "sqlite3", "statistics", "string", "subprocess", "tempfile", "textwrap", "threading", "timeit",
    "tokenize", "traceback", "typing", "unittest", "uuid", "warnings", "weakref", "zipfile",
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_BACKTICK = re.compile(r"`([^`]*)`")


def _prose(paragraph: str) -> str | None:
    """A docstring paragraph joined to one line when it reads as prose, else None."""
    lines = paragraph.strip().splitlines()
    if not lines or any(line.startswith((" ", "\t", ">>>", "...")) for line in lines):
        return None  # code, doctest or an indented parameter list
    text = " ".join(line.strip() for line in lines)
    letters = sum(ch.isalpha() or ch == " " for ch in text)
    if len(text) < 80 or letters / len(text) < 0.85 or ":" in text[:40]:
        return None
    return text


def _module_docstrings(name: str) -> list[tuple[str, str]]:
    """(qualified name, docstring) of a module and its public functions and classes, in name order."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return []
    found = [(name, inspect.getdoc(module) or "")]
    for attr in sorted(vars(module)):
        value = getattr(module, attr, None)
        if attr.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
            found.append((f"{name}.{attr}", inspect.getdoc(value) or ""))
    return found


def _take(paragraphs, max_chars: int) -> list[str]:
    taken, size = [], 0
    for text in paragraphs:
        if size + len(text) > max_chars:
            break
        taken.append(text)
        size += len(text)
    return taken


@lru_cache(maxsize=4)
def english_sample(max_chars: int = SAMPLE_MAX_CHARS["en"]) -> tuple[str, ...]:
    """Prose paragraphs from SAMPLE_MODULES' docstrings, deterministic for a Python version."""
    def paragraphs():
        seen = set()
        for module in SAMPLE_MODULES:
            for _, doc in _module_docstrings(module):
                for paragraph in doc.split("\n\n"):
                    text = _prose(paragraph)
                    if text and text not in seen:
                        seen.add(text)
                        yield text
    return tuple(_take(paragraphs(), max_chars))


def gradio_zh_file() -> Path | None:
    """gradio's zh-CN translation bundle (its file name carries a build hash)."""
    try:
        import gradio
    except ImportError:
        return None
    assets = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
    candidates = sorted(assets.glob("zh-CN-*.js")) if assets.is_dir() else []
    return candidates[0] if candidates else None


@lru_cache(maxsize=4)
def chinese_sample(max_chars: int = SAMPLE_MAX_CHARS["zh"]) -> tuple[str, ...]:
    """gradio's zh-CN UI strings of at least 6 Chinese characters (without placeholders), in file order."""
    path = gradio_zh_file()
    if path is None:
        return ()
    sentences, seen = [], set()
    for value in _BACKTICK.findall(path.read_text(encoding="utf-8")):
        text = value.strip()
        if len(_CJK.findall(text)) >= 6 and "{" not in text and text not in seen:
            seen.add(text)
            sentences.append(text)
    return tuple(_take(sentences, max_chars))


def general_sample() -> dict[str, list[str]]:
    """lang -> texts of the general sample (Chinese only when its source is installed)."""
    sample = {"en": list(english_sample())}
    zh = list(chinese_sample())
    if zh:
        sample["zh"] = zh
    return sample


def sample_label(sample: dict[str, list[str]]) -> str:
    """Names the sources and a short hash of the texts, so figures on different samples are not compared."""
    digest = hashlib.sha1("\x00".join(t for lang in sorted(sample) for t in sample[lang]).encode("utf-8")).hexdigest()[:8]
    sources = {"en": "python-stdlib-docstrings", "zh": "gradio-zh-CN-ui"}
    return "+".join(sources[lang] for lang in sorted(sample)) + f"@{digest}"


# ---------------------------------------------------------------- perplexity


def text_perplexity(model, tokenizer, texts: list[str], block_tokens: int = GENERAL_BLOCK_TOKENS, batch_size: int = 8) -> dict:
    """Perplexity of plain texts (no chat template): each text cut to `block_tokens`, every token after the first
    scored. `per_text`: (summed loss, tokens) of each text scored, for intervals over the texts."""
    import torch
    import torch.nn.functional as F

    rows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"][:block_tokens]  # cut below
        if len(ids) >= 2:
            rows.append({"input_ids": ids, "labels": ids})
    if not rows:
        return {"loss": float("nan"), "perplexity": float("nan"), "tokens": 0, "per_text": []}
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    per_text: list[tuple[float, int]] = []
    for start in range(0, len(rows), batch_size):
        batch = {k: v.to(device) for k, v in pad_batch(rows[start:start + batch_size], pad_id).items()}
        with torch.inference_mode():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        shifted, targets = logits[:, :-1, :].float(), batch["labels"][:, 1:]
        losses = F.cross_entropy(shifted.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none")
        counts = (targets != IGNORE_INDEX).sum(dim=1)
        per_text += [(float(row_loss), int(row_count)) for row_loss, row_count in zip(losses.sum(dim=1), counts)]
    total, count = sum(loss for loss, _ in per_text), sum(n for _, n in per_text)
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": count, "per_text": per_text}


def rise_interval(base: list[tuple[float, int]], tuned: list[tuple[float, int]], resamples: int = 2000,
                  seed: int = 0, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile-bootstrap interval of the perplexity rise (tuned/base - 1) over the sample's texts: the
    noise band of the figure from which texts happen to be in the sample. The two lists are aligned by text."""
    import numpy as np

    if not base or len(base) != len(tuned):
        return None, None
    base_loss = np.array([loss for loss, _ in base])
    tuned_loss = np.array([loss for loss, _ in tuned])
    tokens = np.array([n for _, n in base], dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size=(resamples, len(base)))
    weight = tokens[picks].sum(axis=1)
    rises = np.exp((tuned_loss[picks].sum(axis=1) - base_loss[picks].sum(axis=1)) / weight) - 1
    tail = (1 - level) / 2
    low, high = np.quantile(rises, [tail, 1 - tail])
    return float(low), float(high)


def forgetting_figure(model, tokenizer, margin: float = DEFAULT_MARGIN, sample: dict[str, list[str]] | None = None,
                      batch_size: int = 8, seed: int = 0) -> dict:
    """General perplexity with the adapter off (base) and on (tuned), per language and over all tokens.

    Returns the fields of schema.exam.ForgettingFigure: `rise` is tuned/base - 1 of the token-weighted
    perplexity with its 95 % bootstrap band over the sample's texts (rise_low, rise_high); `warning` is True
    only when the whole band lies above `margin`: a rise inside the sample's own noise is not called forgetting.
    """
    from datetime import datetime, timezone

    sample = sample if sample is not None else general_sample()
    by_lang, totals = {}, {"base": [0.0, 0], "tuned": [0.0, 0]}
    per_text: dict[str, list[tuple[float, int]]] = {"base": [], "tuned": []}
    for lang, texts in sorted(sample.items()):
        by_lang[lang] = {}
        for variant, enabled in (("base", False), ("tuned", True)):
            with adapter_enabled(model, enabled):
                result = text_perplexity(model, tokenizer, texts, batch_size=batch_size)
            by_lang[lang][variant] = round(result["perplexity"], 4)
            per_text[variant] += result["per_text"]
            if result["tokens"]:
                totals[variant][0] += result["loss"] * result["tokens"]
                totals[variant][1] += result["tokens"]
    ppl = {v: math.exp(min(nll / n, 50.0)) if n else None for v, (nll, n) in totals.items()}
    rise = ppl["tuned"] / ppl["base"] - 1 if ppl["base"] and ppl["tuned"] else None
    low, high = rise_interval(per_text["base"], per_text["tuned"], seed=seed)
    return {
        "sample": sample_label(sample),
        "tokens": totals["base"][1],
        "texts": len(per_text["base"]),
        "base_perplexity": round(ppl["base"], 4) if ppl["base"] else None,
        "tuned_perplexity": round(ppl["tuned"], 4) if ppl["tuned"] else None,
        "by_lang": by_lang,
        "rise": round(rise, 4) if rise is not None else None,
        "rise_low": round(low, 4) if low is not None else None,
        "rise_high": round(high, 4) if high is not None else None,
        "margin": margin,
        "warning": low is not None and low > margin,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------- general items to mix into training


@lru_cache(maxsize=2)
def general_items() -> tuple[dict, ...]:
    """Chat items 'What does `module.name` do?' -> the first prose paragraph of its docstring (MIX_MODULES)."""
    items = []
    for module in MIX_MODULES:
        for qualified, doc in _module_docstrings(module):
            answer = next((p for p in (_prose(part) for part in doc.split("\n\n")) if p), None)
            if answer is None and doc:
                first = " ".join(doc.split("\n\n")[0].split())
                answer = first if len(first) >= 40 else None
            if answer:
                question = f"What does the Python module `{qualified}` do?" if qualified == module else f"What does `{qualified}` do in Python?"
                items.append({"id": f"general-{qualified}", "messages": [
                    {"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
    return tuple(items)


@lru_cache(maxsize=2)
def general_texts() -> tuple[dict, ...]:
    """Running-text items for continued pre-training (cpt's general_mix): the prose paragraphs of each
    MIX_MODULES docstring (the module's and each public function's and class's) as one text. From the same
    modules as general_items, so the measured sample stays out of training here too."""
    items = []
    for module in MIX_MODULES:
        for qualified, doc in _module_docstrings(module):
            paragraphs = [p for p in (_prose(part) for part in doc.split("\n\n")) if p]
            if paragraphs:
                items.append({"id": f"general-text-{qualified}", "text": "\n\n".join(paragraphs),
                              "source": f"python:{qualified}", "context": f"Python {qualified}", "kind": "general"})
    return tuple(items)


def general_mix_count(train_items: int, share: float) -> int:
    """General items to add so that they make up `share` of the mixed training set."""
    if share <= 0 or train_items <= 0:
        return 0
    return max(1, round(train_items * share / (1 - share)))


def mix_general_items(items: list[dict], share: float, seed: int = 0) -> list[dict]:
    """`items` plus general items making up `share` of the result, shuffled in with a seeded order.

    The same items, share and seed give the same list (a resumed run sees the data it started with).
    The general pool is reused in turn when more are needed than it holds.
    """
    return mix_pool_items(items, list(general_items()), share, seed)


def mix_pool_items(items: list[dict], pool: list[dict], share: float, seed: int = 0) -> list[dict]:
    """`items` plus items drawn from `pool` making up `share` of the result, shuffled in with a seeded order;
    the pool is reused in turn (ids get a #n suffix) when more are needed than it holds."""
    count = general_mix_count(len(items), share)
    if not count or not pool:
        return list(items)
    rng = random.Random(seed)
    order = pool[:]
    rng.shuffle(order)
    chosen = [dict(order[i % len(order)], id=f"{order[i % len(order)]['id']}#{i // len(order)}") for i in range(count)]
    mixed = list(items) + chosen
    rng.shuffle(mixed)
    return mixed


def forgetting_lines(figure, lang: str | None = None) -> list[str]:
    """The forgetting figure as message lines: the figure, per language, then the verdict (a warning with advice)."""
    if figure is None:
        return []
    data = figure if isinstance(figure, dict) else figure.model_dump()

    def num(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    def percent(value) -> str:
        return "-" if value is None else f"{100 * value:+.1f}%"

    rise = percent(data.get("rise"))
    margin = f"{100 * data.get('margin', 0):.0f}%"
    lines = [t("exam.forget.line", lang, base=num(data.get("base_perplexity")), tuned=num(data.get("tuned_perplexity")),
               rise=rise, sample=data.get("sample", ""), tokens=data.get("tokens", 0))]
    lines += [t("exam.forget.by_lang", lang, language=code, base=num(v.get("base")), tuned=num(v.get("tuned")))
              for code, v in sorted((data.get("by_lang") or {}).items())]
    low, high = data.get("rise_low"), data.get("rise_high")
    if low is not None and high is not None:
        lines.append(t("exam.forget.band", lang, texts=data.get("texts", 0), low=percent(low), high=percent(high)))
    if data.get("warning"):
        lines.append(t("exam.forget.warning", lang, rise=rise, margin=margin))
    elif data.get("rise") is not None and data["rise"] > data.get("margin", 0):
        lines.append(t("exam.forget.noise", lang, rise=rise, margin=margin, low=percent(low), high=percent(high)))
    else:
        lines.append(t("exam.forget.ok", lang, margin=margin))
    return lines
