"""Tool-call data from the docs: the functions a slice documents as tool definitions, the conversations a
provider writes that call them (a generation unit), the exam questions that ask for a call (kind "tool_call"),
and a model's call read back from its answer and scored.

The tools are deterministic: `tools.docs.signatures` finds the functions whose signature a slice shows and
turns each into an OpenAI tool definition (JSON-schema parameters from the documented signature). Nothing an
LLM writes decides what exists: a call is kept only when it names an offered function and its arguments fit
that function's signature (`call_problems`: no unknown argument unless it takes **kwargs, every required one
present, a value of the documented JSON type where the definition gives one).

Generation (setting `tool_calls` N > 0; tools.generation.engine): per slice that documents a function, one unit
"<slice>:tool-calls" asking for N conversations in the slice's language. Each conversation becomes one item in
the stored shape (schema.tool_calls): the user's request, the assistant's call(s), and when the reply gives
both a result per call and a final answer, the `tool` results and that answer. The item's `tools` are the
definitions offered; its provenance's `variant` is "tool_call:<first function called>". A conversation that
calls a function not offered, or with arguments that do not fit, is dropped and counted by reason; a reply with
none left is sent back once with the first problem named, then the unit fails.

Scoring a model's call (exam kind "tool_call"; train.exam_scoring): the answer is read as a JSON object
{"name", "arguments"} (also {"function": {...}} and OpenAI's {"tool_calls": [...]}), as Qwen/Hermes
`<tool_call>{...}</tool_call>`, or as Python call syntax `name(arg=value, ...)` (positional values take the
parameters in the definition's order). The first call found counts. Its score:

    0                                   no call found, or another function's name
    (1 + matched) / (1 + expected + unknown)   the right function, where
        expected  the arguments of the reference call
        matched   those the answer gives with an equal value (numbers by value, strings exactly, lists and
                  objects element by element)
        unknown   arguments the answer gives that the reference call does not have

so the right function with exactly the reference's arguments scores 1, and every missing, wrong or extra
argument costs alike. `correct` is score == 1.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from schema.dataset import validate_messages
from schema.document import DocumentSlice
from schema.tool_calls import FUNCTION_NAME, TOOL_ROLE, defined_names
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.docs.signatures import DocumentedFunction, check_arguments, documented_functions, tool_definition
from tools.llm.replies import OutputError, json_from_reply
from tools.quality.language import detect_language

TOOL_CALL_VARIANT = "tool_call"  # the provenance's variant: "tool_call:<first function called>"
TOOL_CALLS_UNIT = "tool-calls"  # a generation unit's key: "<slice>:tool-calls"
MAX_TOOL_CALLS = 20  # conversations asked per slice, at most
MAX_TOOLS_OFFERED = 8  # functions offered in one prompt: the slice's first ones by name (documented_functions' order)
DROP_REASONS = ("unknown_function", "bad_arguments", "invalid_conversation")


# ---------------------------------------------------------------- the functions of a slice


_FUNCTIONS_CACHE: dict[tuple[str, str], tuple[DocumentedFunction, ...]] = {}
_CACHE_LIMIT = 4096


def slice_functions(document_slice: DocumentSlice) -> tuple[DocumentedFunction, ...]:
    """The functions whose signature the slice shows (at most MAX_TOOLS_OFFERED, by name), those whose name a
    stored tool can carry (schema.tool_calls.FUNCTION_NAME: not a JavaScript `$`); cached by the slice's id and
    text, since a run's units are planned more than once."""
    key = (document_slice.slice_id, document_slice.text)
    found = _FUNCTIONS_CACHE.get(key)
    if found is None:
        storable = [f for f in documented_functions([document_slice]).values() if FUNCTION_NAME.match(f.name)]
        found = tuple(storable[:MAX_TOOLS_OFFERED])
        if len(_FUNCTIONS_CACHE) >= _CACHE_LIMIT:
            _FUNCTIONS_CACHE.clear()
        _FUNCTIONS_CACHE[key] = found
    return found


def offered_tools(functions: Iterable[DocumentedFunction]) -> list[dict]:
    """The OpenAI tool definitions of `functions`, in order."""
    return [tool_definition(function) for function in functions]


