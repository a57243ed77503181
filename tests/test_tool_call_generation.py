"""Tool-call conversations from the docs (tools/generation/tool_calls.py) through the generation engine and the
OpenAI test server: the tools offered are the slice's documented functions, calls that do not fit are dropped and
counted, a reply with none left is corrected once then fails, runs resume; the CLI flag and the tab's field."""

from __future__ import annotations

import json
from collections import Counter

import gradio as gr
import pytest

import global_var
import main
from schema.dataset import validate_messages
from schema.document import DocumentSlice
from schema.tool_calls import calls_of
from tests.openai_test_server import (OpenAITestServer, RequestInfo, default_responder, is_exam_request,
                                      is_phrasing_request, is_tool_call_request, offered_tools_in, tool_call_responder)
from tests.test_generation import VARIABLES, provider_for
from tests.test_variants import recording
from tools.core.errors import UserError
from tools.docs.docsets import slice_docset
from tools.docs.signatures import DocumentedFunction, Parameter
from tools.generation.engine import (UNIT_DONE, UNIT_FAILED, GenerationSettings, prepare_generation, run_generation,
                                     tool_call_units, unit_outcomes)
from tools.generation.tool_calls import (call_problems, offered_tools, parse_tool_conversations, slice_functions,
                                         tool_call_messages, tool_calls_line)
from tools.llm.replies import OutputError


def sample_slices(with_functions: int = 2, without: int = 1) -> list[DocumentSlice]:
    """The first slices of the sample doc set that show function signatures, and some that do not."""
    slices, _ = slice_docset(global_var.workdir().docs / "tidewater", 800)
    documented = [s for s in slices if slice_functions(s)]
    plain = [s for s in slices if not slice_functions(s)]
    return documented[:with_functions] + plain[:without]


def prepare(server, dataset="ds", slices=None, **settings):
    fast = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "concurrency": 4, "pairs_per_call": 1, "tool_calls": 3}
    chosen = slices if slices is not None else sample_slices()
    return prepare_generation(global_var.workspace(), "tidewater", dataset, provider_for(server), "default-en", VARIABLES,
                              GenerationSettings(**{**fast, **settings}), slice_ids=[s.slice_id for s in chosen])


def tool_items(dataset: str) -> list[dict]:
    return [item for item in global_var.datasets().load(dataset).items.values() if item.get("tools")]


# ---------------------------------------------------------------- runs


def test_a_run_writes_conversations_that_call_the_documented_functions(workdir):
    chosen = sample_slices(2, 1)
    respond = recording()
    with OpenAITestServer(responder=respond) as server:
        prepared = prepare(server, slices=chosen)
        assert ("toolgen.planned", {"slices": 2, "count": 3, "docs": "tidewater"}) in prepared.notes
        final = run_generation(prepared)
    # One tool-call unit per slice that shows a signature, none for the slice that shows none.
    tool_units = [u for u in prepared.units if u.key.endswith(":tool-calls")]
    assert [u.slice.slice_id for u in tool_units] == [s.slice_id for s in chosen[:2]]
    assert final.status == "finished" and final.failed_units == 0 and final.done_units == len(prepared.units)
    items = tool_items("ds")
    assert len(items) == 6 and final.tool_calls == {"conversations": 6, "calls": 6, "dropped": 0, "reasons": {}}
    by_slice = {s.slice_id: s for s in chosen}
    for item in items:
        unit = item["provenance"]["unit"]
        functions = slice_functions(by_slice[unit.rsplit(":", 1)[0]])
        assert item["tools"] == offered_tools(functions)  # the definitions offered, from the docs, not the reply
        (name, arguments), = calls_of(item["messages"])
        assert call_problems({f.name: f for f in functions}[name], arguments) == []
        assert item["provenance"]["variant"] == f"tool_call:{name}"
        assert validate_messages(item["messages"]) == item["messages"]
    # Every other conversation carries its result and the final answer; the others end on the call.
    assert Counter(len(item["messages"]) for item in items) == {4: 4, 2: 2}
    # The request offered exactly the slice's tools, in English (the slice's language), with the template's variables.
    request = next(info for info in respond.seen if is_tool_call_request(info))
    assert "Write exactly 3 conversations" in request.messages[0]["content"]
    assert "Context: project_name = Tidewater" in request.prompt
    assert offered_tools_in(request.prompt) in [offered_tools(slice_functions(s)) for s in chosen[:2]]
    # Counted in the stored summary, and said in a line.
    summary = global_var.datasets().load("ds").meta["generation"]
    assert summary["tool_calls"] == final.tool_calls
    assert tool_calls_line(summary["tool_calls"]) == "Tool calls: 6 conversations kept (6 calls), 0 dropped"


