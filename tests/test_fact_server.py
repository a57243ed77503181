"""The fact server (tests/fact_server.py): facts extracted from real slices of the sample docs, altered values
of the same type, and every request type answered over real HTTP with the truth recorded."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

import openai
import pytest

from db.prompt_store import DEFAULT_TEMPLATE_EN, DEFAULT_TEMPLATE_ZH
from tests.fact_server import (
    BLANK,
    FactResponder,
    altered_values,
    extract_facts,
    extract_signatures,
    grade,
    parse_answer_judge,
    slice_in_prompt,
    slice_values,
    value_type_of,
)
from tests.openai_test_server import OpenAITestServer, RequestInfo
from tools.core.i18n import t
from tools.docs.docsets import slice_docset
from tools.generation.engine import slice_block, system_prompt
from tools.generation.exams import ExamUnit, exam_system_prompt, exam_user_prompt

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "workdir" / "docs" / "tidewater"
PACKAGE = DOCS / ".package"
pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="sample docset workdir/docs/tidewater not present")



@lru_cache(maxsize=1)
def slices():
    found, _ = slice_docset(DOCS)
    return tuple(found)


def the_slice(source: str, contains: str = ""):
    return next(s for s in slices() if s.source == source and contains in s.text)


def facts_of(document_slice):
    block = slice_in_prompt(slice_block(document_slice))
    return extract_facts(block.text, block.source, block.section)


def exam_messages(kind: str, document_slice, count: int = 3, other: str = "", lang: str = "en") -> list[dict]:
    """The exam module's own request for `count` questions of `kind` on a slice."""
    unit = ExamUnit(document_slice, kind, other)
    return [{"role": "system", "content": exam_system_prompt(kind, count, lang)},
            {"role": "user", "content": exam_user_prompt(unit, lang)}]


def judge_prompt(lang: str, evidence: str, question: str, reference: str, answer: str, code: bool = False) -> str:
    """The exam-answer judge's own prompt (train/evaluation.py)."""
    key = "eval.judge_prompt_code" if code else "eval.judge_prompt"
    return t(key, lang, evidence=evidence, question=question, reference=reference, answer=answer)


def info_for(messages: list[dict]) -> RequestInfo:
    prompt = next(m["content"] for m in messages if m["role"] == "user")
    return RequestInfo(index=0, attempt=0, prompt=prompt, messages=messages, body={"messages": messages})


def ask(responder: FactResponder, messages: list[dict]):
    return json.loads(responder(info_for(messages)))


# ---------------------------------------------------------------- facts


def test_facts_of_an_english_slice_carry_values_of_every_type():
    facts = facts_of(the_slice("README.md"))
    by_value = {fact.value: fact for fact in facts}
    assert by_value["300 seconds"].value_type == "number"
    assert by_value["TW-1203"].value_type == "error_code"
    assert by_value["2.3.1"].value_type == "version"
    assert by_value["max_workers"].value_type == "identifier"
    timeout = by_value["300 seconds"]
    assert timeout.cloze.count(BLANK) == 1 and "300" not in timeout.cloze
    assert timeout.cloze.replace(BLANK, "300 seconds") == timeout.text
    assert "`" not in timeout.text and "**" not in timeout.text
    assert timeout.source == "README.md" and timeout.section == "tidewater" and timeout.lang == "en"
    # Code blocks are not facts; ids are stable and distinct.
    assert not any("Alpha" in fact.text or "tw run names_tide.py" in fact.text for fact in facts)
    assert len({fact.id for fact in facts}) == len(facts)
    assert [f.id for f in facts_of(the_slice("README.md"))] == [f.id for f in facts]


def test_table_rows_and_strings_are_facts():
    facts = facts_of(the_slice("api/config.md", "All keys"))
    utc = next(fact for fact in facts if fact.value == '"UTC"')
    assert utc.value_type == "string" and "scheduler.timezone" in utc.text
    ttl = next(fact for fact in facts if "cache.ttl" in fact.text and fact.value_type == "number")
    assert ttl.value == "86400"
    codes = {fact.value for fact in facts_of(the_slice("guide/errors.md", "Full list")) if fact.value_type == "error_code"}
    assert {"TW-1001", "TW-1203", "TW-1501"} <= codes


