"""What the Dataset management page shows and does, as plain functions: item rows with flags and
scores, filters, the item view (conversation and source slice), the message form, a preference item's
rejected answer or label, histograms, bulk actions, versions and export. No gradio here: the tab module
turns these into updates."""

from __future__ import annotations

import json
from pathlib import Path

from db.dataset_journal import DatasetView
from db.dataset_store import diff_rows
from schema.dataset import first_exchange, preference_kind
from schema.tool_calls import TOOL_ROLE, answer_text
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.quality.checks import doc_context_for, findings_by_item, load_result
from tools.quality.kinds import FLAG_KINDS, KINDS, SEVERITIES
from tools.quality.redact import redact_dataset, redaction_plan
from tools.quality.text import fast_tokens

# Message boxes of the item form; a conversation with more messages is edited in the JSON view.
MESSAGE_SLOTS = 12
ROLES = ("system", "user", "assistant", "tool")
# What a message keeps beside its role and content through an edit in the form, per role (the form edits
# only role and text: a call, a result's call id or a turn's weight stays with its message).
KEPT_BY_ROLE = {"assistant": ("tool_calls", "weight"), TOOL_ROLE: ("tool_call_id", "name")}
SORTS = ("none", "score_desc", "score_asc")
SPLITS = ("all", "train", "eval")
BULK_ACTIONS = ("delete_flagged", "delete_below", "redact", "move_leaks")
LEAK_KINDS = ("leak_exact", "leak_near")
HISTOGRAM_BINS = 10
ANSWER_TEXT_WIDTH = 600  # characters of a question/answer shown in a table cell (wrapped)


# ---------------------------------------------------------------- flags and scores


def check_result(store, name: str) -> dict | None:
    """The saved check result of `name` (a stale one too, marked), or None when it was never checked."""
    return load_result(store, name, allow_stale=True)


def flags_by_item(result: dict | None) -> dict[str, list[str]]:
    """item id -> the kinds of its findings that flag it (info findings like "no source" do not)."""
    if not result:
        return {}
    flagged = {}
    for item_id, findings in findings_by_item(result).items():
        kinds = list(dict.fromkeys(f["kind"] for f in findings if f["kind"] in FLAG_KINDS))
        if kinds:
            flagged[item_id] = kinds
    return flagged


def item_scores(scores, name: str, items: dict[str, dict]) -> dict[str, float]:
    """item id -> overall judge score, for the items whose score is of their current text."""
    result = {}
    for item_id, (status, _reason, record) in scores.statuses(name, items).items():
        if status == "scored" and record is not None and record.get("overall") is not None:
            result[item_id] = float(record["overall"])
    return result


def parse_score(value, field: str) -> float | None:
    """A score bound from the page: empty -> None, else a number from 0 to 10."""
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field=field, value=value) from None
    if not 0 <= number <= 10:
        raise UserError("error.number_range", field=field, low=0, high=10, value=value)
    return number


def select_items(view: DatasetView, flags: dict[str, list[str]], scores: dict[str, float], kinds=None,
                 min_score=None, max_score=None, sort: str = "none") -> list[dict]:
    """The items that pass the filters, in dataset order or sorted by score (unscored last).
    `kinds`: keep items flagged with any of them; a score bound drops unscored items."""
    kinds = set(kinds or ())
    chosen = []
    for item_id, item in view.items.items():
        if kinds and not kinds.intersection(flags.get(item_id, ())):
            continue
        score = scores.get(item_id)
        if (min_score is not None or max_score is not None) and score is None:
            continue
        if min_score is not None and score < min_score:
            continue
        if max_score is not None and score > max_score:
            continue
        chosen.append(item)
    if sort in ("score_desc", "score_asc"):
        sign = -1 if sort == "score_desc" else 1
        chosen.sort(key=lambda item: (item["id"] not in scores, sign * scores.get(item["id"], 0.0)))
    return chosen