@pytest.mark.parametrize("invalid, reason", [("unknown_function", "unknown_function"), ("bad_arguments", "bad_arguments")])
def test_calls_that_do_not_fit_the_docs_are_dropped_and_counted(workdir, invalid, reason):
    with OpenAITestServer(responder=tool_call_responder(invalid)) as server:
        prepared = prepare(server)
        final = run_generation(prepared)
    assert final.status == "finished" and final.failed_units == 0
    # The first of each unit's three conversations is dropped; the two others are kept.
    assert final.tool_calls["conversations"] == 4 and final.tool_calls["dropped"] == 2
    assert final.tool_calls["reasons"] == {reason: 2}
    view = global_var.datasets().load("ds")
    events = [e for e in view.events if e.get("type") == UNIT_DONE and e["unit"].endswith(":tool-calls")]
    assert [(e["items"], e["dropped"], e["dropped_reasons"]) for e in events] == [(2, 1, {reason: 1})] * 2
    for item in tool_items("ds"):
        assert all(not name.startswith("not_offered_") and "no_such_parameter" not in arguments
                   for name, arguments in calls_of(item["messages"]))
    label = {"unknown_function": "called a function not offered", "bad_arguments": "arguments do not fit the signature"}
    assert f"2 dropped ({label[reason]} 2)" in tool_calls_line(final.tool_calls)


def test_a_reply_with_no_fitting_call_is_corrected_once_then_the_unit_fails_until_a_resume(workdir):
    respond = recording(tool_call_responder("unknown_function", every=True))
    with OpenAITestServer(responder=respond) as server:
        prepared = prepare(server)
        final = run_generation(prepared)
    assert final.status == "finished" and final.failed_units == 2 and final.failures == {"invalid_tool_calls": 2}
    asked = [info for info in respond.seen if is_tool_call_request(info)]
    assert len(asked) == 4  # each unit: the request, then the correction round
    corrections = [info.messages[-1]["content"] for info in asked if len(info.messages) > 2]
    assert len(corrections) == 2 and all("is not one of the offered functions" in text for text in corrections)
    assert tool_items("ds") == []
    failed = [e for e in global_var.datasets().load("ds").events if e.get("type") == UNIT_FAILED]
    assert {e["reason"] for e in failed} == {"invalid_tool_calls"}

    # A resume tries the failed units again, and only them.
    respond = recording()
    with OpenAITestServer(responder=respond) as server:
        again = run_generation(prepare(server))
    assert again.skipped_units == len(prepared.units) - 2 and again.done_units == 2
    assert len(respond.seen) == 2 and all(is_tool_call_request(info) for info in respond.seen)
    assert len(tool_items("ds")) == 6
    planned = {unit.key for unit in prepared.units}
    assert unit_outcomes(global_var.datasets().load("ds").events, planned) == (len(planned), 0)

    # A finished run has nothing left to ask.
    with OpenAITestServer() as server:
        done = run_generation(prepare(server))
        assert server.stats["requests"] == 0 and done.skipped_units == len(prepared.units)
    assert len(tool_items("ds")) == 6


def test_a_repeated_request_is_a_duplicate_not_a_second_item(workdir):
    def same_request(info: RequestInfo) -> str:
        reply = json.loads(default_responder(info))
        if is_tool_call_request(info):
            for conversation in reply["conversations"]:
                conversation["user"] = "Run the tide, please."
        return json.dumps(reply)

    with OpenAITestServer(responder=same_request) as server:
        final = run_generation(prepare(server))
    assert len(tool_items("ds")) == 1 and final.duplicates == 5


def test_no_function_in_the_chosen_slices_plans_no_tool_call_unit_and_says_so(workdir):
    with OpenAITestServer() as server:
        prepared = prepare(server, slices=sample_slices(0, 2))
    assert ("toolgen.no_functions", {"slices": 0, "count": 3, "docs": "tidewater"}) in prepared.notes
    assert not tool_call_units(prepared.slices) and len(prepared.units) == 2


def test_a_chinese_slice_is_asked_in_chinese(workdir):
    folder = global_var.workdir().docs / "zhlib"
    folder.mkdir()
    (folder / "api.md").write_text(
        "# 接口\n\n`resize` 把图片缩放到给定的宽度和高度,返回新的图片。宽度和高度都以像素计,必须是正整数。\n\n"
        "```python\ndef resize(width: int, height: int, keep_ratio: bool = False): ...\n```\n", encoding="utf-8")
    respond = recording()
    with OpenAITestServer(responder=respond) as server:
        prepared = prepare_generation(global_var.workspace(), "zhlib", "zh", provider_for(server), "default", VARIABLES,
                                      GenerationSettings(tool_calls=2, pairs_per_call=1, backoff_base_s=0.01))
        final = run_generation(prepared)
    asked = next(info for info in respond.seen if is_tool_call_request(info))
    assert "恰好写 2 段对话" in asked.messages[0]["content"] and "工具(JSON):" in asked.prompt
    assert offered_tools_in(asked.prompt)[0]["function"]["parameters"]["properties"]["width"] == {"type": "integer"}
    assert final.tool_calls["conversations"] == 2 and not final.failures


