"""Writing a dataset in the formats fine-tuning tools read (the export direction of db.dataset_formats,
whose table names the writer of each format): conversations for supervised tuning, preference items (pairs,
KTO labels) for TRL's and LLaMA-Factory's preference formats; the dataset_info.json entry LLaMA-Factory
reads an exported file through, and the write of both that leaves all of it or none.

Tool calls (schema.tool_calls) go out in two formats: openai, in OpenAI's fine-tuning shape (`tool_calls` on
the assistant turn, `tool` results naming their call, the item's `tools`), and sharegpt, in LLaMA-Factory's
tool format (`function_call` and `observation` turns, a `tools` column of JSON text mapped in the
dataset_info.json entry). The other formats have no place for them and refuse a dataset that has any,
before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from schema.tool_calls import TOOL_ROLE, has_tool_calls
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import SHARED_FILE_MODE, atomic_write_bytes, atomic_write_text

# LLaMA-Factory reads an exported file through its dataset_info.json entry, and reads every column the
# entry maps from every row (`example[column]`: a KeyError when the file has no such column); a column
# the entry does not map is not read at all. So an entry maps `system` and `history` only when the rows
# carry them, and then every row carries them ("" and [] where an item has none).


def _split_system(messages: list[dict]) -> tuple[str | None, list[dict]]:
    if messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def _pairs(turns: list[dict]) -> list[tuple[str, str]]:
    return [(turns[i]["content"], turns[i + 1]["content"]) for i in range(0, len(turns), 2)]


def to_alpaca(messages: list[dict], with_system: bool | None = None, with_history: bool | None = None) -> dict:
    """One alpaca row; `with_system`/`with_history` True give the row that column even when empty,
    None gives it only when the item has one."""
    system, turns = _split_system(messages)
    pairs = _pairs(turns)
    record = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if with_system or (with_system is None and system is not None):
        record["system"] = system or ""
    if with_history or (with_history is None and len(pairs) > 1):
        record["history"] = [list(pair) for pair in pairs[:-1]]
    return record


def to_sharegpt(messages: list[dict], with_system: bool | None = None, counts: dict | None = None) -> dict:
    """One sharegpt row; an assistant turn's calls become a function_call turn and their results one
    observation turn (LLaMA-Factory's tool format, see _sharegpt_turns); `counts` gathers what has no place."""
    system, turns = _split_system(messages)
    record = {"conversations": _sharegpt_turns(turns, counts if counts is not None else {})}
    if with_system or (with_system is None and system is not None):
        record["system"] = system or ""
    return record


def _sharegpt_turns(turns: list[dict], counts: dict) -> list[dict]:
    """The turns as LLaMA-Factory's sharegpt reads them: human and observation in odd places, gpt and
    function_call in even ones. A function_call's value is the JSON text of {"name", "arguments": object}, or
    of a list of them for parallel calls; their results are one observation, the result's text for one
    call and the JSON text of the list of results (in the calls' order) for several, as LLaMA-Factory
    answers parallel calls. A calling turn's own text has no place there: counted in call_text_dropped."""
    names = {"user": "human", "assistant": "gpt"}
    rows: list[dict] = []
    index = 0
    while index < len(turns):
        message = turns[index]
        index += 1
        calls = message.get("tool_calls")
        if not calls:
            rows.append({"from": names[message["role"]], "value": message["content"]})
            continue
        objects = [{"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"] or "{}")}
                   for call in calls]
        rows.append({"from": "function_call", "value": json.dumps(objects[0] if len(objects) == 1 else objects, ensure_ascii=False)})
        if message["content"].strip():
            counts["call_text_dropped"] = counts.get("call_text_dropped", 0) + 1
        order = {call["id"]: position for position, call in enumerate(calls)}
        results = []
        while index < len(turns) and turns[index]["role"] == TOOL_ROLE:
            results.append(turns[index])
            index += 1
        results.sort(key=lambda result: order.get(result.get("tool_call_id"), len(order)))
        if results:
            value = results[0]["content"] if len(results) == 1 else json.dumps([r["content"] for r in results], ensure_ascii=False)
            rows.append({"from": "observation", "value": value})
    return rows


class Conversation(list):
    """An item's messages as a format of conversations gets them (sft_conversations), with the functions
    the item's model is shown (its `tools`; None when it has none)."""

    tools: list[dict] | None = None


def _tools(messages: list[dict]) -> list[dict] | None:
    return getattr(messages, "tools", None)


def _bare_function(tool: dict) -> dict:
    """A tool as LLaMA-Factory's tools column lists it: {"name", "description", "parameters"} (what every
    version reads; its default tool prompt reads parameters.properties, so an empty schema stands in)."""
    function = dict(tool["function"])
    function.setdefault("parameters", {"type": "object", "properties": {}})
    return function