def _clip(text: str, width: int) -> str:
    text = text.strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def item_rows(items: list[dict], flags: dict[str, list[str]], scores: dict[str, float], lang: str | None = None,
              preference: bool = False) -> list[list]:
    """Table rows: id, question, answer, flags, score (wrapped in the page, so kept long). With `preference`,
    the answer is the last one (the chosen answer, or the one a label judges) and the rejected answer or the
    label follows it."""
    rows = []
    for item in items:
        question, answer = first_exchange(item["messages"])
        kinds = ", ".join(t(f"quality.kind.{kind}", lang) for kind in flags.get(item["id"], ()))
        score = scores.get(item["id"])
        answers = [_clip(answer, ANSWER_TEXT_WIDTH)]
        if preference:
            answers = [_clip(item["messages"][-1]["content"], ANSWER_TEXT_WIDTH), _clip(preference_cell(item, lang), ANSWER_TEXT_WIDTH)]
        rows.append([item["id"], _clip(question, ANSWER_TEXT_WIDTH), *answers, kinds, "-" if score is None else f"{score:g}"])
    return rows


# ---------------------------------------------------------------- preference items (schema.dataset)


def has_preference(items) -> bool:
    """Whether any item carries a rejected answer or a label (the page then shows them beside the answers)."""
    return any(item.get("rejected") or isinstance(item.get("label"), bool) for item in items)


def kind_label(items, lang: str | None = None) -> str:
    """What a dataset holds, in words: conversations, preference (pairs) or preference (labels)."""
    return t(f"prefformats.kind.{preference_kind(list(items)) or 'plain'}", lang)


def label_word(label: bool, lang: str | None = None) -> str:
    return t(f"prefformats.label.{'true' if label else 'false'}", lang)


def preference_cell(item: dict, lang: str | None = None) -> str:
    """The rejected answer, or the label in words ("" for a plain item)."""
    if item.get("rejected"):
        return item["rejected"]
    return label_word(item["label"], lang) if isinstance(item.get("label"), bool) else ""


def preference_markdown(item: dict, lang: str | None = None) -> str:
    """The rejected answer (or the label) under the conversation, whose last answer is the chosen one."""
    if item.get("rejected"):
        return f"\n\n---\n\n**✗ {t('prefformats.view_rejected', lang)}**\n\n{item['rejected']}"
    if isinstance(item.get("label"), bool):
        return f"\n\n---\n\n**{t('prefformats.view_label', lang, label=label_word(item['label'], lang))}**"
    return ""


def preference_fields(item: dict | None) -> tuple[tuple[bool, str], tuple[bool, str | None]]:
    """(shown, text) of the rejected-answer box and (shown, "true" | "false") of the label choice for `item`:
    shown only for the preference key it has."""
    item = item or {}
    rejected, label = item.get("rejected"), item.get("label")
    return (bool(rejected), rejected or ""), (isinstance(label, bool), str(label).lower() if isinstance(label, bool) else None)


def preference_from_form(stored: dict, rejected, label) -> dict | None:
    """The preference keys to save with an edit of `stored` (DatasetStore.update_item's `preference`): the
    rejected answer or the label from the form for the key the item has; None (kept as they are) for a plain item."""
    if "rejected" in stored:
        return {"rejected": rejected if isinstance(rejected, str) else ""}
    if "label" in stored:
        return {"label": {"true": True, "false": False}.get(str(label).lower(), label)}
    return None