# ---------------------------------------------------------------- a reply's conversations


RESIZE = DocumentedFunction(name="img.resize", description="Resize.", slice_id=None, accepts_any_keyword=False,
                            parameters=(Parameter("width", True, "int", None), Parameter("height", True, "int", None),
                                        Parameter("mode", False, "str | None", "None")))
OPTIONS = DocumentedFunction(name="img.options", description="", slice_id=None, accepts_any_keyword=True,
                             parameters=(Parameter("name", True, None, None),))
FUNCTIONS = {f.name: f for f in (RESIZE, OPTIONS)}


def conversation(**fields) -> str:
    entry = {"user": "Make it 64 by 32.", "calls": [{"name": "img.resize", "arguments": {"width": 64, "height": 32}}]}
    entry.update(fields)
    return json.dumps({"conversations": [entry]})


def test_a_conversation_fits_when_every_call_fits_the_signature():
    parsed = parse_tool_conversations(conversation(results=['{"ok": true}'], answer="Done."), FUNCTIONS)
    (messages, called), = parsed.conversations
    assert called == "img.resize" and [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"width": 64, "height": 32}'
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true}'}
    # Arguments as JSON text, a documented None passed as null, parallel calls, a **kwargs function's any argument.
    two = [{"name": "img.resize", "arguments": '{"width": 1, "height": 2, "mode": null}'},
           {"name": "img.options", "arguments": {"name": "x", "anything": [1]}}]
    parsed = parse_tool_conversations(conversation(calls=two, results=["a", {"b": 1}], answer="Both done."), FUNCTIONS)
    (messages, _), = parsed.conversations
    assert [m["tool_call_id"] for m in messages if m["role"] == "tool"] == ["call_1", "call_2"]
    assert messages[3]["content"] == '{"b": 1}' and [name for name, _ in calls_of(messages)] == ["img.resize", "img.options"]
    # Results without an answer, or an answer without a result per call: the item ends on its calls.
    for fields in ({"results": ["r"]}, {"answer": "Done."}, {"results": ["r", "s"], "answer": "Done."}):
        (messages, _), = parse_tool_conversations(conversation(**fields), FUNCTIONS).conversations
        assert [m["role"] for m in messages] == ["user", "assistant"]


@pytest.mark.parametrize("call, reason, detail", [
    ({"name": "img.crop", "arguments": {}}, "unknown_function", "'img.crop' is not one of the offered functions"),
    ({"name": "img.resize", "arguments": {"width": 64}}, "bad_arguments", "height"),
    ({"name": "img.resize", "arguments": {"width": 64, "height": 32, "depth": 3}}, "bad_arguments", "depth"),
    ({"name": "img.resize", "arguments": {"width": "64", "height": 32}}, "bad_arguments", "'width' must be of type integer"),
    ({"name": "img.resize", "arguments": {"width": True, "height": 32}}, "bad_arguments", "'width' must be of type integer"),
    ({"name": "img.resize", "arguments": "[64, 32]"}, "bad_arguments", "must be a JSON object"),
])
def test_a_call_that_does_not_fit_is_dropped_with_its_reason(call, reason, detail):
    good = {"user": "Another one.", "calls": [{"name": "img.resize", "arguments": {"width": 1, "height": 1}}]}
    reply = json.dumps({"conversations": [{"user": "Do it.", "calls": [call]}, good]})
    parsed = parse_tool_conversations(reply, FUNCTIONS)
    assert len(parsed.conversations) == 1 and parsed.dropped == {reason: 1}
    with pytest.raises(OutputError) as refused:
        parse_tool_conversations(json.dumps({"conversations": [{"user": "Do it.", "calls": [call]}]}), FUNCTIONS)
    assert refused.value.reason == "invalid_tool_calls" and detail in refused.value.detail
    assert refused.value.detail.startswith("conversations[0]: ")


def test_replies_of_the_wrong_shape_are_refused_saying_what_was_expected():
    for reply, reason in (('{"pairs": []}', "wrong_schema"), ('{"conversations": []}', "no_conversations"),
                          ('{"conversations": [{"user": "x"}]}', "invalid_tool_calls"), ("", "empty_output")):
        with pytest.raises(OutputError) as refused:
            parse_tool_conversations(reply, FUNCTIONS)
        assert refused.value.reason == reason
    # One conversation object alone is taken.
    alone = json.dumps(json.loads(conversation())["conversations"][0])
    assert len(parse_tool_conversations(alone, FUNCTIONS).conversations) == 1


