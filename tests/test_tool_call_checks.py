"""Tool calls checked, shown and edited (issue 27): the documented signatures (tools/docs/signatures.py), the
tool-call check (tools/quality/tool_calls.py), the other checks not misfiring on tool-call items, and the
Dataset page's item view and form showing calls, results and tools and keeping them through a save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schema.document import DocumentSlice
from tools.docs.docsets import slice_docset
from tools.docs.signatures import (Parameter, argument_problems, check_arguments, documented_functions, find_documented,
                                   tool_definition)
from tools.docs.slicing import slice_markdown

REPO = Path(__file__).resolve().parent.parent
TIDEWATER = REPO / "workdir" / "docs" / "tidewater"


def functions_of(markdown: str, source: str = "api.md", max_tokens: int = 800) -> dict:
    return documented_functions(slice_markdown(markdown, source, max_tokens))


# ------------------------------------------------------------------ signatures


def test_the_sample_library_shows_its_api_and_not_its_tutorial_functions():
    functions = documented_functions(slice_docset(TIDEWATER)[0])
    assert {"Tide", "Tide.run", "Tide.add_stage", "Tide.validate", "Stage", "Stage.call", "RetryPolicy",
            "RetryPolicy.none", "tidewater.configure"} <= set(functions)
    # `def word_count(text: str) -> int: return ...` is a tutorial's stage function, not the library's.
    assert not {"word_count", "load", "greet", "fetch_page", "publish"} & set(functions)
    run = functions["Tide.run"]
    assert [(p.name, p.required, p.default) for p in run.parameters] == [
        ("inputs", False, "None"), ("max_workers", False, "4"), ("dry_run", False, "False"), ("timeout", False, "None")]
    # Types come from the parameter table where the signature has none; descriptions from the docs' prose.
    assert run.parameters[1].annotation == "int" and "thread pool" in run.parameters[1].description
    assert run.description == "Runs the tide and returns a TideResult."
    tide = functions["Tide"]
    assert [p.name for p in tide.parameters if p.required] == ["name"]
    assert tide.description.startswith("A Tide is an ordered chain of stages.")
    assert functions["Stage"].description == "A Stage wraps a single-argument callable."


def test_signature_blocks_definitions_headings_and_code_spans_are_read_with_python_s_parser():
    functions = functions_of("""# API

```python
resize(image, width: int, height: int = 0, *, keep_ratio=True, **options) -> Image
```

Resizes an image.

```python
class Canvas:
    def __init__(self, size: tuple[int, int]):
        \"\"\"A blank canvas.\"\"\"

    def draw(self, shape, color="black"): ...
```

## `crop(image, box)`

Cuts a box out of an image.

Use `blur(image, radius=2.0)` for soft edges, or call `sharpen()` later.

```python
@stage(map=True)
def helper(x):
    return x * 2

result = resize(img, 64)
Tide("orders")
```
""")
    assert set(functions) == {"resize", "Canvas", "Canvas.draw", "crop", "blur"}
    resize = functions["resize"]
    assert [(p.name, p.required, p.annotation) for p in resize.parameters] == [
        ("image", True, None), ("width", True, "int"), ("height", False, "int"), ("keep_ratio", False, None)]
    assert resize.accepts_any_keyword and resize.strength == 3
    assert resize.description == "Resizes an image."
    assert [p.name for p in functions["Canvas"].parameters] == ["size"]  # self dropped, __init__ is the class
    assert [p.name for p in functions["Canvas.draw"].parameters] == ["shape", "color"]
    assert functions["crop"].strength == 2 and functions["crop"].description == "Cuts a box out of an image."
    assert functions["blur"].strength == 1


def test_headings_and_prose_with_a_remark_in_parentheses_are_no_signatures():
    functions = functions_of("""# Examples (advanced)

## Installation (optional)

Install it (see `pip install tidewater`), then run `tw run tides/orders.py:tide` (a CLI call).

```python
print("no signature here")
```
""")
    assert functions == {}


def test_a_stronger_showing_wins_and_equal_ones_keep_the_first():
    functions = functions_of("""# Guide

Call `run(data, verbose=False)` to start.

## run(data, *, workers=4)

Runs it.

Or `run(data, retries=3)` as prose says.
""")
    assert [p.name for p in functions["run"].parameters] == ["data", "workers"]


def test_typescript_parameters_and_javascript_functions():
    functions = functions_of("""# JS

```ts
fetchRows(table: string, limit?: number, ...columns: string[]): Promise<Row[]>
```