def test_facts_of_a_chinese_slice():
    facts = facts_of(the_slice("zh/常见问题.md"))
    by_value = {fact.value: fact for fact in facts}
    assert by_value["300 秒"].value_type == "number" and by_value["300 秒"].lang == "zh"
    assert by_value["300 秒"].text.endswith("。") and "300" not in by_value["300 秒"].cloze
    assert by_value["TW-1202"].value_type == "error_code"
    assert by_value["2.0.0"].value_type == "version"
    assert not any("export TW_RETRY" in fact.text for fact in facts)
    assert all(fact.lang == "zh" for fact in facts)


def test_every_doc_yields_facts():
    counts = Counter()
    for document_slice in slices():
        counts[document_slice.source] += len(facts_of(document_slice))
    assert set(counts) == {s.source for s in slices()} and min(counts.values()) >= 5


def test_signatures_from_fences_headings_and_constructor_tables():
    retry = extract_signatures(the_slice("api/pipeline.md", "RetryPolicy(max_attempts=3").text)
    assert retry["RetryPolicy"] == {"max_attempts": 3, "backoff_base": 1.5, "backoff_factor": 2.0, "max_backoff": 60.0,
                                    "jitter": True}
    tide = extract_signatures(the_slice("api/pipeline.md", "Tide.run(inputs=None").text)
    assert tide["Tide.run"]["max_workers"] == 4 and tide["Tide"]["fail_fast"] is True


# ---------------------------------------------------------------- altered values


def test_altered_values_differ_and_keep_the_type():
    rng = random.Random(0)
    seen_types = Counter()
    for document_slice in slices():
        facts = facts_of(document_slice)
        pool = slice_values(document_slice.text)
        for fact in facts:
            altered = altered_values(fact, pool, 3, rng)
            assert len(altered) == 3, fact
            assert fact.value not in altered and len(set(altered)) == 3
            assert all(value_type_of(value) == fact.value_type for value in altered), (fact.value, altered)
            seen_types[fact.value_type] += 1
            if fact.value_type == "version":
                assert all(re.fullmatch(r"\d+\.\d+\.\d+", value) for value in altered)
            elif fact.value_type == "number":
                shape = re.fullmatch(r"[±+-]?\d+(\.\d+)?(.*)", fact.value)
                for value in altered:
                    other = re.fullmatch(r"[±+-]?\d+(\.\d+)?(.*)", value)
                    assert len(other.group(1) or "") == len(shape.group(1) or "") and other.group(2) == shape.group(2)
            elif fact.value_type == "error_code":
                assert all(value[:5] == fact.value[:5] for value in altered), (fact.value, altered)
    assert set(seen_types) == {"version", "error_code", "number", "identifier", "string"}


def test_error_code_distractors_come_from_the_docs_first():
    fact = next(f for f in facts_of(the_slice("guide/errors.md", "Full list")) if f.value == "TW-1203")
    pool = slice_values(the_slice("guide/errors.md", "Full list").text)
    assert set(altered_values(fact, pool, 3, random.Random(1))) <= {"TW-1201", "TW-1202", "TW-1204", "TW-1205"}
    assert altered_values(fact, [], 2, random.Random(1)) == ["TW-1204", "TW-1202"]


# ---------------------------------------------------------------- answers, through a real server