def refuse_tool_calls(conversations: list[list[dict]], fmt: str, tools: list | None = None) -> None:
    """Refuse to write conversations with tool calls or tools in a format that has no place for them (all
    or nothing: nothing is written). `tools`: each conversation's tools where they are not on it."""
    tools = tools if tools is not None else [_tools(messages) for messages in conversations]
    calling = sum(1 for messages in conversations if has_tool_calls(messages))
    with_tools = sum(1 for found in tools if found)
    if calling or with_tools:
        raise UserError("tool_calls.export_refused", format=fmt, calls=calling, tools=with_tools,
                        items=len(conversations), choices="openai, sharegpt")


def to_qa_pairs(messages: list[dict]) -> list[dict]:
    return [{"question": q, "answer": a} for q, a in _pairs(_split_system(messages)[1])]


@dataclass
class Exported:
    """What a format's export function made: the file's text, the optional columns every row carries
    (added to the dataset_info.json entry), and counts for the note shown to the user."""

    text: str
    columns: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)


def _write_json_list(records: list[dict]) -> str:
    return json.dumps(records, ensure_ascii=False, indent=2) + "\n"


def _write_json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _has_system(conversations: list[list[dict]]) -> bool:
    return any(messages[0]["role"] == "system" for messages in conversations)


def _unweighted(conversations: list[list[dict]]) -> dict:
    """Formats without per-turn weights train every answer: count the weight-0 turns that lose theirs."""
    turns = sum(1 for messages in conversations for m in messages if m.get("weight") == 0)
    return {"weight_dropped": turns} if turns else {}


def export_alpaca(conversations: list[list[dict]], out_path: Path) -> Exported:
    refuse_tool_calls(conversations, "alpaca")
    with_system = _has_system(conversations)
    with_history = any(len(_split_system(m)[1]) > 2 for m in conversations)
    records = [to_alpaca(m, with_system, with_history) for m in conversations]
    columns = {name: name for name, used in (("system", with_system), ("history", with_history)) if used}
    return Exported(_write_json_list(records), columns, _unweighted(conversations))


def export_sharegpt(conversations: list[list[dict]], out_path: Path) -> Exported:
    """LLaMA-Factory's sharegpt rows; with tools, every row has a `tools` column ("" for an item without),
    the JSON text of its functions, which the entry maps."""
    with_system = _has_system(conversations)
    with_tools = any(_tools(m) for m in conversations)
    counts: dict = {}
    records = []
    for messages in conversations:
        record = to_sharegpt(messages, with_system, counts)
        if with_tools:
            found = _tools(messages)
            record["tools"] = json.dumps([_bare_function(tool) for tool in found], ensure_ascii=False) if found else ""
        records.append(record)
    columns = {name: name for name, used in (("system", with_system), ("tools", with_tools)) if used}
    return Exported(_write_json_list(records), columns, {**counts, **_unweighted(conversations)})


def _openai_message(message: dict) -> dict:
    """A message in OpenAI's fine-tuning shape: a tool result is {role, tool_call_id, content} (the function's
    name is its call's, on the assistant turn); the rest as stored (content, tool_calls, weight)."""
    if message["role"] == TOOL_ROLE:
        return {"role": TOOL_ROLE, "tool_call_id": message["tool_call_id"], "content": message["content"]}
    return message


def export_openai(conversations: list[list[dict]], out_path: Path) -> Exported:
    # A system prompt is the first message, which the entry's system_tag names; weights stay on the
    # messages (OpenAI's own format; LLaMA-Factory ignores keys it does not know). Tool calls as OpenAI
    # keeps them, the item's tools beside its messages; the dataset_info.json entry reads plain
    # conversations, so the note points LLaMA-Factory at the sharegpt export for the items that call tools.
    records = []
    for messages in conversations:
        record: dict = {"messages": [_openai_message(m) for m in messages] if has_tool_calls(messages) else messages}
        if _tools(messages):
            record["tools"] = _tools(messages)
        records.append(record)
    calling = sum(1 for messages in conversations if has_tool_calls(messages) or _tools(messages))
    return Exported(_write_json_lines(records), {}, {"llamafactory_tools": calling} if calling else {})


def export_qa(conversations: list[list[dict]], out_path: Path) -> Exported:
    refuse_tool_calls(conversations, "qa")
    pairs, counts = [], {"system_dropped": 0, "flattened": 0, "flattened_pairs": 0}
    for messages in conversations:
        item_pairs = to_qa_pairs(messages)
        counts["system_dropped"] += messages[0]["role"] == "system"
        if len(item_pairs) > 1:
            counts["flattened"] += 1
            counts["flattened_pairs"] += len(item_pairs)
        pairs.extend(item_pairs)
    write = _write_json_lines if out_path.suffix == ".jsonl" else _write_json_list
    return Exported(write(pairs), {}, {**counts, **_unweighted(conversations)})