```js
function connect(url, options = {}) {}
function example(a) { return a + 1; }
```
""")
    rows = functions["fetchRows"]
    assert [(p.name, p.required, p.annotation) for p in rows.parameters] == [("table", True, "string"), ("limit", False, "number")]
    assert [(p.name, p.required) for p in functions["connect"].parameters] == [("url", True), ("options", False)]
    assert "example" not in functions


def test_a_signature_cut_by_the_slicer_keeps_its_table_and_description_across_slices():
    filler = "\n\n".join(f"Paragraph {n} about nothing in particular, long enough to fill a slice." for n in range(12))
    markdown = f"""# Ref

## Pool

A `Pool` holds workers.

{filler}

### Constructor

```python
Pool(size, name=None)
```

| Name | Type | Description |
|------|------|-------------|
| `size` | `int` | How many workers. |
| `name` | `str \\| None` | A label. |
"""
    pieces = slice_markdown(markdown, "pool.md", 60)
    assert len(pieces) > 2
    pool = documented_functions(pieces)["Pool"]
    assert pool.description == "A Pool holds workers."
    assert [(p.annotation, p.description) for p in pool.parameters] == [("int", "How many workers."), ("str | None", "A label.")]
    assert tool_definition(pool)["function"]["parameters"]["properties"]["name"] == {"type": "string", "description": "A label.", "default": None}


def test_tool_definition_is_openai_s_shape_with_json_schema_types():
    functions = functions_of("""# API

```python
send(to: str, count: int, ratio: float = 0.5, flags: list[str] | None = None, meta: dict = {}, ok: bool = True,
     mode: Literal["a", "b"] = "a", when=datetime.now(), either: int | str = 1, anything: Any = None)
```

Sends things.
""")
    definition = tool_definition(functions["send"])
    assert definition["type"] == "function" and definition["function"]["name"] == "send"
    assert definition["function"]["description"] == "Sends things."
    schema = definition["function"]["parameters"]
    assert schema["type"] == "object" and schema["required"] == ["to", "count"]
    props = schema["properties"]
    assert props["to"] == {"type": "string"} and props["count"] == {"type": "integer"}
    assert props["ratio"] == {"type": "number", "default": 0.5}
    assert props["flags"] == {"type": "array", "default": None}
    assert props["meta"] == {"type": "object", "default": {}} and props["ok"] == {"type": "boolean", "default": True}
    assert props["mode"] == {"default": "a"}  # Literal: no clear type
    assert props["when"] == {}  # a default that is not a literal is left out
    assert props["either"] == {"type": ["integer", "string"], "default": 1}
    assert props["anything"] == {"default": None}
    json.dumps(definition)  # JSON-able as a whole


def test_check_arguments_names_unknown_and_missing_arguments_in_both_languages():
    run = functions_of("""# API

```python
run(data, *, workers=4)
```
""")["run"]
    assert argument_problems(run, {"data": 1}) == []
    problems = argument_problems(run, {"workres": 2})
    assert [(p.kind, p.argument) for p in problems] == [("unknown", "workres"), ("missing", "data")]
    english = check_arguments(run, {"workres": 2}, lang="en")
    assert english[0] == "run takes no argument 'workres' (documented signature: run(data, workers))"
    assert "missing" in english[1] and "'data'" in english[1]
    chinese = check_arguments(run, {"workres": 2}, lang="zh")
    assert "没有参数" in chinese[0] and "必需参数" in chinese[1]
    any_keyword = functions_of("# API\n\n```python\nlog(message, **fields)\n```\n")["log"]
    assert argument_problems(any_keyword, {"message": "m", "user": "u"}) == []


def test_find_documented_matches_tool_names_that_cannot_hold_a_dot():
    functions = functions_of("""# API