def tool_call_unit_key(slice_id: str) -> str:
    return f"{slice_id}:{TOOL_CALLS_UNIT}"


def slice_language(document_slice: DocumentSlice) -> str:
    """'zh' or 'en': the language the slice is written in (what its conversations are asked in)."""
    return "zh" if detect_language(document_slice.text) == "zh" else "en"


def check_tool_calls_setting(value) -> None:
    """UserError when `value` is a number outside 0..MAX_TOOL_CALLS (other problems: the settings' check)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not 0 <= value <= MAX_TOOL_CALLS:
        raise UserError("error.toolgen_range", value=value, high=MAX_TOOL_CALLS)


# ---------------------------------------------------------------- checking a call

_JSON_TYPES = {"integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
               "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
               "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
               "array": lambda v: isinstance(v, list), "object": lambda v: isinstance(v, dict),
               "null": lambda v: v is None}


def _type_problem(name: str, value: Any, schema: dict) -> str | None:
    wanted = schema.get("type") if isinstance(schema, dict) else None
    if not wanted or (value is None and "default" in schema and schema["default"] is None):
        return None  # no documented type, or the documented default None (null) passed as it is
    types = [wanted] if isinstance(wanted, str) else [kind for kind in wanted if isinstance(kind, str)]
    if any(_JSON_TYPES.get(kind, lambda v: True)(value) for kind in types):
        return None
    return f"argument {name!r} must be of type {'/'.join(types)} (got {type(value).__name__})"


def call_problems(function: DocumentedFunction, arguments: Any) -> list[str]:
    """What keeps `arguments` from fitting `function`'s documented signature: not an object, an unknown
    argument, a missing required one, a value of another type than the documented one."""
    if not isinstance(arguments, dict):
        return [f"the arguments of {function.name} must be a JSON object (got {type(arguments).__name__})"]
    # In English: the detail goes back to the provider in the correction round (and into the run's failures).
    problems = list(check_arguments(function, arguments, "en"))
    properties = ((tool_definition(function).get("function") or {}).get("parameters") or {}).get("properties") or {}
    for name, value in arguments.items():
        if name in properties:
            problem = _type_problem(name, value, properties[name])
            if problem:
                problems.append(problem)
    return problems


def _arguments_of(value: Any) -> Any:
    """A call's arguments as given: an object, the JSON text of one, or absent ({})."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def checked_call(call: Any, functions: dict[str, DocumentedFunction]) -> tuple[str, dict] | tuple[None, str, str]:
    """(name, arguments) of a call {"name", "arguments"} that names an offered function with arguments that fit,
    else (None, reason, detail) with reason one of DROP_REASONS."""
    if not isinstance(call, dict):
        return None, "invalid_conversation", f"a call must be an object with name and arguments (got {type(call).__name__})"
    call = call.get("function") if isinstance(call.get("function"), dict) else call
    name = call.get("name")
    if name not in functions:
        offered = ", ".join(functions) or "-"
        return None, "unknown_function", f"{name!r} is not one of the offered functions ({offered})"
    arguments = _arguments_of(call.get("arguments", call.get("parameters")))
    problems = call_problems(functions[name], arguments)
    if problems:
        return None, "bad_arguments", f"{name}: " + "; ".join(problems)
    return name, arguments


# ---------------------------------------------------------------- generation: prompts

_LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
GENERATION_SHAPE = ('{"conversations": [{"user": "<the request>", "calls": [{"name": "<an offered function>", '
                    '"arguments": {"<parameter>": <value>}}], "results": ["<what each call returned>"], '
                    '"answer": "<the final reply>"}]}')
