"""Redaction: secrets and personal data replaced by placeholders ([REDACTED:email]) everywhere the
workbench keeps a copy of a dataset's text, so that no old version still holds them.

Covered: the journal, all of its history (`DatasetStore.rewrite_history` applies `redact_record` to
every record of every version in one atomic rewrite and appends a "redact" version; generation
events and metadata are walked too, a failed unit's detail may quote a reply), the judge's score
sidecar (its reasons may quote the answer), and the copies training runs keep of the dataset: every
JSON, JSON-lines, Markdown, log and text file of workdir/training/<run>/ whose config.json names the
dataset (data/train.jsonl, data/eval.jsonl, validation_samples.jsonl, eval_report.json/.md, exams/,
worker.log), checkpoints, adapters and TensorBoard files excepted. Not covered, on purpose: exports
(files the user took out of the workbench) and the doc set itself (the source; fix it there). A
model trained on the secret may have learnt it: that needs training again and is only reported.
"""

from __future__ import annotations

import json
from pathlib import Path

from tools.core.workdir import atomic_write_text
from tools.quality.secrets import candidate_texts, find_sensitive, might_hold, redact_text, redact_value

RUN_TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".log", ".txt")
RUN_SKIPPED_FOLDERS = ("adapter", "tensorboard")


def redacted_messages(item: dict) -> list[dict] | None:
    """The item's messages with every sensitive span replaced (tool calls' arguments too); None when there is
    nothing to redact."""
    messages = item.get("messages") or []
    redacted = [_with_redacted_calls({**message, "content": redact_text(message.get("content") or "")}) for message in messages]
    if all(new["content"] == (old.get("content") or "") and new.get("tool_calls") == old.get("tool_calls")
           for new, old in zip(redacted, messages)):
        return None
    return redacted


def redaction_plan(items: list[dict]) -> dict[str, list[dict]]:
    """item id -> redacted messages, for every item that holds something to redact. The texts that might
    hold a secret are picked for all items at once (candidate_texts); only those are searched."""
    located = [(position, index) for position, item in enumerate(items) for index in range(len(item.get("messages") or []))]
    texts = [items[position]["messages"][index].get("content") or "" for position, index in located]
    redacted: dict[int, dict[int, str]] = {}
    for candidate in candidate_texts(texts):
        new = redact_text(texts[candidate], screened=True)
        if new != texts[candidate]:
            position, index = located[candidate]
            redacted.setdefault(position, {})[index] = new
    plan = {}
    for position, changes in redacted.items():
        item = items[position]
        plan[item["id"]] = [{**message, "content": changes.get(index, message.get("content") or "")}
                            for index, message in enumerate(item["messages"])]
    for item in items:  # the arguments of tool calls (few items have them): a key passed to a function is a secret too
        messages = plan.get(item["id"], item.get("messages") or [])
        if any(message.get("tool_calls") for message in messages):
            calls_redacted = [_with_redacted_calls(message) for message in messages]
            if any(new is not old for new, old in zip(calls_redacted, messages)):
                plan[item["id"]] = calls_redacted
    return plan