def test_every_request_type_round_trip():
    responder = FactResponder(seed=3)
    readme, retry = the_slice("README.md"), the_slice("api/pipeline.md", "RetryPolicy(max_attempts=3")
    with OpenAITestServer(responder=responder) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)

        def reply(messages):
            content = client.chat.completions.create(model="test-model", messages=messages).choices[0].message.content
            return json.loads(content)

        user = DEFAULT_TEMPLATE_EN.replace("{project_name}", "Tidewater").replace("{document_slice}", slice_block(readme))
        first = reply([{"role": "system", "content": system_prompt(4, 1)}, {"role": "user", "content": user}])["pairs"]
        second = reply([{"role": "system", "content": system_prompt(4, 2)}, {"role": "user", "content": user}])["pairs"]
        assert len(first) == len(second) == 4
        assert all(BLANK in pair["question"] and "Tidewater" in pair["question"] for pair in first)
        assert [(p["question"], p["answer"]) for p in first + second] == [(q, a) for q, a, _ in responder.pairs]
        facts = [fact_id for _, _, fact_id in responder.pairs]
        assert len(set(facts)) == 8  # pass 2 takes the next facts
        assert all(responder.facts[fact_id].text == answer for _, answer, fact_id in responder.pairs)

        mc = reply(exam_messages("mc", retry, 4, other=readme.text[:1500]))["questions"]
        assert len(mc) == 4
        for question in mc:
            truth = responder.truth[question["question"]]
            assert len(set(question["options"])) == 4 and question["options"][question["answer"]] == truth["answer"]
            if truth["kind"] == "mc":
                assert {value_type_of(option) for option in question["options"]} == {truth["value_type"]}

        tf = reply(exam_messages("tf", retry))["questions"]
        assert len(tf) == 3
        for entry in tf:
            assert set(entry) == {"statement", "false_statement"} and entry["statement"] != entry["false_statement"]
            assert responder.truth[entry["statement"]]["true"] is True
            assert responder.truth[entry["false_statement"]]["true"] is False

        short = reply(exam_messages("short", readme))["questions"]
        assert len(short) == 3
        for entry in short:
            truth = responder.truth[entry["question"]]
            assert entry["answer"] == truth["value"] and BLANK in entry["question"] and truth["kind"] == "short"

        code = reply(exam_messages("code", retry, 2))["questions"]
        assert len(code) == 2
        for entry in code:
            assert entry["question"].startswith("Write code with the library that prints the default value")
            assert "inspect.signature(RetryPolicy)" in entry["answer"] and responder.truth[entry["question"]]["kind"] == "code"
        fallback = reply(exam_messages("code", readme, 1))["questions"]
        assert fallback[0]["answer"] == "import tidewater\nprint(tidewater.__version__)"
        assert responder.truth[fallback[0]["question"]]["value"] == "2.3.1"

        question = short[0]["question"]
        value = responder.truth[question]["value"]
        judge = judge_prompt("en", readme.text, question, value, f"It is {value}.")
        right = reply([{"role": "user", "content": judge}])
        wrong = reply([{"role": "user", "content": judge.replace(f"Model answer: It is {value}.", "Model answer: I do not know.")}])
        assert right["score"] == 10 and wrong["score"] == 0 and right["reason"]
        task = code[0]
        blind = judge_prompt("en", t("eval.no_evidence", "en"), task["question"], task["answer"],
                             f"```python\n{task['answer']}\n```", code=True)
        assert reply([{"role": "user", "content": blind}])["score"] == 10
        assert [(r["had_evidence"], r["score"]) for r in responder.judge_requests] == [(True, 10), (True, 0), (False, 10)]

        verdict = reply([{"role": "system", "content": 'Rate it: {"groundedness": ...}'}, {"role": "user", "content": "item"}])
        assert "groundedness" in verdict and "overall" in verdict  # the dataset judge keeps the default server's verdict


def test_chinese_pairs_and_judge():
    responder = FactResponder(seed=0)
    faq = the_slice("zh/常见问题.md")
    user = DEFAULT_TEMPLATE_ZH.replace("{project_name}", "tidewater").replace("{document_slice}", slice_block(faq))
    pairs = ask(responder, [{"role": "system", "content": system_prompt(3, 1)}, {"role": "user", "content": user}])["pairs"]
    assert all(BLANK in p["question"] and re.search(r"[\u4e00-\u9fff]", p["question"]) for p in pairs)
    question = ask(responder, exam_messages("short", faq, 1))["questions"][0]["question"]
    truth = responder.truth[question]
    prompt = judge_prompt("zh", "无关的文字", question, truth["value"], f"答案是 {truth['value']}")
    assert ask(responder, [{"role": "user", "content": prompt}])["score"] == 10
    assert responder.judge_requests[-1] == {"question": question, "had_evidence": False, "score": 10, "known": True}
    assert parse_answer_judge(prompt)["reference"] == truth["value"]