# ---------------------------------------------------------------- preference datasets
#
# A preference item's messages end with the chosen answer; it has a rejected answer (a pair) or a KTO label
# (schema.dataset). TRL reads conversational rows: {prompt: [messages], chosen: [assistant], rejected:
# [assistant]} for DPO/ORPO and {prompt, completion, label} for KTO, where a pair is two rows (TRL's own
# unpair_preference_dataset does the same). LLaMA-Factory reads a pair as sharegpt `conversations` ending
# with the user's turn plus `chosen`/`rejected` messages (`ranking: true`), or alpaca `instruction` plus
# `chosen`/`rejected` texts, and a KTO row as a conversation with a boolean `kto_tag`.


def sft_conversations(items: list[dict]) -> tuple[list[list[dict]], dict]:
    """What a format of plain conversations gets from `items`: every item's messages (a pair's end with its
    chosen answer), label-false items left out (supervised tuning would learn them as good answers), and
    the counts the export's note reports."""
    conversations, chosen_only, label_false = [], 0, 0
    for item in items:
        if item.get("label") is False:
            label_false += 1
            continue
        chosen_only += bool(item.get("rejected"))
        conversation = Conversation(item["messages"])
        conversation.tools = item.get("tools") or None
        conversations.append(conversation)
    return conversations, {name: count for name, count in (("chosen_only", chosen_only), ("label_false", label_false)) if count}