def page_of(items: list, page, page_size: int) -> tuple[list, int, int]:
    """(items of the page, page number clamped, page count)."""
    pages = max(1, -(-len(items) // page_size))
    page = min(max(1, int(page or 1)), pages)
    start = (page - 1) * page_size
    return items[start:start + page_size], page, pages


# ---------------------------------------------------------------- quality summary and plots


def summary_rows(result: dict | None, lang: str | None = None) -> list[list]:
    """The check's findings per kind: kind, severity, count (most severe first)."""
    if not result:
        return []
    by_kind = result["summary"]["by_kind"]
    ordered = sorted(by_kind, key=lambda kind: (SEVERITIES.index(KINDS[kind].severity), -by_kind[kind]))
    return [[t(f"quality.kind.{kind}", lang), t(f"quality.severity.{KINDS[kind].severity}", lang), by_kind[kind]]
            for kind in ordered]


def summary_line(result: dict | None, name: str, lang: str | None = None) -> str:
    if not result:
        return t("dtab.not_checked", lang, name=name)
    line = t("dtab.check_line", lang, flagged=result["summary"]["flagged_items"], items=result["stats"]["items"],
             at=result.get("checked_at", "?"))
    if result.get("stale"):
        line += " " + t("dtab.check_stale", lang)
    return line


def histogram(values: list[float], low: float, high: float, bins: int = HISTOGRAM_BINS, integer: bool = False) -> list[tuple[str, int]]:
    """(bin label, count) for `bins` equal bins from `low` to `high` (the last bin holds `high`)."""
    if high <= low:
        high = low + 1
    width = (high - low) / bins
    counts = [0] * bins
    for value in values:
        index = int((value - low) / width)
        counts[min(max(index, 0), bins - 1)] += 1
    labels = []
    for index in range(bins):
        start, end = low + index * width, low + (index + 1) * width
        labels.append(f"{round(start)}–{round(end)}" if integer else f"{start:g}–{end:g}")
    return list(zip(labels, counts))


def score_histogram(scores: dict[str, float]) -> list[tuple[str, int]]:
    return histogram(list(scores.values()), 0, 10)


def answer_length_histogram(items) -> list[tuple[str, int]]:
    """Answer lengths in estimated tokens (the checks' own estimate), in bins up to the longest."""
    lengths = [fast_tokens(answer_text(m)) for item in items for m in item["messages"] if m["role"] == "assistant"]
    top = max(lengths, default=0)
    step = max(1, -(-top // HISTOGRAM_BINS))
    return histogram(lengths, 0, step * HISTOGRAM_BINS, integer=True)


# ---------------------------------------------------------------- the item view and form


def conversation_markdown(messages: list[dict], lang: str | None = None) -> str:
    """The conversation as Markdown: one section per message with its role (code and lists render); an
    assistant turn's tool calls as name and pretty-printed arguments, a tool result with the call it answers."""
    names = {call.get("id"): (call.get("function") or {}).get("name") for message in messages
             for call in message.get("tool_calls") or []}
    parts = []
    for message in messages:
        role = t(f"dtab.role.{message.get('role')}", lang) if message.get("role") in ROLES else str(message.get("role"))
        if message.get("role") == TOOL_ROLE:
            call_id = message.get("tool_call_id") or "?"
            name = message.get("name") or names.get(call_id) or "?"
            parts.append(f"**{role}** · {t('tool_calls.view_result', lang, name=_code(name), call_id=_code(call_id))}\n\n"
                         + _json_block(message.get("content") or ""))
            continue
        text = f"**{role}**\n\n{message.get('content') or ''}".rstrip()
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            text += (f"\n\n{t('tool_calls.view_call', lang, name=_code(function.get('name') or '?'), call_id=_code(call.get('id') or '?'))}"
                     f"\n\n{_json_block(function.get('arguments') or '{}')}")
        parts.append(text)
    return "\n\n---\n\n".join(parts)


def _code(text: str) -> str:
    """An inline code span holding `text` whatever backticks it contains."""
    if "`" not in text:
        return f"`{text}`"
    ticks = "`" * (max(len(run) for run in _backtick_runs(text)) + 1)
    return f"{ticks} {text} {ticks}"


def _backtick_runs(text: str) -> list[str]:
    runs, run = [], ""
    for char in text:
        if char == "`":
            run += char
        elif run:
            runs.append(run)
            run = ""
    return runs + ([run] if run else [])


def _json_block(text: str) -> str:
    """A fenced block of `text`, pretty-printed when it is JSON; the fence is longer than any backtick run in it."""
    try:
        text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
        language = "json"
    except (ValueError, TypeError):
        language = ""
    fence = "`" * max(3, max((len(run) for run in _backtick_runs(text)), default=0) + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def tools_markdown(item: dict, lang: str | None = None) -> str:
    """The functions the item's model is shown (its `tools`): name, description and parameters, under the
    conversation ("" for an item without tools)."""
    tools = item.get("tools") or []
    if not tools:
        return ""
    lines = [f"\n\n---\n\n**{t('tool_calls.view_tools', lang, count=len(tools))}**"]
    for tool in tools:
        function = tool.get("function") or {}
        entry = f"- {_code(function.get('name') or '?')}"
        if function.get("description"):
            entry += f" — {function['description']}"
        lines.append(entry)
        if function.get("parameters"):
            lines.append("\n" + _json_block(json.dumps(function["parameters"], ensure_ascii=False)))
    return "\n".join(lines)


def form_calls_markdown(messages: list[dict]) -> str:
    """The calls and results of the messages in the form, read-only (they are edited in the JSON view):
    one line each, `#n` the message's number, → a call, ← a result. Names and JSON only: no words to translate."""
    lines = []
    for number, message in enumerate(messages, start=1):
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            lines.append(f"- #{number} → {_code(function.get('name') or '?')} {_code(_compact(function.get('arguments') or '{}'))}")
        if message.get("role") == TOOL_ROLE:
            lines.append(f"- #{number} ← {_code(message.get('tool_call_id') or '?')} {_code(_compact(message.get('content') or ''))}")
    return "\n".join(lines)


def _compact(text: str, width: int = 200) -> str:
    try:
        text = json.dumps(json.loads(text), ensure_ascii=False)
    except (ValueError, TypeError):
        pass
    return _clip(" ".join(text.split()), width) or " "


def source_markdown(item: dict, meta: dict, docs_root: Path, lang: str | None = None) -> str:
    """The source slice an item was generated from (its file and heading, then its text); imported
    items say "no source", a slice no longer in the doc set says so."""
    provenance = item.get("provenance") or {}
    if not provenance.get("source_doc"):
        return t("dtab.no_source", lang)
    heading = " › ".join(provenance.get("heading_path") or [])
    title = f"**{provenance['source_doc']}**" + (f" — {heading}" if heading else "")
    context, reason = _doc_context(meta, docs_root)
    if context is None:
        return title + "\n\n" + t("dtab.source_docs_missing" if reason == "docs_missing" else "dtab.source_unknown", lang)
    source = context.source_of(item)
    if source.match in ("gone", "none"):
        return title + "\n\n" + t("dtab.source_gone", lang)
    return title + "\n\n" + source.text


_CONTEXTS: dict[tuple, tuple] = {}


def _doc_context(meta: dict, docs_root: Path):
    """doc_context_for, kept while the doc set's files are unchanged (slicing a doc set per click is slow)."""
    docs = (meta.get("generated_from") or {}).get("docs")
    folder = Path(docs_root) / docs if docs else None
    stamp = max((p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()), default=0) if folder and folder.is_dir() else 0
    key = (str(docs_root), docs, stamp)
    if key not in _CONTEXTS:
        _CONTEXTS.clear()
        _CONTEXTS[key] = doc_context_for(meta, docs_root)
    return _CONTEXTS[key]


def form_slots(messages: list[dict]) -> list[tuple[str, str]]:
    """(role, content) of each message slot; slots past the conversation are empty."""
    slots = [(m.get("role") or "user", m.get("content") or "") for m in messages[:MESSAGE_SLOTS]]
    return slots + [("user", "")] * (MESSAGE_SLOTS - len(slots))


def has_calls(messages: list[dict]) -> bool:
    return any(message.get("tool_calls") or message.get("role") == TOOL_ROLE for message in messages)


def messages_from_form(count: int, roles: list, contents: list, base: list[dict] | None = None) -> list[dict]:
    """The messages of the first `count` slots of the form (validated by the store on save). `base`: the
    messages the form shows (its JSON view when last in step): each slot keeps what its message has beside
    role and text (tool calls, a result's call id, a weight) where its role allows it (KEPT_BY_ROLE)."""
    messages = []
    for index, (role, content) in enumerate(zip(roles[:count], contents[:count])):
        message = {"role": role, "content": content or ""}
        old = base[index] if base and index < len(base) and isinstance(base[index], dict) else {}
        for key in KEPT_BY_ROLE.get(role, ()):
            if old.get(key) is not None:
                message[key] = old[key]
        messages.append(message)
    return messages


def base_messages(text) -> list[dict] | None:
    """The messages of a JSON view's text, or None when it holds none (empty, broken, not a list of objects)."""
    try:
        return parse_messages(text) if text else None
    except UserError:
        return None


def messages_json(messages: list[dict]) -> str:
    return json.dumps(messages, ensure_ascii=False, indent=2)


def parse_messages(text: str) -> list[dict]:
    try:
        messages = json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise UserError("error.json_invalid", detail=f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise UserError("dtab.json_not_messages")
    return messages


# ---------------------------------------------------------------- bulk actions


def bulk_targets(action: str, view: DatasetView, result: dict | None, scores: dict[str, float], kinds=(),
                 below: float | None = None) -> list[str]:
    """The ids a bulk action would touch (what the confirm step counts): items flagged with `kinds`,
    scored items below `below`, items holding secrets, or eval items that leak from train."""
    if action == "redact":
        return list(redaction_plan(list(view.items.values())))
    if action == "delete_below":
        if below is None:
            raise UserError("dtab.need_score_bound")
        if not scores:
            raise UserError("dtab.no_scores", name=view.name)
        return [item_id for item_id in view.items if item_id in scores and scores[item_id] < below]
    if result is None:
        raise UserError("dtab.check_first", name=view.name)
    if action == "delete_flagged":
        if not kinds:
            raise UserError("dtab.need_kinds")
        chosen = set(kinds)
        return [item_id for item_id, item_kinds in flags_by_item(result).items()
                if item_id in view.items and chosen.intersection(item_kinds)]
    if action == "move_leaks":
        leaking = {f["item_id"] for f in result["findings"] if f["kind"] in LEAK_KINDS}
        return [item_id for item_id in view.items if item_id in leaking and item_id in view.eval_ids]
    raise UserError("dtab.unknown_action", action=action)


def apply_bulk(action: str, name: str, store, targets: list[str], scores_store=None, training_root=None,
               kinds=(), below=None) -> dict:
    """Run a bulk action as one new version; returns {count, version, ...} for the status line.
    Deletions are the CLI's `datasets filter` (a "filter" version), redaction is `datasets redact`."""
    if action == "redact":
        summary = redact_dataset(name, store, scores=scores_store, training_root=training_root)
        return {"count": summary["items"], "spans": summary["spans"],
                "version": (summary["version"] or {}).get("n"), "run_files": len(summary["run_files"])}
    if action in ("delete_flagged", "delete_below"):
        details = {"drop_flags": sorted(kinds)} if action == "delete_flagged" else {"min_score": below}
        version = store.delete_items(name, targets, kind="filter", **details)
        return {"count": len(targets), "version": (version or {}).get("n")}
    if action == "move_leaks":
        eval_ids = [i for i in store.load(name).eval_ids if i not in set(targets)]
        version = store.set_eval_ids(name, eval_ids, kind="split", moved_to_train=len(targets))
        return {"count": len(targets), "version": (version or {}).get("n")}
    raise UserError("dtab.unknown_action", action=action)


# ---------------------------------------------------------------- versions and export


def version_choices(store, name: str) -> list[int]:
    return [version["n"] for version in store.versions(name)]


def versions_rows(store, name: str, lang: str | None = None) -> list[list]:
    """Newest first: number, time, what made it, details, items, train, eval."""
    return list(reversed(store.version_rows(name, lang)))


def diff_view(store, name: str, a, b, lang: str | None = None) -> tuple[str, list[list]]:
    """(summary line, rows: change, id, old question, new question, old answer, new answer)."""
    diff = store.diff(name, a, b)
    counts = diff["counts"]
    line = t("versions.diff_counts", lang, a=diff["a"], b=diff["b"], items_a=counts["a"]["items"], items_b=counts["b"]["items"],
             train_a=counts["a"]["train"], train_b=counts["b"]["train"], eval_a=counts["a"]["eval"], eval_b=counts["b"]["eval"],
             **{kind: len(diff[kind]) for kind in ("added", "removed", "changed", "to_eval", "to_train")})
    rows = diff_rows(diff, width=ANSWER_TEXT_WIDTH, lang=lang)
    if not rows:
        line += " " + t("versions.diff_none", lang)
    return line, rows


def export_items(store, name: str, split: str = "all", version=None) -> tuple[list[dict], int | None]:
    """The items to export, as `datasets export --split --version` picks them; (items, version or None)."""
    if split not in SPLITS:
        raise UserError("dtab.bad_split", split=split)
    number = store.resolve_version(name, version) if version not in (None, "", 0, "0") else None
    if split == "all":
        return store.items_at(name, number), number
    train, evaluation = store.train_eval(name, number)
    return (train if split == "train" else evaluation), number