_SYSTEM = {
    "en": ("You write training conversations that teach a model to call a software library's documented functions. "
           "The functions you may call are listed below as tool definitions (JSON); the documentation excerpt shows what "
           "they do. Write exactly {count} conversations, each a different, realistic request a user of the library "
           "makes in their own words, in {language}, and the assistant's call(s) that do it: \"name\" exactly one of the "
           "offered functions' names; \"arguments\" an object with only documented parameters, every required one, "
           "and values of the documented types that fit the request. Optionally add \"results\" (one plausible return "
           "value per call, as the function would return it) and \"answer\" (the assistant's reply to the user once "
           "the results are in); give both or neither. Reply with one JSON object and nothing else, of the form "
           "{shape}."),
    "zh": ("你编写训练对话,教模型调用某个软件库文档中记载的函数。可调用的函数以工具定义(JSON)列在下面;"
           "文档节选说明它们的作用。恰好写 {count} 段对话,每段是库的用户用自己的话提出的一个不同的、真实的请求(用{language}),"
           "以及助手完成它的调用:\"name\" 必须与所列函数之一的名称完全相同;\"arguments\" 是一个对象,只含文档中的参数,"
           "包含所有必填参数,取值符合文档的类型并切合请求。可以再加上 \"results\"(每个调用一个合理的返回值,"
           "如同函数真的返回)和 \"answer\"(拿到结果后助手给用户的回复);两者要么都给,要么都不给。"
           "只输出一个 JSON 对象,不要输出其他内容,格式为:{shape}。"),
}
TOOLS_HEADING = {"en": "Tools (JSON):", "zh": "工具(JSON):"}
_USER = {
    "en": "{context}{tools_heading}\n{tools}\n\nDocumentation excerpt:\n{document_slice}",
    "zh": "{context}{tools_heading}\n{tools}\n\n文档节选:\n{document_slice}",
}
_CONTEXT_HEAD = {"en": "Context: ", "zh": "背景:"}


def _fill(template: str, **values: str) -> str:
    """`template` with each {name} of `values` replaced in one pass (the JSON shapes and documents are full of braces)."""
    return re.sub(r"\{(" + "|".join(map(re.escape, values)) + r")\}", lambda match: values[match.group(1)], template)


def tools_json(tools: list[dict]) -> str:
    """The tool definitions as one line of JSON (the prompts' block; a reader finds it by its heading)."""
    return json.dumps(tools, ensure_ascii=False)


def tool_call_messages(slice_text: str, tools: list[dict], count: int, lang: str,
                       variables: dict[str, str] | None = None) -> list[dict]:
    """The chat messages asking for `count` conversations calling `tools` (`slice_text`: the slice block)."""
    system = _fill(_SYSTEM[lang], count=str(count), language=_LANGUAGE_NAMES[lang], shape=GENERATION_SHAPE)
    values = "; ".join(f"{key} = {value}" for key, value in (variables or {}).items() if str(value).strip())
    context = f"{_CONTEXT_HEAD[lang]}{values}\n\n" if values else ""
    user = _fill(_USER[lang], context=context, tools_heading=TOOLS_HEADING[lang], tools=tools_json(tools),
                 document_slice=slice_text)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def tool_call_correction(detail: str, count: int) -> str:
    return (f"Your reply could not be used: {detail}. Reply again with only the JSON object {GENERATION_SHAPE} holding "
            f"{count} conversations, calling only the offered functions with their documented parameters.")


# ---------------------------------------------------------------- generation: a reply's conversations


@dataclass
class ParsedConversations:
    """What one reply gave: the conversations kept (messages in the stored shape, and the first function each
    calls) and the ones dropped, by reason."""

    conversations: list[tuple[list[dict], str]]
    dropped: Counter


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _result_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def conversation_messages(entry: Any, functions: dict[str, DocumentedFunction]) -> tuple[list[dict], str] | tuple[None, str, str]:
    """(messages in the stored shape, the first function called) of one reply entry, or (None, reason, detail)."""
    if not isinstance(entry, dict):
        return None, "invalid_conversation", f"a conversation must be an object (got {type(entry).__name__})"
    user = _text(entry.get("user") or entry.get("request"))
    calls = entry.get("calls", entry.get("tool_calls"))
    if isinstance(calls, dict):
        calls = [calls]
    if not user or not isinstance(calls, list) or not calls:
        return None, "invalid_conversation", "a conversation needs \"user\" (the request) and a non-empty list \"calls\""
    written = []
    for number, call in enumerate(calls, 1):
        checked = checked_call(call, functions)
        if checked[0] is None:
            return None, checked[1], checked[2]
        name, arguments = checked
        written.append({"id": f"call_{number}", "type": "function",
                        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}})
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": "", "tool_calls": written}]
    results, answer = entry.get("results"), _text(entry.get("answer"))
    if results is not None and not isinstance(results, list):
        results = [results]
    # Results and the final answer only together, one result per call: else the item ends on its calls.
    if answer and results and len(results) == len(written):
        messages += [{"role": TOOL_ROLE, "tool_call_id": call["id"], "content": _result_text(result)}
                     for call, result in zip(written, results)]
        messages.append({"role": "assistant", "content": answer})
    try:
        validate_messages(messages, where="conversation")
    except UserError as exc:
        return None, "invalid_conversation", str(exc)[:300]
    return messages, written[0]["function"]["name"]