def test_grading_by_key_value():
    assert grade("300 seconds", "The default is 300 s.")[0] == 10
    assert grade("300 seconds", "The default is 3000 seconds.")[0] == 0
    assert grade("TW-1203", "error tw-1203")[0] == 10
    reference = 'import inspect\nfrom tidewater import RetryPolicy\n\nprint(inspect.signature(RetryPolicy).parameters["max_backoff"].default)'
    assert grade(reference, "print(RetryPolicy().max_backoff)")[0] == 10
    assert grade(reference, "The max_backoff of RetryPolicy is 60.0.")[0] == 0  # no code
    assert grade(reference, "```python\nprint(RetryPolicy().backoff_base)\n```")[0] == 0


# ---------------------------------------------------------------- exam-wide properties


def test_exam_properties_over_the_whole_docset():
    """Balanced tf twins, answer positions spread over the 4 options, a recognition share, and same-type options."""
    responder = FactResponder(seed=7, docs=DOCS)
    positions, kinds = Counter(), Counter()
    for document_slice in slices():
        for entry in ask(responder, exam_messages("mc", document_slice, 2))["questions"]:
            positions[entry["answer"]] += 1
            kinds[responder.truth[entry["question"]]["kind"]] += 1
        ask(responder, exam_messages("tf", document_slice, 2))
    total = sum(positions.values())
    assert set(positions) == {0, 1, 2, 3} and min(positions.values()) >= total / 10 and max(positions.values()) <= total / 2
    assert kinds["recognition"] >= 2 and kinds["mc"] > kinds["recognition"]
    truth_values = Counter(t["true"] for t in responder.truth.values() if t["kind"] == "tf")
    assert truth_values[True] == truth_values[False] > 0


def test_legacy_tf_and_labelled_options():
    responder = FactResponder(seed=2, tf_style="legacy", label_prefix=True)
    answers = Counter()
    for document_slice in slices():
        for entry in ask(responder, exam_messages("tf", document_slice, 3))["questions"]:
            assert set(entry) == {"question", "answer"} and responder.truth[entry["question"]]["true"] is entry["answer"]
            answers[entry["answer"]] += 1
    assert answers[False] > answers[True] > 0  # an unbalanced writer
    mc = ask(responder, exam_messages("mc", the_slice("README.md"), 2))["questions"]
    for entry in mc:
        assert [option[:3] for option in entry["options"]] == ["A. ", "B. ", "C. ", "D. "]
        assert [option[3:] for option in entry["options"]] == responder.truth[entry["question"]]["options"]


def test_few_facts_give_distinct_questions_with_other_wordings():
    small = the_slice("zh/快速入门.md", "当前版本")
    responder = FactResponder()
    questions = [entry["question"] for entry in ask(responder, exam_messages("short", small, 5))["questions"]]
    assert len(questions) == 5 and len(set(questions)) == 5


def test_replies_are_deterministic_per_seed_and_prompt():
    messages = exam_messages("mc", the_slice("api/config.md", "All keys"), 3, other=the_slice("README.md").text[:1500])
    first, again = FactResponder(seed=5)(info_for(messages)), FactResponder(seed=5)(info_for(messages))
    assert first == again
    assert FactResponder(seed=6)(info_for(messages)) != first


# ---------------------------------------------------------------- the sample package


@pytest.mark.skipif(not PACKAGE.is_dir(), reason="the sample package workdir/docs/tidewater/.package is not there yet")
def test_code_references_print_the_documented_defaults():
    responder = FactResponder(seed=0, docs=DOCS)
    tasks = []
    for document_slice in slices():
        if extract_signatures(document_slice.text):
            tasks += ask(responder, exam_messages("code", document_slice, 20))["questions"]
    assert len(tasks) >= 10
    script = "\n".join(f"exec({task['answer']!r})" for task in tasks)
    env = {**os.environ, "PYTHONPATH": str(PACKAGE)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    expected = [responder.truth[task["question"]]["expected_output"] for task in tasks]
    assert result.stdout.splitlines() == expected
