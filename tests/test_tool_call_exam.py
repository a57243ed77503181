"""The exam kind "tool_call": questions written from the functions the docs document (tools/generation/exams.py and
tools/generation/tool_calls.py), a model's call read from its answer and scored on the name and the arguments
(train/exam_scoring.py), under the closed, blind and open conditions, with the analysis of a report."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

import global_var
import main
from schema.exam import DEFAULT_QUESTION_KINDS, Question, QuestionSource, result_key
from tests.fact_server import FactResponder
from tests.openai_test_server import OpenAITestServer, RequestInfo, default_responder, exam_request_kind, is_exam_request
from tests.test_exam_create import FAST, provider_for, tidewater_slices
from tools.core.errors import UserError
from tools.evaluation.analysis import analyse_report
from tools.generation.exams import ExamSettings, exam_messages, parse_kinds, plan_exam_units, prepare_exam, run_exam_creation
from tools.generation.tool_calls import (call_problems, expected_call, offered_tools, parse_tool_call, same_value,
                                         score_tool_call, slice_functions)
from train.exam_scoring import ScoringSetup, aggregate, score_model, score_open_questions

RESIZE_TOOL = {"type": "function", "function": {"name": "img.resize", "description": "Resize an image.", "parameters": {
    "type": "object", "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}, "mode": {"type": "string"}},
    "required": ["width", "height"]}}}
CROP_TOOL = {"type": "function", "function": {"name": "img.crop", "parameters": {
    "type": "object", "properties": {"box": {"type": "array"}}, "required": ["box"]}}}
TOOLS = [RESIZE_TOOL, CROP_TOOL]


def tool_question(qid="t1", arguments=None, tools=None, excerpt=None) -> Question:
    arguments = {"width": 64, "height": 32} if arguments is None else arguments
    return Question(id=qid, kind="tool_call", question="Make the image 64 pixels wide and 32 high.",
                    answer=json.dumps({"name": "img.resize", "arguments": arguments}), tools=tools or TOOLS,
                    source=QuestionSource(source_doc="api.md", heading_path=["Images"], excerpt=excerpt))


# ---------------------------------------------------------------- reading a call from an answer


@pytest.mark.parametrize("answer, call", [
    ('{"name": "img.resize", "arguments": {"width": 64, "height": 32}}', ("img.resize", {"width": 64, "height": 32})),
    ('Sure:\n```json\n{"name": "img.resize", "arguments": "{\\"width\\": 64}"}\n```', ("img.resize", {"width": 64})),
    ('<tool_call>\n{"name": "img.crop", "arguments": {"box": [0, 0, 5, 5]}}\n</tool_call>', ("img.crop", {"box": [0, 0, 5, 5]})),
    ('<think>which one? {"name": "img.crop"}</think><tool_call>{"name": "img.resize", "arguments": {}}</tool_call>',
     ("img.resize", {})),
    ('{"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "img.crop", "arguments": "{}"}}]}', ("img.crop", {})),
    ("I would call img.resize(width=64, height=32, mode='fast') for that.",
     ("img.resize", {"width": 64, "height": 32, "mode": "fast"})),
    ("```python\nimg.resize(64, 32)\n```", ("img.resize", {"width": 64, "height": 32})),
    ("print(len(x)); img.crop(box=(1, 2, 3, 4))", ("img.crop", {"box": [1, 2, 3, 4]})),
    ("img.resize(64, 32, 'x', 9)", ("img.resize", {"width": 64, "height": 32, "mode": "x", "<positional 4>": 9})),
    ("resize it to 64 by 32 (as documented)", None),
    ("", None),
    ('{"width": 64}', None),
])
def test_a_call_is_read_from_json_a_tool_call_tag_or_python_syntax(answer, call):
    assert parse_tool_call(answer, TOOLS) == call


def test_an_unparsable_python_call_is_skipped_for_the_next_one():
    assert parse_tool_call("img.resize(width=compute()) then img.crop(box=[1])", TOOLS) == ("img.crop", {"box": [1]})
    assert parse_tool_call("other.thing(a=1)", TOOLS) == ("other.thing", {"a": 1})  # an unknown name is still a call


# ---------------------------------------------------------------- the score


@pytest.mark.parametrize("found, score", [
    (("img.resize", {"width": 64, "height": 32}), 1.0),
    (("img.resize", {"width": 64.0, "height": 32}), 1.0),  # numbers by value
    (("img.crop", {"width": 64, "height": 32}), 0.0),  # another function
    (None, 0.0),
    (("img.resize", {"width": 64}), round(2 / 3, 4)),  # missing one of two
    (("img.resize", {"width": 64, "height": 33}), round(2 / 3, 4)),  # a wrong value
    (("img.resize", {"width": 64, "height": 32, "mode": "fast"}), 0.75),  # one argument the reference does not have
    (("img.resize", {}), round(1 / 3, 4)),  # the right function alone
    (("img.resize", {"height": "32", "width": True}), round(1 / 3, 4)),  # a string or a bool is not a number
])
def test_the_score_counts_the_name_and_every_argument_alike(found, score):
    result = score_tool_call(found, ("img.resize", {"width": 64, "height": 32}))
    assert result.score == score
    assert (result.detail == "") == (score == 1.0)


def test_the_detail_says_what_differs_and_values_compare_element_by_element():
    result = score_tool_call(("img.resize", {"width": 1, "mode": "x"}), ("img.resize", {"width": 64, "height": 32}))
    assert result.detail == "missing: height; wrong value: width; not in the reference: mode"
    assert score_tool_call(("img.resize", {}), ("img.resize", {})).score == 1.0
    assert same_value([1, {"a": " x "}], [1.0, {"a": "x"}]) and not same_value([1], [1, 2]) and not same_value(1, True)


# ---------------------------------------------------------------- the question


def test_a_tool_call_question_needs_its_tools_and_a_reference_call_of_one_of_them():
    assert expected_call(tool_question().answer) == ("img.resize", {"width": 64, "height": 32})
    for fields, message in (({"tools": []}, "needs the tools offered"),
                            ({"answer": "img.resize(64, 32)"}, "needs the reference call as the JSON text"),
                            ({"answer": json.dumps({"name": "img.rotate", "arguments": {}})}, "is not among its tools")):
        with pytest.raises(ValidationError, match=message):
            Question(**{**tool_question().model_dump(), **fields})


# ---------------------------------------------------------------- writing the questions


def create(server, kinds="short,tool_call", slice_ids=None, name="ex", **settings):
    prepared = prepare_exam(global_var.workspace(), name, "tidewater", provider_for(server), kinds,
                            ExamSettings(**{**FAST, **settings}), slice_ids=slice_ids, lang="en")
    progress, exam = run_exam_creation(prepared)
    return prepared, progress, exam


def test_exam_creation_writes_tool_call_questions_from_the_documented_functions(workdir):
    assert "tool_call" not in parse_kinds(None) and parse_kinds("tool_call,mc") == ["mc", "tool_call"]
    slices = tidewater_slices()
    documented = [s for s in slices if slice_functions(s)]
    with OpenAITestServer() as server:
        prepared, progress, exam = create(server)
    assert progress.status == "finished" and progress.failed_units == 0
    # A tool-call unit only for the slices that show a signature; a short-answer unit for every slice.
    assert sum(u.kind == "tool_call" for u in prepared.units) == len(documented)
    questions = [q for q in exam.questions if q.kind == "tool_call"]
    assert len(questions) == 2 * len(documented) and exam.generator["dropped"]["invalid_tool_calls"] == 0
    by_id = {s.slice_id: s for s in slices}
    for question in questions:
        functions = {f.name: f for f in slice_functions(by_id[question.source.slice_id])}
        assert question.tools == offered_tools(functions.values())
        name, arguments = expected_call(question.answer)
        assert call_problems(functions[name], arguments) == []
    # The request names the kind's rules and lists the tools; the test server tells the kind apart.
    unit = next(u for u in prepared.units if u.kind == "tool_call")
    messages = exam_messages(unit, 2, "en")
    info = RequestInfo(index=0, attempt=0, prompt=messages[1]["content"], messages=messages, body={})
    assert is_exam_request(info) and exam_request_kind(info) == "tool_call"
    assert "Tools (JSON):\n" + json.dumps(offered_tools(unit.functions), ensure_ascii=False) in info.prompt


def test_questions_whose_call_does_not_fit_are_dropped_and_counted(workdir):
    def first_call_invented(info: RequestInfo) -> str:
        reply = json.loads(default_responder(info))
        if is_exam_request(info) and exam_request_kind(info) == "tool_call":
            reply["questions"][0]["call"]["name"] = "tidewater.invented"
        return json.dumps(reply)

    documented = [s for s in tidewater_slices() if slice_functions(s)]
    with OpenAITestServer(responder=first_call_invented) as server:
        _, progress, exam = create(server, kinds="tool_call")
    assert progress.status == "finished" and progress.failed_units == 0
    assert len(exam.questions) == len(documented) and exam.generator["dropped"]["invalid_tool_calls"] == len(documented)
    assert all(expected_call(q.answer)[0] != "tidewater.invented" for q in exam.questions)


def test_only_tool_calls_on_slices_without_functions_is_refused_and_mixed_kinds_get_a_note(workdir):
    plain = [s.slice_id for s in tidewater_slices() if not slice_functions(s)][:2]
    with OpenAITestServer() as server:
        with pytest.raises(UserError) as refused:
            prepare_exam(global_var.workspace(), "ex", "tidewater", provider_for(server), "tool_call", slice_ids=plain)
        assert "show no function signature" in str(refused.value) and "leave out the kind tool_call" in str(refused.value)
        prepared = prepare_exam(global_var.workspace(), "ex", "tidewater", provider_for(server), "short,tool_call",
                                slice_ids=plain)
    assert ("toolgen.exam_no_functions", {}) in prepared.notes and {u.kind for u in prepared.units} == {"short"}
    assert plan_exam_units(tidewater_slices()[:1], list(DEFAULT_QUESTION_KINDS))[0].functions == ()


def test_the_fact_server_and_the_command_line_write_tool_call_questions(workdir, capsys):
    with OpenAITestServer(responder=FactResponder(seed=1)) as server:
        code = main.main(["--workdir", str(global_var.workdir().root), "--lang", "en", "exam", "create", "--docs", "tidewater",
                          "--name", "cli-ex", "--base-url", server.base_url, "--model", "test-model", "--api-key", "k",
                          "--kinds", "mc,tool_call", "--per-slice", "1", "--question-lang", "en"])
    out = capsys.readouterr().out
    assert code == 0, out
    exam = global_var.workspace().exams.load("cli-ex")
    kinds = {q.kind for q in exam.questions}
    assert "tool_call" in kinds and kinds <= {"mc", "recognition", "tool_call"}


# ---------------------------------------------------------------- scoring


@pytest.fixture
def answers(monkeypatch):
    """Greedy answers replaced by the given texts, in order; the prompts asked are kept."""
    import train.evaluation as evaluation

    asked: list[list[dict]] = []
    texts: list[str] = []

    def greedy(model, tokenizer, prompts, *args, **kwargs):
        asked.extend(prompts)
        return [texts.pop(0) for _ in prompts]

    monkeypatch.setattr(evaluation, "greedy_answers", greedy)
    return SimpleNamespace(asked=asked, texts=texts)


def test_answers_are_scored_on_the_call_under_each_condition(answers):
    excerpt = "## Images\n\n`img.resize(width, height, mode=None)` resizes."
    questions = [tool_question("t1", excerpt=excerpt), tool_question("t2", {"width": 8, "height": 8})]
    answers.texts += ['<tool_call>{"name": "img.resize", "arguments": {"width": 64, "height": 32}}</tool_call>',
                      "img.resize(width=8)"]
    closed = score_open_questions(None, None, questions, judge=object(), lang="en")  # the judge is not asked for calls
    assert [(s.score, s.correct) for s in closed] == [(1.0, True), (round(2 / 3, 4), False)]
    assert closed[1].call == {"name": "img.resize", "arguments": {"width": 8}} and closed[1].call_detail == "missing: height"
    prompt = answers.asked[0][0]["content"]
    assert json.dumps(TOOLS, ensure_ascii=False) in prompt and prompt.endswith("Task: " + questions[0].question)

    answers.texts += ['{"name": "img.crop", "arguments": {"box": []}}', "no idea"]
    blind = score_open_questions(None, None, questions, lang="en", condition="blind")
    assert [s.score for s in blind] == [0.0, 0.0] and blind[1].call is None
    assert all(p[0]["content"].endswith("Task: Call one of the functions.") for p in answers.asked[2:])
    assert not any(q.question in p[0]["content"] for q in questions for p in answers.asked[2:])

    answers.texts += ['{"name": "img.resize", "arguments": {"width": 64, "height": 32}}']
    opened = score_open_questions(None, None, questions, lang="en", condition="open", excerpts={"t1": excerpt})
    assert [s.id for s in opened] == ["t1"] and opened[0].score == 1.0
    assert answers.asked[-1][0]["content"].startswith("Documentation excerpt:\n" + excerpt)


def test_blind_scores_tool_calls_beside_the_choice_kinds_and_the_analysis_reports_the_kind(answers):
    short = Question(id="s1", kind="short", question="What is the default?", answer="4")
    questions = [tool_question("t1"), tool_question("t2"), short]
    tokenizer = SimpleNamespace(chat_template="x", pad_token_id=0, eos_token_id=0)  # no choice question: never used
    setup = ScoringSetup(lang="en")
    # Asked kind by kind: the short question first, then the tool calls.
    answers.texts += ["4", '{"name": "img.resize", "arguments": {"width": 64, "height": 32}}', "nothing"]
    closed = score_model(None, tokenizer, questions, "base", "closed", setup)
    answers.texts += ['{"name": "img.resize", "arguments": {"width": 64, "height": 32}}', "nothing"]
    blind = score_model(None, tokenizer, questions, "base", "blind", setup)
    assert [s.id for s in blind.questions] == ["t1", "t2"]  # the short question has no blind form
    assert closed.by_kind["tool_call"].n == 2 and closed.by_kind["tool_call"].accuracy == 0.5
    results = {result_key("base"): closed, result_key("base", "blind"): blind}
    analysis, flags = analyse_report(questions, results)
    assert analysis["tool_call"].n == 2 and analysis["tool_call"].metric == "mean score"
    assert analysis["tool_call"].closed["base"].value == 0.5
    assert flags == {"t1": ["guessable"]}  # the call the tools alone gave away
    assert aggregate("base", closed.questions).overall.n == 3


def test_the_tiny_model_answers_a_tool_call_question_under_every_condition(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    questions = [tool_question("t1", excerpt="img.resize(width, height) resizes an image.")]
    setup = ScoringSetup(lang="en", max_new_tokens=12, excerpts={"t1": "img.resize(width, height) resizes an image."})
    for condition in ("closed", "blind", "open"):
        result = score_model(model, tokenizer, questions, "base", condition, setup)
        (score,) = result.questions
        assert score.kind == "tool_call" and isinstance(score.output, str) and 0.0 <= score.score <= 1.0
        assert score.correct == (score.score == 1.0)


def test_the_page_offers_the_kind_in_both_languages_and_the_default_kinds_leave_it_out():
    from frontend.web.exam_create_panel import kind_choices

    assert ("tool call", "tool_call") in kind_choices("en") and ("工具调用题", "tool_call") in kind_choices("zh")
    assert "tool_call" not in DEFAULT_QUESTION_KINDS


def test_a_runaway_answer_is_read_only_up_to_its_bound(monkeypatch):
    import ast

    from tools.generation import tool_calls

    assert parse_tool_call("x" * tool_calls.MAX_ANSWER_CHARS + '{"name": "img.crop", "arguments": {}}', TOOLS) is None
    parses = []
    real_parse = ast.parse
    monkeypatch.setattr(ast, "parse", lambda *args, **kwargs: parses.append(1) or real_parse(*args, **kwargs))
    # 100 nested calls: each start tried scans up to every closing parenthesis; only the first MAX_CALL_STARTS are tried.
    assert parse_tool_call("f(" * 100 + ")" * 99, TOOLS) is None
    assert 0 < len(parses) <= tool_calls.MAX_CALL_STARTS * 99