def parse_tool_conversations(content: str | None, functions: dict[str, DocumentedFunction]) -> ParsedConversations:
    """The usable conversations of a reply {"conversations": [...]} (a bare list, or one conversation object, is
    accepted); OutputError when the shape is wrong or no conversation is usable (the first problem named)."""
    data = json_from_reply(content)
    if isinstance(data, dict) and "conversations" in data:
        data = data["conversations"]
    elif isinstance(data, dict) and "calls" in data:
        data = [data]
    if not isinstance(data, list):
        keys = ", ".join(sorted(map(str, data))) if isinstance(data, dict) else type(data).__name__
        raise OutputError("wrong_schema", f'expected {{"conversations": [...]}}, got an object with {keys}'[:300])
    if not data:
        raise OutputError("no_conversations", "the list of conversations was empty")
    kept, dropped, first_problem = [], Counter(), ""
    for index, entry in enumerate(data):
        found = conversation_messages(entry, functions)
        if found[0] is None:
            dropped[found[1]] += 1
            first_problem = first_problem or f"conversations[{index}]: {found[2]}"
            continue
        kept.append(found)
    if not kept:
        raise OutputError("invalid_tool_calls", first_problem[:400])
    return ParsedConversations(kept, dropped)


def tool_calls_summary(progress: dict | None, conversations: int, calls: int, dropped: Counter) -> dict:
    """The run's tool-call counts with one unit's added (a new dict: the progress is published by copy)."""
    before = progress or {"conversations": 0, "calls": 0, "dropped": 0, "reasons": {}}
    reasons = Counter(before.get("reasons") or {})
    reasons.update(dropped)
    return {"conversations": before["conversations"] + conversations, "calls": before["calls"] + calls,
            "dropped": before["dropped"] + sum(dropped.values()), "reasons": dict(sorted(reasons.items()))}


def tool_calls_line(summary: dict, lang: str | None = None) -> str:
    """"Tool calls: 12 conversations kept (14 calls), 2 dropped (called a function not offered 2)", in `lang`."""
    reasons = ", ".join(f"{t(f'toolgen.reason.{reason}', lang) if reason in DROP_REASONS else reason} {count}"
                        for reason, count in (summary.get("reasons") or {}).items())
    return t("toolgen.summary", lang, conversations=summary.get("conversations", 0), calls=summary.get("calls", 0),
             dropped=summary.get("dropped", 0), reasons=f" ({reasons})" if reasons else "")


# ---------------------------------------------------------------- exam questions (kind "tool_call")

EXAM_SHAPE = ('{"questions": [{"question": "<a task a user asks for, in their words>", "call": {"name": '
              '"<an offered function>", "arguments": {"<parameter>": <value>}}}]}')
EXAM_RULES = {
    "en": ("Tool call: each question is a task a user of the library asks for in their own words, which one call of "
           "one of the functions listed below (tool definitions, JSON) does; \"call\" is that call: \"name\" exactly an "
           "offered function's name, \"arguments\" only documented parameters, every required one, with the values "
           "the task states. The task must state every value the call needs, so that only one call is right; do not "
           "name the function in the task."),
    "zh": ("工具调用题:每题是库的用户用自己的话提出的一个任务,恰好由下面所列函数(工具定义,JSON)之一的一次调用完成;"
           "\"call\" 就是这次调用:\"name\" 与所列函数之一的名称完全相同,\"arguments\" 只含文档中的参数、包含所有必填参数,"
           "取值就是任务中说明的值。任务必须说明调用需要的每个值,使正确的调用只有一个;不要在任务中写出函数名。"),
}