def test_the_prompt_keeps_braces_and_the_test_server_recognises_it():
    tools = offered_tools([RESIZE])
    messages = tool_call_messages("Source: a.md\n\nText with {braces} and {document_slice}.", tools, 4, "en", {"project": "P"})
    info = RequestInfo(index=0, attempt=0, prompt=messages[1]["content"], messages=messages, body={})
    assert is_tool_call_request(info) and not is_exam_request(info) and not is_phrasing_request(info)
    assert offered_tools_in(info.prompt) == tools and "{braces} and {document_slice}" in info.prompt
    reply = parse_tool_conversations(default_responder(info), {"img.resize": RESIZE})
    assert len(reply.conversations) == 4 and not reply.dropped


# ---------------------------------------------------------------- settings, command line, page


@pytest.mark.parametrize("value", [-1, 21])
def test_an_out_of_range_count_is_refused_saying_what_to_fix(value):
    with pytest.raises(UserError) as refused:
        GenerationSettings(tool_calls=value).validated()
    assert f"must be between 0 and 20 (got {value})" in str(refused.value)
    assert GenerationSettings(tool_calls=0).validated().tool_calls == 0


def cli(workdir, *args: str) -> list[str]:
    return ["--workdir", str(workdir.root), "--lang", "en", *args]


def test_cli_generates_tool_calls_and_plans_them(workdir, capsys):
    documented = len(tool_call_units(slice_docset(workdir.docs / "tidewater", 800)[0]))
    assert main.main(cli(workdir, "generate", "--docs", "tidewater", "--dataset", "new", "--dry-run", "--tool-calls", "2")) == 0
    out = capsys.readouterr().out
    assert f"tool calls add {documented} calls: one per slice that shows function signatures (2 conversations each)." in out
    with OpenAITestServer() as server:
        code = main.main(cli(workdir, "generate", "--docs", "tidewater", "--dataset", "cli-ds", "--base-url", server.base_url,
                             "--model", "test-model", "--api-key", "k", "--template", "default-en", "--var",
                             "project_name=Tidewater", "--pairs", "1", "--tool-calls", "2"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Tool calls: {documented} slices show function signatures; 2 conversations asked for each." in out
    assert f"Tool calls: {documented * 2} conversations kept ({documented * 2} calls), 0 dropped" in out
    assert main.main(cli(workdir, "generate", "--docs", "tidewater", "--dataset", "cli-ds", "--dry-run", "--tool-calls", "2")) == 0
    assert "not done yet of these: 0 tool-call calls." in capsys.readouterr().out
    code = main.main(cli(workdir, "generate", "--docs", "tidewater", "--dataset", "bad", "--dry-run", "--tool-calls", "21"))
    assert code == 2 and "must be between 0 and 20 (got 21)" in capsys.readouterr().err


def test_the_tab_starts_a_run_with_tool_calls_and_shows_their_counts(workdir):
    from frontend.web import generate_tab
    from tests.test_generate_tab import watch_to_the_end

    documented = len(tool_call_units(slice_docset(workdir.docs / "tidewater", 800)[0]))
    with OpenAITestServer() as server:
        global_var.providers().add(name="local", base_url=server.base_url, model_id="test-model", api_key="k",
                                   max_concurrency=4, timeout_s=5)
        with pytest.raises(gr.Error, match="Tool-call conversations per slice"):
            generate_tab.start_generation("en", "tidewater", "default-en", [["project_name", "T"]], "local", 1, 1, 4, 0.7,
                                          512, 800, "tab-ds", False, "", 1, [], 99)
        generate_tab.start_generation("en", "tidewater", "default-en", [["project_name", "T"]], "local", 1, 1, 4, 0.7, 512,
                                      800, "tab-ds", False, "", 1, [], 1)
        frames = watch_to_the_end("tab-ds")
    line = f"- Tool calls: {documented} conversations kept ({documented} calls), 0 dropped"
    assert line in frames[-1]
    assert line in generate_tab.progress_panel("en", "tab-ds")  # a reloaded page: from the stored summary
    assert "工具调用:保留" in generate_tab.progress_panel("zh", "tab-ds")


def test_a_function_whose_name_a_stored_tool_cannot_carry_is_not_offered():
    text = "# API\n\n```js\n$.ajax(url, settings)\nfetchJson(url, options)\n```\n"
    piece = DocumentSlice(slice_id="js1", source="api.md", heading_path=["API"], text=text, start_line=0, end_line=5, tokens=20)
    assert [f.name for f in slice_functions(piece)] == ["fetchJson"]