def redacted_arguments(arguments: str) -> str:
    """A call's arguments (JSON text of an object) with every secret in its values replaced, still valid JSON."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return redact_text(arguments)
    redacted = redact_value(parsed)
    return arguments if redacted is parsed else json.dumps(redacted, ensure_ascii=False)


def _with_redacted_calls(message: dict) -> dict:
    calls = message.get("tool_calls") or []
    new = [{**call, "function": {**call["function"], "arguments": redacted_arguments(call["function"]["arguments"])}}
           for call in calls]
    if all(a["function"]["arguments"] == b["function"]["arguments"] for a, b in zip(new, calls)):
        return message
    return {**message, "tool_calls": new}


def redact_record(record: dict) -> dict:
    """A journal record (an item of any version, a deletion, meta, an event) with every string in it redacted."""
    return redact_value(record)


def count_sensitive(items: list[dict]) -> int:
    return sum(len(find_sensitive(text)) for item in items for message in item.get("messages") or []
               for text in [message.get("content") or ""] + [call["function"]["arguments"] for call in message.get("tool_calls") or []])


def redact_dataset(name: str, store, scores=None, training_root: Path | None = None) -> dict:
    """Redact dataset `name` everywhere (see the module docstring); returns what was done:
    {items, spans, version, score_lines, run_files: [paths]}. Nothing is written when nothing is found."""
    view = store.load(name)
    plan = redaction_plan(list(view.items.values()))
    spans = count_sensitive([view.items[item_id] for item_id in plan])
    summary = {"items": len(plan), "spans": spans, "version": None, "score_lines": 0, "run_files": []}
    # The history can hold secrets the current items no longer show (an edited or deleted item):
    # the journal is rewritten whenever any record of it changes, not only when current items do.
    changed = {"records": 0}

    def transform(record: dict) -> dict:
        new = redact_record(record)
        if new is not record:
            changed["records"] += 1
        return new

    if plan or _journal_needs_redaction(store.path(name)):
        summary["version"] = store.rewrite_history(name, transform, f"redacted {spans} secrets in {len(plan)} items")
    summary["history_records"] = changed["records"]
    if scores is not None:
        summary["score_lines"] = _redact_json_lines_file(scores.path(name), lock=scores)
    if training_root is not None:
        summary["run_files"] = [str(path) for path in redact_runs(name, Path(training_root))]
    return summary


def _journal_needs_redaction(path: Path) -> bool:
    """Whether any record of the journal holds something to redact. Records are read as JSON: in the raw
    line a quoted value is escaped (password=\\"...\\") and a pattern would not see it as the text does.
    A line with no trigger and no long run (escaping adds none and hides none) is not parsed."""
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            if not might_hold(line):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if find_sensitive(line):  # a torn line: look at it as text
                    return True
                continue
            if redact_value(record) is not record:
                return True
    return False


def _redact_json_lines_file(path: Path, lock=None) -> int:
    """Rewrite a JSON-lines file with its strings redacted (atomically; only when something changed);
    returns the number of changed lines. `lock`: a ScoreStore whose sidecar lock is held meanwhile."""
    if not path.exists():
        return 0
    held = lock._held(path.name[1: -len(".scores.jsonl")]) if lock is not None else None
    if held is not None:
        held.__enter__()
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
        changed = 0
        out = []
        for line in lines:
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    new_line = redact_text(line)  # a torn line: redact it as text
                else:
                    new = redact_value(record)
                    new_line = line if new is record else json.dumps(new, ensure_ascii=False, separators=(",", ":"))
                changed += new_line != line
                out.append(new_line)
            else:
                out.append(line)
        if changed:
            atomic_write_text(path, "\n".join(out))
        return changed
    finally:
        if held is not None:
            held.__exit__(None, None, None)


def runs_of_dataset(name: str, training_root: Path) -> list[Path]:
    """Run folders whose config.json says they trained on dataset `name`."""
    runs = []
    for folder in sorted(Path(training_root).iterdir()) if Path(training_root).is_dir() else []:
        config = folder / "config.json"
        if not folder.is_dir() or not config.is_file():
            continue
        try:
            if json.loads(config.read_text(encoding="utf-8")).get("dataset") == name:
                runs.append(folder)
        except (OSError, json.JSONDecodeError):
            continue
    return runs


def redact_runs(name: str, training_root: Path) -> list[Path]:
    """Redact the dataset's copies in its training runs; returns the files that changed."""
    changed = []
    for run in runs_of_dataset(name, training_root):
        for path in sorted(run.rglob("*")):
            relative = path.relative_to(run).parts
            if (not path.is_file() or path.is_symlink() or path.suffix.lower() not in RUN_TEXT_SUFFIXES
                    or relative[0] in RUN_SKIPPED_FOLDERS or relative[0].startswith("checkpoint-")):
                continue
            if _redact_run_file(path):
                changed.append(path)
    return changed


def _redact_run_file(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix.lower() == ".jsonl":
        return _redact_json_lines_file(path) > 0
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if data is not None:
            new = redact_value(data)
            if new is data:
                return False
            atomic_write_text(path, json.dumps(new, ensure_ascii=False, indent=2))
            return True
    new_text = redact_text(text)
    if new_text == text:
        return False
    atomic_write_text(path, new_text)
    return True