```python
Tide.run(inputs=None)
Stage.run(value)
Tide(name)
```
""")
    assert find_documented(functions, "Tide.run").name == "Tide.run"
    assert find_documented(functions, "tide_run").name == "Tide.run"
    assert find_documented(functions, "tidewater.Tide").name == "Tide"
    assert find_documented(functions, "run") is None  # two functions end with .run: ambiguous
    assert find_documented(functions, "resize") is None


def test_hostile_input_stays_linear_and_unparsed():
    # An unclosed parenthesis in every line: each scan stops at MAX_SIGNATURE_CHARS, nothing is found.
    text = "# API\n\n```python\n" + "f(a, [b, (c,\n" * 3000 + "```\n"
    pieces = [DocumentSlice(slice_id="x", source="a.md", heading_path=[], text=text, start_line=0, end_line=1, tokens=1)]
    assert documented_functions(pieces) == {}
    assert Parameter("a", True, None, None).description == ""


# ------------------------------------------------------------------ the tool-call check

from schema.dataset import validate_messages  # noqa: E402 - the check tests' own imports
from tools.quality.answers import answer_findings, message_order_findings  # noqa: E402
from tools.quality.checks import run_checks  # noqa: E402
from tools.quality.grounding import grounding_findings  # noqa: E402
from tools.quality.kinds import KINDS  # noqa: E402
from tools.quality.language import item_languages  # noqa: E402
from tools.quality.sources import load_doc_context  # noqa: E402
from tools.quality.tool_calls import tool_call_findings  # noqa: E402
from frontend.cli.quality import describe_finding  # noqa: E402


@pytest.fixture(scope="module")
def tidewater():
    return load_doc_context(TIDEWATER, "tidewater")


def call_item(*calls, tools=None, final="Done: the tide ran.", question="Run the orders tide with 8 workers.",
              item_id="i1", provenance=None, results=True) -> dict:
    """An item calling `calls` ((name, arguments) pairs, arguments a dict or raw text) in one assistant turn."""
    messages = [{"role": "user", "content": question},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": f"c{n}", "type": "function", "function": {"name": name, "arguments": arguments}}
                    for n, (name, arguments) in enumerate(calls)]}]
    messages += [{"role": "tool", "tool_call_id": f"c{n}", "content": '{"status": "succeeded"}'}
                 for n in range(len(calls) if results else 0)]
    if final:
        messages.append({"role": "assistant", "content": final})
    item = {"id": item_id, "messages": validate_messages(messages), "provenance": provenance or {}}
    if tools is not None:
        item["tools"] = [{"type": "function", "function": {"name": name}} for name in tools]
    return item


def kinds_of(findings: list[dict]) -> list[tuple[str, str]]:
    return [(f["kind"], f["detail"].get("argument") or f["detail"]["name"]) for f in findings]


def test_a_documented_call_with_documented_arguments_has_no_finding(tidewater):
    item = call_item(("Tide.run", {"max_workers": 8, "dry_run": True}), ("tide_run", {}), ("Tide", {"name": "orders"}),
                     tools=["Tide.run", "tide_run", "Tide"])
    assert tool_call_findings(item, tidewater) == []


def test_unknown_and_missing_arguments_against_the_documented_signature(tidewater):
    item = call_item(("Tide.run", {"workers": 8}), ("Tide", {"stages": []}))
    findings = tool_call_findings(item, tidewater)
    assert kinds_of(findings) == [("tool_call_unknown_argument", "workers"), ("tool_call_missing_argument", "name")]
    assert findings[0]["where"] == {"message": 1, "field": "tool_calls", "call": 0}
    assert findings[1]["where"]["call"] == 1
    assert findings[0]["detail"]["signature"] == "Tide.run(inputs, max_workers, dry_run, timeout)"


def test_an_invented_function_and_an_invented_tool_are_told_apart(tidewater):
    item = call_item(("Tide.explode", {}), ("summarize", {"text": "x"}), ("flush_cache", {}),
                     tools=["Tide.explode", "summarize", "Tide.run"])
    findings = tool_call_findings(item, tidewater)
    # Tide.explode: the tools define it, the docs do not. summarize: "summarize" is no code of the docs.
    # flush_cache: neither the tools nor the docs define it.
    assert kinds_of(findings) == [("tool_call_tool_invented", "Tide.explode"), ("tool_call_tool_invented", "summarize"),
                                  ("tool_call_undefined", "flush_cache"), ("tool_call_invented", "flush_cache")]
    # A name the docs use as code without showing its signature is known, with no argument check.
    assert tool_call_findings(call_item(("TideResult", {"x": 1})), tidewater) == []


def test_a_call_of_a_name_not_in_the_item_s_tools_and_arguments_not_an_object_without_docs():
    item = call_item(("Tide.run", {}), ("Tide.validate", {}), tools=["Tide.run"])
    # The store writes arguments as the JSON text of an object; an edited journal may hold anything.
    item["messages"][1]["tool_calls"][0]["function"]["arguments"] = "[1, 2]"
    item["messages"][1]["tool_calls"][1]["function"]["arguments"] = "{not json"
    assert kinds_of(tool_call_findings(item, None)) == [
        ("tool_call_bad_arguments", "Tide.run"), ("tool_call_bad_arguments", "Tide.validate"),
        ("tool_call_undefined", "Tide.validate")]
    # An item without tools defines nothing to check a call against.
    assert tool_call_findings(call_item(("anything", {})), None) == []


def test_every_tool_call_kind_is_a_row_with_both_languages_of_label_and_detail():
    fields = {"name": "Tide.run", "tools": "Tide", "argument": "workers", "signature": "Tide.run(inputs)"}
    for kind in (k for k in KINDS if k.startswith("tool_call_")):
        assert KINDS[kind].check == "tool_calls"
        for lang in ("zh", "en"):
            line = describe_finding({"item_id": "i1", "kind": kind, "where": {"message": 1, "field": "tool_calls"},
                                     "detail": fields}, lang)
            assert "quality." not in line and "Tide.run" in line


def test_the_other_checks_do_not_misfire_on_a_tool_calling_item(tidewater):
    item = call_item(("Tide.run", {"max_workers": 8}), provenance={"source_doc": "api/pipeline.md",
                                                                    "heading_path": ["Pipeline API reference"]})
    assert message_order_findings(item) == []
    assert answer_findings(item) == []  # the calls-only turn is not "empty" nor "short"
    # A conversation may end on its calls (the model is taught to call); parallel calls take one result each.
    assert message_order_findings(call_item(("Tide.run", {}), final=None, results=False)) == []
    parallel = call_item(("Tide.run", {}), ("Tide.validate", {}))
    assert message_order_findings(parallel) == []
    broken = {**parallel, "messages": parallel["messages"][:3] + parallel["messages"][4:]}
    assert [f["detail"]["problem"] for f in message_order_findings(broken)] == ["expected_tool"]
    # Language: a Chinese conversation whose first assistant turn only calls is told by its prose answer.
    chinese = call_item(("Tide.run", {"max_workers": 8}), question="用 8 个线程运行 orders 这个潮汐任务。",
                        final="已完成:任务已经用 8 个线程运行成功。")
    assert item_languages(chinese)[:2] == ("zh", "zh")
    # Grounding measures the calls too: a calls-only answer with the docs' names is grounded.
    scores: dict = {}
    grounded = call_item(("Tide.run", {"max_workers": 4, "dry_run": False}), final=None, results=False,
                         provenance={"source_doc": "api/pipeline.md", "heading_path": ["Pipeline API reference"]})
    assert grounding_findings(grounded, tidewater, scores) == [] and scores["i1"] == 1.0


def test_run_checks_reports_tool_call_findings_with_the_others(tidewater):
    items = [call_item(("Tide.run", {"workers": 8}), item_id="a"), call_item(("Tide.run", {"max_workers": 2}), item_id="b")]
    result = run_checks(items, set(), tidewater, parallel=False)
    assert result["summary"]["by_kind"].get("tool_call_unknown_argument") == 1
    assert "tool_calls" in result["timings_s"]
    assert not {"empty_answer", "short_answer", "message_order"} & set(result["summary"]["by_kind"])
    without_docs = run_checks(items, set(), None, parallel=False)
    assert "tool_call_unknown_argument" not in without_docs["summary"]["by_kind"]


# ------------------------------------------------------------------ the item view and form

import global_var  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from frontend.web import dataset_views as views  # noqa: E402
from frontend.web import datasets_tab as tab  # noqa: E402

SLOTS = views.MESSAGE_SLOTS
TOOLS = [{"type": "function", "function": {"name": "Tide.run", "description": "Runs the tide.",
                                           "parameters": {"type": "object", "properties": {"max_workers": {"type": "integer"}}}}}]


@pytest.fixture
def calls_dataset(workdir):
    store = global_var.datasets()
    store.create("calls")
    messages = [{"role": "user", "content": "Run it with 8 workers."},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "Tide.run", "arguments": {"max_workers": 8}}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "succeeded"}'},
                {"role": "assistant", "content": "It ran: status succeeded.", "weight": 1}]
    store.append_items("calls", [(messages, {"origin": "imported:x.jsonl"}, {"tools": TOOLS})])
    return store


def _form_values(messages):
    roles = [m["role"] for m in messages] + ["user"] * (SLOTS - len(messages))
    contents = [m["content"] for m in messages] + [""] * (SLOTS - len(messages))
    return roles + contents


def test_the_item_view_shows_calls_results_and_tools_readably(calls_dataset):
    ids = tab.show_page("en", "calls", 1, 20)[3]
    out = tab.open_item_view("en", "calls", ids, SimpleNamespace(index=[0, 0]))
    conversation = out[5]
    assert "→ calls `Tide.run` (call id `call_1`) with arguments:" in conversation
    assert '```json\n{\n  "max_workers": 8\n}\n```' in conversation  # pretty JSON
    assert "**Tool result** · what `Tide.run` returned (call id `call_1`):" in conversation
    assert "Tools shown to the model (1)" in conversation and "`Tide.run` — Runs the tide." in conversation
    assert '"type": "integer"' in conversation
    # The form: a tool slot with the tool role, the calls listed read-only beside the note.
    form = out[7:7 + tab.FORM_OUTPUTS]
    assert form[0] == 4 and form[1 + SLOTS + 2]["value"] == "tool"
    calls_box, calls_list = form[-2:]
    assert calls_box["visible"] is True
    assert calls_list["value"].splitlines() == ['- #2 → `Tide.run` `{"max_workers": 8}`', '- #3 ← `call_1` `{"status": "succeeded"}`']
    chinese = tab.open_item_view("zh", "calls", ids, SimpleNamespace(index=[0, 0]))[5]
    assert "→ 调用 `Tide.run`" in chinese and "**工具结果**" in chinese and "向模型提供的工具(1 个)" in chinese


def test_a_save_from_the_form_keeps_calls_results_weight_and_tools(calls_dataset):
    ids = tab.show_page("en", "calls", 1, 20)[3]
    out = tab.open_item_view("en", "calls", ids, SimpleNamespace(index=[0, 0]))
    item_id, text, version, synced = out[0], out[1], out[2], out[3]
    messages = json.loads(text)
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"max_workers": 8}'
    messages[3]["content"] = "It ran, edited in the form."
    values = _form_values(messages)
    json_text, new_synced = tab.form_to_json(4, *values, synced)
    edited = json.loads(json_text)
    assert edited[1]["tool_calls"] == messages[1]["tool_calls"] and edited[2]["tool_call_id"] == "call_1"
    assert edited[3] == {"role": "assistant", "content": "It ran, edited in the form.", "weight": 1}
    result = tab.save_item_form("en", "calls", item_id, json_text, new_synced, 4, 1, 20, version, [], None, None, "none", *values)
    assert result[0] == f"Item {item_id} saved."
    saved = calls_dataset.get_item("calls", item_id)
    assert saved["messages"][1]["tool_calls"][0]["function"]["name"] == "Tide.run"
    assert saved["messages"][2]["tool_call_id"] == "call_1" and saved["messages"][3]["weight"] == 1
    assert saved["tools"] == TOOLS
    # Saving straight from the form with the JSON view as opened (the form's own path) keeps them too.
    values = _form_values(saved["messages"])
    values[SLOTS + 3] = "Second edit."
    again = tab.save_item_form("en", "calls", item_id, json_text, json_text, 4, 1, 20, result[5], [], None, None, "none", *values)
    saved = calls_dataset.get_item("calls", item_id)
    assert saved["messages"][3]["content"] == "Second edit." and saved["messages"][1]["tool_calls"] and saved["tools"] == TOOLS
    assert "→ calls `Tide.run`" in again[7]
    # A slot turned into a user message drops the calls it cannot carry (the store would refuse them).
    values = _form_values(saved["messages"])
    values[1] = "user"
    assert "tool_calls" not in json.loads(tab.form_to_json(4, *values, json_text)[0])[1]


def test_adding_a_message_after_calls_or_results_adds_the_assistant_turn(calls_dataset):
    messages = calls_dataset.items("calls")[0]["messages"][:3]
    synced = views.messages_json(messages)
    added = tab.add_message("en", 3, *_form_values(messages), synced)
    assert [m["role"] for m in json.loads(added[0])] == ["user", "assistant", "tool", "assistant"]
    assert json.loads(added[0])[1]["tool_calls"]  # kept through the add
    removed = tab.remove_message("en", 3, *_form_values(messages), synced)
    assert json.loads(removed[0])[1]["tool_calls"] and len(json.loads(removed[0])) == 2
    # The JSON view filling the form brings the calls' list with it; a form without calls hides it.
    form = tab.json_to_form(synced)
    assert form[-2]["visible"] is True and "Tide.run" in form[-1]["value"]
    plain = tab.json_to_form(json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]))
    assert plain[-2]["visible"] is False and plain[-1]["value"] == ""
    assert len(tab.json_to_form("{broken")) == 1 + tab.FORM_OUTPUTS


def test_markdown_in_arguments_cannot_break_out_of_their_block():
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "c`1", "type": "function", "function": {"name": "f", "arguments": '{"code": "```\\n# title"}'}}]}]
    text = views.conversation_markdown(messages, "en")
    assert "```` json" not in text and "````json\n" in text and "`` c`1 ``" in text