def exam_tools_block(tools: list[dict], lang: str) -> str:
    return f"{TOOLS_HEADING[lang]}\n{tools_json(tools)}"


def canonical_call(name: str, arguments: dict) -> str:
    """A reference call as an exam keeps it: the JSON text {"name", "arguments"}."""
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False, sort_keys=False)


def expected_call(answer: str) -> tuple[str, dict]:
    """(name, arguments) of a tool_call question's reference answer; ValueError when it is not one."""
    data = json.loads(answer)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("arguments"), dict):
        raise ValueError('a tool_call answer must be the JSON text of {"name": ..., "arguments": {...}}')
    return data["name"], data["arguments"]


def parse_tool_questions(data: list, functions: dict[str, DocumentedFunction], tools: list[dict]) -> tuple[list[dict], int, str]:
    """(questions {question, options, answer, tools}, entries dropped for a call that does not fit, the first
    problem) of a reply's list; an entry without a question text raises OutputError (the shape is wrong)."""
    kept, dropped, first_problem = [], 0, ""
    for index, entry in enumerate(data):
        where = f"questions[{index}]"
        if not isinstance(entry, dict):
            raise OutputError("wrong_schema", f"{where}: expected an object, got {type(entry).__name__}")
        question = _text(entry.get("question"))
        if not question:
            raise OutputError("wrong_schema", f"{where}.question: expected non-empty text")
        checked = checked_call(entry.get("call") or entry.get("answer"), functions)
        if checked[0] is None:
            dropped += 1
            first_problem = first_problem or f"{where}.call: {checked[2]}"
            continue
        kept.append({"question": question, "options": [], "answer": canonical_call(*checked), "tools": tools})
    return kept, dropped, first_problem


# ---------------------------------------------------------------- a model's call: the prompt, reading it back, its score

_CALL_PROMPT = {
    "en": ("You can call these functions (tool definitions, JSON):\n{tools}\n\nAnswer with the one function call that "
           "does the task, as JSON {\"name\": ..., \"arguments\": {...}}.\n\nTask: {task}"),
    "zh": ("你可以调用这些函数(工具定义,JSON):\n{tools}\n\n用完成任务的那一个函数调用作答,格式为 JSON "
           "{\"name\": ..., \"arguments\": {...}}。\n\n任务:{task}"),
}
# What stands in for the task when it is removed (the exam's blind condition): the tools alone.
BLIND_TASK = {"en": "Call one of the functions.", "zh": "调用其中一个函数。"}


def call_prompt(task: str, tools: list[dict], lang: str = "en") -> str:
    """The user turn asking a model for a call: the tools listed as JSON, the answer's form, then the task."""
    return _fill(_CALL_PROMPT.get(lang, _CALL_PROMPT["en"]), tools=tools_json(tools), task=task)


# Bounds on reading an answer (a greedy answer is short; these keep a runaway one linear): the characters read, the
# call starts tried, and how far a call's closing parenthesis is looked for.
MAX_ANSWER_CHARS = 20_000
MAX_CALL_STARTS = 50
MAX_CALL_CHARS = 2_000
_TOOL_CALL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"```[\w-]*\n(.*?)```", re.DOTALL)
_CALL_START = re.compile(r"(?<![\w.])([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)\s*\(")


def _call_from_json(data: Any) -> tuple[str, dict] | None:
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("tool_calls"), list) and data["tool_calls"]:
        return _call_from_json(data["tool_calls"][0])
    if isinstance(data.get("function"), dict):
        data = data["function"]
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    arguments = _arguments_of(data.get("arguments", data.get("parameters")))
    return name.strip(), arguments if isinstance(arguments, dict) else {}


def _json_objects(text: str) -> Iterable[Any]:
    """Every JSON object that starts at a '{' of `text`, in order."""
    decoder = json.JSONDecoder()
    at = text.find("{")
    while at >= 0:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        yield value
        at = text.find("{", end)


def _literal(node: ast.AST) -> Any:
    value = ast.literal_eval(node)
    if isinstance(value, tuple):
        return list(value)
    return value