def _plain_messages(messages: list[dict]) -> list[dict]:
    """{role, content} only: a weight means nothing to a preference trainer, which trains on the answers alone."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _kto_rows(items: list[dict]) -> tuple[list[tuple[list[dict], str, bool]], int]:
    """(conversation before the answer, answer, desirable) per KTO row, and how many pairs were split in two:
    a pair gives its chosen answer (true) and its rejected one (false)."""
    rows, pairs = [], 0
    for item in items:
        prompt, chosen = item["messages"][:-1], item["messages"][-1]["content"]
        if item.get("rejected"):
            pairs += 1
            rows += [(prompt, chosen, True), (prompt, item["rejected"], False)]
        else:
            rows.append((prompt, chosen, item["label"]))
    return rows, pairs


def _refuse_item_calls(items: list[dict], fmt: str) -> None:
    """The preference formats carry plain answers: items with tool calls or tools are refused."""
    refuse_tool_calls([item["messages"] for item in items], fmt, [item.get("tools") for item in items])


def _split_counts(rows: list, pairs: int) -> dict:
    return {"pairs_split": pairs, "rows": len(rows)} if pairs else {}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def export_trl_dpo(items: list[dict], out_path: Path) -> Exported:
    _refuse_item_calls(items, "trl_dpo")
    rows = [{"prompt": _plain_messages(item["messages"][:-1]), "chosen": [_assistant(item["messages"][-1]["content"])],
             "rejected": [_assistant(item["rejected"])]} for item in items]
    return Exported(_write_json_lines(rows))


def export_trl_kto(items: list[dict], out_path: Path) -> Exported:
    _refuse_item_calls(items, "trl_kto")
    rows, pairs = _kto_rows(items)
    records = [{"prompt": _plain_messages(prompt), "completion": [_assistant(answer)], "label": label} for prompt, answer, label in rows]
    return Exported(_write_json_lines(records), {}, _split_counts(rows, pairs))


def export_sharegpt_ranking(items: list[dict], out_path: Path) -> Exported:
    _refuse_item_calls(items, "sharegpt_ranking")
    with_system = _has_system([item["messages"] for item in items])
    records = [{**to_sharegpt(item["messages"][:-1], with_system), "chosen": {"from": "gpt", "value": item["messages"][-1]["content"]},
                "rejected": {"from": "gpt", "value": item["rejected"]}} for item in items]
    return Exported(_write_json_list(records), {"system": "system"} if with_system else {})


def export_alpaca_ranking(items: list[dict], out_path: Path) -> Exported:
    _refuse_item_calls(items, "alpaca_ranking")
    conversations = [item["messages"] for item in items]
    with_system = _has_system(conversations)
    with_history = any(len(_split_system(m)[1]) > 2 for m in conversations)
    records = []
    for item in items:
        record = to_alpaca(item["messages"], with_system, with_history)
        records.append({**{key: value for key, value in record.items() if key != "output"}, "chosen": record["output"],
                        "rejected": item["rejected"]})
    columns = {name: name for name, used in (("system", with_system), ("history", with_history)) if used}
    return Exported(_write_json_list(records), columns)


def export_sharegpt_kto(items: list[dict], out_path: Path) -> Exported:
    _refuse_item_calls(items, "sharegpt_kto")
    rows, pairs = _kto_rows(items)
    with_system = _has_system([prompt for prompt, _answer, _label in rows])
    records = [{**to_sharegpt([*prompt, _assistant(answer)], with_system), "kto_tag": label} for prompt, answer, label in rows]
    return Exported(_write_json_list(records), {"system": "system"} if with_system else {}, _split_counts(rows, pairs))


def write_all_or_nothing(files: list[tuple[Path, str]]) -> None:
    """Write each (path, text), readable by others, each atomically; when one fails, the ones written before it
    are put back as they were (or removed), so an export leaves its file and its dataset_info.json entry
    together or neither."""
    written: list[tuple[Path, bytes | None]] = []
    try:
        for path, text in files:
            previous = path.read_bytes() if path.is_file() else None
            atomic_write_text(path, text, SHARED_FILE_MODE)
            written.append((path, previous))
    except BaseException:
        for path, previous in reversed(written):
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(path, previous, SHARED_FILE_MODE)
        raise


def read_dataset_info(info_path: Path) -> dict:
    """The entries of an existing dataset_info.json ({} when there is none); one that is not a JSON
    object is refused, so an export never overwrites a file it cannot read."""
    if not info_path.exists():
        return {}
    text = info_path.read_text(encoding="utf-8-sig", errors="replace")
    if not text.strip():
        return {}
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError("formats.dataset_info_corrupt", path=str(info_path), detail=f"line {exc.lineno}: {exc.msg}") from None
    if not isinstance(info, dict):
        raise UserError("formats.dataset_info_corrupt", path=str(info_path), detail=f"its top level is a JSON {type(info).__name__}")
    return info


def dataset_info_key(info: dict, file_name: str) -> str:
    """The entry name for `file_name`: the file's stem ("tidewater.alpaca" for tidewater.alpaca.json),
    or the whole file name when the stem already names an entry for another file."""
    stem = Path(file_name).stem
    taken = info.get(stem)
    if taken is not None and not (isinstance(taken, dict) and taken.get("file_name") == file_name):
        return file_name
    return stem


def _describes_file(entry, file_name: str) -> bool:
    return isinstance(entry, dict) and entry.get("file_name") == file_name and not ({"hf_hub_url", "ms_hub_url", "script_url"} & entry.keys())


def merge_dataset_info(info: dict, file_name: str, entry: dict) -> tuple[str, dict]:
    """(key, entries) with `entry` for `file_name` merged in: other files' entries are kept, and an older
    entry for the same file under another name (it described the file this export replaced) goes."""
    key = dataset_info_key(info, file_name)
    merged = {name: value for name, value in info.items() if name == key or not _describes_file(value, file_name)}
    merged[key] = entry
    return key, merged



def export_note(result: dict, lang: str | None = None) -> str:
    """What an export changed in the data, in words ("" when nothing): system prompts the qa format
    dropped, multi-turn items it split, weight-0 turns a format without weights trains on, the rejected
    answers and label-false items a format of plain conversations has no place for, pairs split for KTO, the
    text of calling turns LLaMA-Factory's sharegpt has no place for, and the openai file's tool-calling items
    its dataset_info.json entry does not read (the sharegpt export does)."""
    notes = []
    if result.get("system_dropped"):
        notes.append(t("formats.note_system_dropped", lang, count=result["system_dropped"]))
    if result.get("flattened"):
        notes.append(t("formats.note_flattened", lang, items=result["flattened"], pairs=result["flattened_pairs"]))
    if result.get("weight_dropped"):
        notes.append(t("formats.note_weight_dropped", lang, count=result["weight_dropped"], format=result["format"]))
    if result.get("chosen_only"):
        notes.append(t("prefformats.note_chosen_only", lang, count=result["chosen_only"], format=result["format"]))
    if result.get("label_false"):
        notes.append(t("prefformats.note_label_false", lang, count=result["label_false"]))
    if result.get("pairs_split"):
        notes.append(t("prefformats.note_pairs_split", lang, pairs=result["pairs_split"], rows=result["rows"]))
    if result.get("call_text_dropped"):
        notes.append(t("tool_calls.note_call_text_dropped", lang, count=result["call_text_dropped"]))
    if result.get("llamafactory_tools"):
        notes.append(t("tool_calls.note_openai_llamafactory", lang, count=result["llamafactory_tools"]))
    return "\n".join(notes)


def export_line(result: dict, lang: str | None = None) -> str:
    """What an export wrote, in words: the file, and LLaMA-Factory's dataset_info.json where it has an entry."""
    key = "datasets.exported" if result.get("dataset_info") else "prefformats.exported_trl"
    return t(key, lang, count=result["count"], format=result["format"], path=result["path"])