def _python_call(text: str, tools: list[dict]) -> tuple[str, dict] | None:
    """The first `name(arg=value, ...)` in `text` whose arguments are literals; an offered name is looked for first."""
    offered = defined_names(tools)
    starts = list(_CALL_START.finditer(text))
    starts.sort(key=lambda match: (match.group(1) not in offered, match.start()))
    for match in starts[:MAX_CALL_STARTS]:
        closing, limit = match.end() - 1, match.end() + MAX_CALL_CHARS
        while True:
            closing = text.find(")", closing + 1, limit)
            if closing < 0:
                break
            try:
                node = ast.parse(text[match.start(1):closing + 1].strip(), mode="eval").body
            except SyntaxError:
                continue
            if not isinstance(node, ast.Call):
                break
            try:
                positional = [_literal(arg) for arg in node.args]
                keywords = {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg}
            except (ValueError, TypeError, SyntaxError, RecursionError):
                break
            name = match.group(1)
            parameters = _parameter_order(tools, name)
            for index, value in enumerate(positional):
                keywords.setdefault(parameters[index] if index < len(parameters) else f"<positional {index + 1}>", value)
            return name, keywords
    return None


def _parameter_order(tools: list[dict], name: str) -> list[str]:
    for tool in tools:
        function = tool.get("function") or {}
        if function.get("name") == name:
            return list(((function.get("parameters") or {}).get("properties") or {}).keys())
    return []


def parse_tool_call(text: str | None, tools: list[dict] | None = None) -> tuple[str, dict] | None:
    """(name, arguments) of the first call in a model's answer: a `<tool_call>` block, a JSON object with a name,
    or Python call syntax (module docstring); None when the answer holds none."""
    text = re.sub(r"<think>.*?</think>", "", (text or "")[:MAX_ANSWER_CHARS], flags=re.DOTALL).strip()
    if not text:
        return None
    tools = tools or []
    for block in _TOOL_CALL_TAG.findall(text):
        for data in _json_objects(block):
            found = _call_from_json(data)
            if found:
                return found
        found = _python_call(block, tools)
        if found:
            return found
    for data in _json_objects(text):
        found = _call_from_json(data)
        if found:
            return found
    for block in _FENCE.findall(text) + [text]:
        found = _python_call(block, tools)
        if found:
            return found
    return None


def same_value(given: Any, expected: Any) -> bool:
    """Equal as arguments: numbers by value (a bool is not a number), strings exactly (outer spaces aside), lists
    and objects element by element."""
    if isinstance(given, bool) or isinstance(expected, bool):
        return given is expected
    if isinstance(given, (int, float)) and isinstance(expected, (int, float)):
        return float(given) == float(expected)
    if isinstance(given, str) and isinstance(expected, str):
        return given.strip() == expected.strip()
    if isinstance(given, list) and isinstance(expected, list):
        return len(given) == len(expected) and all(same_value(a, b) for a, b in zip(given, expected))
    if isinstance(given, dict) and isinstance(expected, dict):
        return given.keys() == expected.keys() and all(same_value(given[k], expected[k]) for k in given)
    return given == expected


@dataclass
class CallScore:
    score: float
    detail: str  # "" for an exact call; else what was wrong


def score_tool_call(found: tuple[str, dict] | None, expected: tuple[str, dict]) -> CallScore:
    """A model's call against the reference call, by the rule of the module docstring."""
    name, arguments = expected
    if found is None:
        return CallScore(0.0, "no call found in the answer")
    if found[0] != name:
        return CallScore(0.0, f"called {found[0]!r}, not {name!r}")
    given = found[1]
    missing = [key for key in arguments if key not in given]
    wrong = [key for key in arguments if key in given and not same_value(given[key], arguments[key])]
    unknown = [key for key in given if key not in arguments]
    matched = len(arguments) - len(missing) - len(wrong)
    score = (1 + matched) / (1 + len(arguments) + len(unknown))
    parts = [f"{label}: {', '.join(keys)}" for label, keys in (("missing", missing), ("wrong value", wrong),
                                                                ("not in the reference", unknown)) if keys]
    return CallScore(round(score, 4), "; ".join(parts))
