"""Exam creation on the generation engine (issue 15): validation and repair of replies, a full creation
against the OpenAI test server with faults, a SIGKILLed creation resumed without duplicated questions,
the leakage check, and the weak-sections hand-off to a generation run on exactly the right slices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import global_var
import main
from schema.dataset import first_exchange, qa_messages
from schema.exam import TF_OPTIONS_EN, ExamReport, QuestionScore
from train.exam_scoring import aggregate
from schema.provider import APIProvider
from tests.openai_test_server import OpenAITestServer, exam_request_kind, is_exam_request
from tools.core.errors import UserError
from tools.docs.docsets import slice_docset
from tools.generation.engine import UNIT_DONE, GenerationSettings, normalize_question, prepare_generation, run_generation
from tools.generation.exam_leakage import check_exam_leakage
from tools.generation.exams import (ExamCreationJob, ExamSettings, balance_true_false,
                                    parse_exam_questions, parse_exam_reply, prepare_exam, run_exam_creation, validate_question)
from tools.llm.replies import OutputError

REPO = Path(__file__).resolve().parent.parent
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "concurrency": 8, "per_slice": 2}


def provider_for(server: OpenAITestServer, timeout_s: float = 2.0) -> APIProvider:
    return APIProvider(name="test", base_url=server.base_url, model_id="test-model", api_key="k",
                       max_concurrency=64, timeout_s=timeout_s)


def tidewater_slices():
    return slice_docset(global_var.workdir().child("docs", "tidewater"))[0]


def create(server, name="ex", kinds="mc,tf,short,code", slice_ids=None, **settings):
    prepared = prepare_exam(global_var.workspace(), name, "tidewater", provider_for(server), kinds, ExamSettings(**{**FAST, **settings}),
                            slice_ids=slice_ids, lang="en")
    progress, exam = run_exam_creation(prepared)
    return prepared, progress, exam


def assert_exam_sound(exam, prepared) -> None:
    """Ids and questions unique, every question valid for its kind and traced to one of the planned slices."""
    assert len({q.id for q in exam.questions}) == len(exam.questions)
    keys = [normalize_question(q.question) for q in exam.questions]
    assert len(set(keys)) == len(keys), "a question appears twice"
    planned = {s.slice_id: s for s in prepared.slices}
    for question in exam.questions:
        assert question.source.slice_id in planned
        assert question.source.source_doc == planned[question.source.slice_id].source
        if question.kind == "mc":
            assert len(question.options) == 4 and len(set(question.options)) == 4 and 0 <= question.answer < 4
        elif question.kind == "tf":
            assert question.options == TF_OPTIONS_EN and question.answer in (0, 1)
        else:
            assert isinstance(question.answer, str) and question.answer.strip()


# ---------------------------------------------------------------- validating replies


def test_multiple_choice_replies_are_repaired_where_the_intent_is_clear():
    [letter] = validate_question({"question": "Q?", "options": ["A. one", "B. two", "C. three", "D. four"], "answer": "C"}, "mc", "en")
    assert letter == {"question": "Q?", "options": ["one", "two", "three", "four"], "answer": 2, "kind": "mc"}
    [by_text] = validate_question({"Question": "Q?", "options": ["one", "two", "three", "four"], "answer": "four"}, "mc", "en")
    assert by_text["answer"] == 3
    [keyed] = validate_question({"question": "Q?", "options": {"A": "w", "B": "x", "C": "y", "D": "z"}, "answer": 1}, "mc", "en")
    assert keyed["options"] == ["w", "x", "y", "z"] and keyed["answer"] == 1
    [cjk] = validate_question({"question": "Q?", "options": ["A、甲", "B、乙", "C、丙", "D、丁"], "answer": 0}, "mc", "zh")
    assert cjk["options"] == ["甲", "乙", "丙", "丁"]


@pytest.mark.parametrize("options, answer", [
    (["3.9", "3.8", "3.10", "3.11"], 2),                # decimals (and a version-like 3.10) are values, not labels
    (["2.3.1", "2.3.2", "3.0.0", "2.2.9"], 0),          # versions
    (["1.5 s", "3.0 s", "4.5 s", "6.0 s"], 1),
    (["a.max_workers", "b.max_workers", "c.timeout", "d.fail_fast"], 3),  # dotted names
    (["1. first", "3. third", "2. second", "4. fourth"], 0),  # labels out of order: part of the text
])
def test_values_that_look_like_option_labels_stay_whole(options, answer):
    [question] = validate_question({"question": "Which?", "options": options, "answer": answer}, "mc", "en")
    assert question["options"] == options and question["answer"] == answer
    assert question["options"][question["answer"]] == options[answer]


def test_options_labelled_with_digits_in_order_are_stripped():
    [question] = validate_question({"question": "Q?", "options": ["1. 2.3.1", "2. 2.3.2", "3) 3.0.0", "4) 2.2.9"], "answer": 0},
                                   "mc", "en")
    assert question["options"] == ["2.3.1", "2.3.2", "3.0.0", "2.2.9"]


def test_wrong_options_of_another_type_drop_the_question_and_statements_make_recognition_items():
    mixed = {"question": "What is the default stage timeout?", "options": ["300", "fast", "TW-1203", "the scheduler"], "answer": 0}
    typed = {"question": "What is the default max_workers?", "options": ["4", "8", "2", "16"], "answer": 0}
    statements = {"question": "Which statement about retries is correct?", "answer": 1, "options": [
        "The default backoff factor is 3.0 between attempts.", "The default backoff factor is 2.0 between attempts.",
        "The default backoff factor is 1.5 between attempts.", "The default backoff factor is 4.0 between attempts."]}
    kept, dropped = parse_exam_reply(json.dumps({"questions": [mixed, typed, statements]}), "mc", "en")
    assert dropped == 1 and [q["question"] for q in kept] == [typed["question"], statements["question"]]
    assert [q["kind"] for q in kept] == ["mc", "recognition"]
    with pytest.raises(OutputError) as refused:
        parse_exam_reply(json.dumps({"questions": [mixed]}), "mc", "en")
    assert refused.value.reason == "mixed_option_types" and "'fast'" in refused.value.detail


@pytest.mark.parametrize("entry, reason, words", [
    ({"question": "Q?", "options": ["a", "b", "c"], "answer": 0}, "wrong_schema", "exactly 4 options, got 3"),
    ({"question": "Q?", "options": ["a", "b", "B", "c"], "answer": 0}, "wrong_schema", "must all differ"),
    ({"question": "Q?", "options": ["a", "b", "c", "d"], "answer": 4}, "out_of_range", "not an option index"),
    ({"question": "Q?", "options": ["a", "b", "c", "d"], "answer": "e"}, "wrong_schema", "not one of the options"),
    ({"question": "Q?", "options": ["a", "b", "c", "d"], "answer": True}, "wrong_schema", "index 0-3"),
    ({"question": " ", "options": ["a", "b", "c", "d"], "answer": 0}, "wrong_schema", "question"),
])
def test_multiple_choice_replies_that_break_the_rules_are_refused_naming_the_problem(entry, reason, words):
    with pytest.raises(OutputError) as refused:
        validate_question(entry, "mc", "en")
    assert refused.value.reason == reason and words in refused.value.detail


def test_true_false_short_and_code_replies():
    assert validate_question({"question": "It retries.", "answer": "对"}, "tf", "zh") == \
        [{"question": "It retries.", "options": ["对", "错"], "answer": 0}]
    assert validate_question({"question": "It retries.", "answer": "false"}, "tf", "en")[0]["answer"] == 1
    with pytest.raises(OutputError):
        validate_question({"question": "It retries.", "answer": "maybe"}, "tf", "en")
    assert validate_question({"question": "Port?", "answer": "8080"}, "short", "en")[0]["answer"] == "8080"
    [code] = validate_question({"question": "Write code that ...", "answer": "\nimport x\nx.run()\n"}, "code", "en")
    assert code["answer"] == "import x\nx.run()" and code["options"] == []
    with pytest.raises(OutputError):
        validate_question({"question": "Port?", "answer": ""}, "short", "en")


def test_a_true_statement_and_its_false_twin_make_two_balanced_questions():
    twins = validate_question({"statement": "The default timeout is 300 seconds.",
                               "false_statement": "The default timeout is 600 seconds."}, "tf", "en")
    assert [(q["question"], q["answer"], q["twin"]) for q in twins] == [
        ("The default timeout is 300 seconds.", 0, "t"), ("The default timeout is 600 seconds.", 1, "f")]
    with pytest.raises(OutputError) as same:
        validate_question({"statement": "It retries.", "false_statement": " it retries "}, "tf", "en")
    assert "change one fact" in same.value.detail


def test_single_statements_are_balanced_when_an_exam_is_frozen():
    def tf(qid, answer, pair=None):
        return {"id": qid, "kind": "tf", "answer": answer, **({"pair": pair} if pair else {})}

    questions = [tf("a", 1), tf("b", 1), tf("c", 0), tf("d", 1), tf("p:t", 0, "p"), tf("p:f", 1, "p"),
                 {"id": "m", "kind": "mc", "answer": 0}]
    kept, dropped = balance_true_false(questions)
    assert dropped == 2 and [q["id"] for q in kept] == ["a", "c", "p:t", "p:f", "m"]


def test_replies_are_cleaned_of_fences_and_thinking_like_generation():
    reply = '<think>{hmm}</think>\n```json\n{"questions": [{"question": "Q?", "answer": "A"}]}\n```'
    assert parse_exam_questions(reply, "short", "en") == [{"question": "Q?", "options": [], "answer": "A"}]
    with pytest.raises(OutputError) as empty:
        parse_exam_questions('{"questions": []}', "short", "en")
    assert empty.value.reason == "no_questions"
    with pytest.raises(OutputError) as broken:
        parse_exam_questions('{"questions": [{"question": "Q?"', "short", "en")
    assert broken.value.reason == "invalid_json"


# ---------------------------------------------------------------- creating


def test_an_exam_is_created_frozen_and_versioned_through_faults(workdir):
    faults = ["malformed", "wrong_schema", "fenced", "think", "429", "500", "empty"]
    with OpenAITestServer(faults=faults, retry_after=0.01) as server:
        prepared, progress, exam = create(server)
        exam_requests = server.stats["requests"]
    slices = tidewater_slices()
    assert progress.status == "finished" and progress.failed_units == 0, progress.recent_failures
    assert progress.done_units == len(prepared.units) == len(slices) * 4
    # Malformed, wrong-shape and empty replies got one correction round each; 429 and 500 were retried.
    assert exam_requests == len(prepared.units) + 5 and progress.retries == 2
    assert exam.version == 1 and exam.docset == "tidewater" and exam.lang == "en"
    # Two of each kind per slice; a true/false entry is a statement and its false twin.
    assert len(exam.questions) == len(slices) * 5 * 2
    kinds = {kind: len(slices) * 2 for kind in ("mc", "short", "code")}
    assert Counter(q.kind for q in exam.questions) == {**kinds, "tf": len(slices) * 4}
    assert Counter(q.answer for q in exam.questions if q.kind == "tf") == {0: len(slices) * 2, 1: len(slices) * 2}
    assert all(q.source.excerpt == {s.slice_id: s for s in slices}[q.source.slice_id].text for q in exam.questions)
    assert_exam_sound(exam, prepared)
    assert exam.generator["tokens"]["in"] > 0 and exam.generator["model"] == "test-model"
    store = global_var.workspace().exams
    assert store.read_draft("ex") == (None, []) and not store.drafts(), "the draft is gone once frozen"
    frozen_text = store.version_path("ex", 1).read_text(encoding="utf-8")

    # A second creation under the same name, as a background job, is version 2; version 1 is left exactly as it was.
    with OpenAITestServer(latency=0.05) as server:
        again = prepare_exam(global_var.workspace(), "ex", "tidewater", provider_for(server), "tf", ExamSettings(**{**FAST, "per_slice": 1}), lang="en")
        assert again.notes[-1] == ("examgen.next_version", {"name": "ex", "version": 2})
        job = ExamCreationJob(again).start()
        assert job.is_running()
        final = job.wait(60)
    assert not job.is_running() and final.status == "finished" and job.error is None
    second = job.exam
    assert second.version == 2 and {q.kind for q in second.questions} == {"tf"} and len(second.questions) == 2 * len(slices)
    assert store.versions("ex") == [1, 2] and store.version_path("ex", 1).read_text(encoding="utf-8") == frozen_text
    assert global_var.workspace().exams.load("ex").version == 2 and global_var.workspace().exams.load("ex", 1).questions == exam.questions
    with pytest.raises(UserError) as missing:
        global_var.workspace().exams.load("ex", 7)
    assert missing.value.key == "error.examgen_no_version" and "v1, v2" in str(missing.value)


def test_the_prompts_ask_for_strict_json_and_give_mc_distractors_from_other_docs(workdir):
    seen = []

    def record(info):
        seen.append(info)
        return "ok"

    with OpenAITestServer(faults=record) as server:
        create(server, kinds="mc,code", slice_ids=[s.slice_id for s in tidewater_slices()[:3]])
    assert all(is_exam_request(info) for info in seen) and len(seen) == 6
    mc = [info for info in seen if exam_request_kind(info) == "mc"]
    assert len(mc) == 3
    for info in mc:
        system = info.messages[0]["content"]
        assert "exactly 2 questions" in system and '"options"' in system and "JSON" in system
        assert "Another part of the same documentation" in info.prompt
    code = [info for info in seen if exam_request_kind(info) == "code"]
    assert all("Another part" not in info.prompt and "Write code with the library" in info.prompt for info in code)


def test_a_unit_that_never_gives_a_usable_reply_fails_and_is_recorded(workdir):
    first = tidewater_slices()[0]
    with OpenAITestServer(faults=lambda info: "malformed" if first.text[:60] in info.prompt and exam_request_kind(info) == "short"
                          else "ok") as server:
        prepared, progress, exam = create(server, kinds="short,tf")
    assert progress.status == "finished" and progress.failed_units == 1 and progress.failures == {"invalid_json": 1}
    assert exam.generator["failed_units"][0]["unit"] == f"{first.slice_id}:short"
    assert not any(q.source.slice_id == first.slice_id and q.kind == "short" for q in exam.questions)
    assert_exam_sound(exam, prepared)


def test_a_sigkilled_creation_resumes_without_duplicated_questions(workdir):
    root = global_var.workdir().root
    with OpenAITestServer(latency=0.15) as server:
        command = [sys.executable, "main.py", "--workdir", str(root), "--lang", "en", "exam", "create", "--docs", "tidewater",
                   "--name", "killed", "--base-url", server.base_url, "--model", "test-model", "--api-key", "k",
                   "--kinds", "mc,tf,short,code", "--per-slice", "2", "--concurrency", "2", "--question-lang", "en"]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        draft = global_var.workspace().exams.draft_path("killed")
        deadline = time.monotonic() + 60
        try:
            while not (draft.exists() and draft.read_text(encoding="utf-8").count(f'"type":"{UNIT_DONE}"') >= 3):
                if process.poll() is not None:
                    pytest.fail(f"exam create ended early:\n{process.stdout.read().decode(errors='replace')}")
                if time.monotonic() > deadline:
                    pytest.fail("exam create made no progress in 60 s")
                time.sleep(0.02)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            process.stdout.close()
        assert process.returncode == -signal.SIGKILL
        store = global_var.workspace().exams
        header, records = store.read_draft("killed")
        assert header["kinds"] == ["mc", "tf", "short", "code"] and not store.exists("killed")
        done_before = {r["unit"] for r in records if r["type"] == UNIT_DONE}
        # A torn line, as a kill in the middle of an append leaves it.
        with open(draft, "a", encoding="utf-8") as handle:
            handle.write('{"type":"unit_done","unit":"torn","questions":[{"id":')

        # Other settings are refused: the draft would mix two exams.
        with pytest.raises(UserError) as mismatch:
            prepare_exam(global_var.workspace(), "killed", "tidewater", provider_for(server), "mc", ExamSettings(**FAST), lang="en")
        assert mismatch.value.key == "error.examgen_draft_mismatch" and "kinds" in str(mismatch.value)

        prepared = prepare_exam(global_var.workspace(), "killed", "tidewater", provider_for(server), "mc,tf,short,code", ExamSettings(**FAST), lang="en")
        assert prepared.resuming and prepared.notes[-1][0] == "examgen.resuming"
        requests_before = server.stats["requests"]
        progress, exam = run_exam_creation(prepared)
        resumed_calls = server.stats["requests"] - requests_before
    assert progress.status == "finished" and progress.skipped_units >= len(done_before) >= 3
    assert resumed_calls == len(prepared.units) - progress.skipped_units, "no finished unit was asked again"
    assert len(exam.questions) == len(prepared.units) * 2 + len(prepared.units) // 4 * 2  # tf entries are twins
    assert_exam_sound(exam, prepared)
    assert Counter(q.id.rsplit(":", 1)[0] for q in exam.questions) == {
        unit.key: 4 if unit.kind == "tf" else 2 for unit in prepared.units}


def test_prepare_says_what_to_fix(workdir):
    with OpenAITestServer() as server:
        provider = provider_for(server)
        for kinds, key in (("mc,essay", "error.examgen_kinds"), ("", None)):
            if key:
                with pytest.raises(UserError) as bad:
                    prepare_exam(global_var.workspace(), "ex", "tidewater", provider, kinds)
                assert bad.value.key == key and "essay" in str(bad.value)
        with pytest.raises(UserError) as per_slice:
            prepare_exam(global_var.workspace(), "ex", "tidewater", provider, "mc", ExamSettings(per_slice=0))
        assert per_slice.value.key == "error.number_range" and "per slice" in str(per_slice.value)
        with pytest.raises(UserError) as slices:
            prepare_exam(global_var.workspace(), "ex", "tidewater", provider, "mc", slice_ids=["nope"])
        assert slices.value.key == "error.examgen_unknown_slices" and "nope" in str(slices.value)
        with pytest.raises(UserError) as name:
            prepare_exam(global_var.workspace(), "../x", "tidewater", provider, "mc")
        assert name.value.key.startswith("error.name_")
        with pytest.raises(UserError) as no_provider:
            main_args = ["exam", "create", "--docs", "tidewater", "--name", "x"]
            from frontend.cli.exam import _provider_from_args

            _provider_from_args(main.build_parser().parse_args(main_args))
        assert no_provider.value.key == "error.examgen_provider_args"


# ---------------------------------------------------------------- leakage


def test_leaked_questions_are_flagged_and_can_be_dropped_into_a_new_version(workdir, capsys):
    with OpenAITestServer() as server:
        _, _, exam = create(server, kinds="short,mc", slice_ids=[s.slice_id for s in tidewater_slices()[:4]])
    short = [q for q in exam.questions if q.kind == "short"]
    copied, reworded, mc = short[0], short[3], next(q for q in exam.questions if q.kind == "mc")
    store = global_var.datasets()
    store.create("train")
    store.append_items("train", [
        (qa_messages(copied.question, "x"), {"origin": "imported"}),
        (qa_messages(reworded.question.replace("What does", "What did").rstrip("?") + " ?", "x"), {"origin": "imported"}),
        (qa_messages(mc.question.upper(), "x"), {"origin": "imported"}),
        (qa_messages("How do I install tidewater with GPU support?", "x"), {"origin": "imported"}),
        # Alike in every character but a number: another fact, never a leak.
        (qa_messages(short[1].question.replace("-1?", "-9?"), "x"), {"origin": "imported"}),
    ])
    assert short[1].question.endswith("-1?")
    ids = {first_exchange(item["messages"])[0]: item["id"] for item in store.load("train").items.values()}

    result = check_exam_leakage(global_var.workspace(), "ex", "train")
    flagged = {entry["id"]: entry for entry in result.flagged}
    assert set(flagged) == {copied.id, reworded.id, mc.id} and result.checked == len(exam.questions)
    assert short[1].id not in flagged
    assert flagged[copied.id]["similarity"] == 1.0 and flagged[copied.id]["item_id"] == ids[copied.question]
    assert 0.7 <= flagged[reworded.id]["similarity"] < 1.0
    assert result.new_version is None

    reloaded = global_var.workspace().exams.load("ex")
    assert reloaded.version == 1 and sum(q.leakage.flagged for q in reloaded.questions) == 3
    leak = next(q.leakage for q in reloaded.questions if q.id == copied.id)
    assert leak.dataset == "train" and leak.item_id == ids[copied.question]
    assert len(reloaded.usable_questions(drop_leaked=True)) == len(exam.questions) - 3

    assert main.main(["--workdir", str(global_var.workdir().root), "--lang", "en", "exam", "check", "ex",
                      "--dataset", "train", "--drop"]) == 0
    out = capsys.readouterr().out
    assert "3 near-duplicates" in out and "v2" in out
    dropped = global_var.workspace().exams.load("ex")
    assert dropped.version == 2 and len(dropped.questions) == len(exam.questions) - 3
    assert dropped.generator["derived_from"] == 1 and sorted(dropped.generator["dropped"]) == sorted(flagged)
    assert not any(q.leakage.flagged for q in dropped.questions)
    assert global_var.workspace().exams.version_path("ex", 1).read_text(encoding="utf-8").count('"flagged": true') == 0, \
        "the frozen file itself is never rewritten"
    with pytest.raises(UserError) as no_dataset:
        check_exam_leakage(global_var.workspace(), "ex", "nope")
    assert no_dataset.value.key == "error.not_found"


def test_exam_list_and_show_on_the_command_line(workdir, capsys):
    with OpenAITestServer() as server:
        create(server, kinds="mc,tf", slice_ids=[tidewater_slices()[0].slice_id])
    root = str(global_var.workdir().root)
    assert main.main(["--workdir", root, "--lang", "en", "exam", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ex  v1 (1 versions)  docs tidewater  6 questions (mc 2, tf 4)" in listing
    assert main.main(["--workdir", root, "--lang", "en", "exam", "show", "ex"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("(mc)") == 2 and shown.count("  * ") == 6 and "True" in shown
    assert main.main(["--workdir", root, "--lang", "en", "exam", "show", "nope"]) == 2
    assert "no exam named “nope”" in capsys.readouterr().err


# ---------------------------------------------------------------- weak sections back to data


def _section(slice_) -> str:
    return " > ".join([slice_.source, *slice_.heading_path])


def scored_report(exam, run: str, right: dict[str, int]) -> ExamReport:
    """A report of a multiple-choice exam: the tuned model right on the first `right[section]` questions of each
    section, the base model on every fourth (chance)."""
    def scores(variant):
        result, seen = [], Counter()
        for q in exam.questions:
            seen[q.source.section] += 1
            correct = seen[q.source.section] <= right[q.source.section] if variant == "tuned" else seen[q.source.section] % 4 == 1
            result.append(QuestionScore(id=q.id, kind=q.kind, section=q.source.section, correct=correct, score=float(correct),
                                        chosen=q.answer if correct else (q.answer + 1) % 4))
        return aggregate(variant, result)

    return ExamReport(exam=exam.name, exam_version=exam.version, run=run, results={v: scores(v) for v in ("base", "tuned")})


def test_weak_sections_start_a_generation_on_exactly_their_slices(workdir, capsys):
    from train.weak_sections import prepare_weak_generation, weak_section_results

    slices = tidewater_slices()
    sections: dict[str, list[str]] = {}
    for s in slices:
        sections.setdefault(_section(s), []).append(s.slice_id)
    chosen = list(sections)[:4]
    with OpenAITestServer() as server:
        _, _, exam = create(server, kinds="mc", slice_ids=[sections[name][0] for name in chosen], per_slice=6)
        # The training dataset, generated from the first two sections' slices.
        trained_slices = [sections[chosen[0]][0], sections[chosen[1]][0]]
        generated = prepare_generation(global_var.workspace(), "tidewater", "facts", provider_for(server), "default-en", {"project_name": "Tidewater"},
                                       GenerationSettings(pairs_per_call=2, backoff_base_s=0.01), slice_ids=trained_slices)
        assert [s.slice_id for s in generated.slices] == trained_slices
        assert run_generation(generated).status == "finished"
        items = list(global_var.datasets().load("facts").items.values())

        # A run trained on it, and its exam report (an older single file, analysed when read): the tuned model
        # right on every question of sections 1 and 3, 1 of 6 in section 0 and none in section 2; base at chance.
        folder = global_var.workdir().child("training", "r1")
        (folder / "data").mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"model": "tiny", "dataset": "facts"}), encoding="utf-8")
        (folder / "data" / "train.jsonl").write_text("".join(json.dumps({"id": i["id"], "messages": i["messages"]}) + "\n"
                                                             for i in items), encoding="utf-8")
        assert Counter(q.source.section for q in exam.questions) == {name: 6 for name in chosen}
        report = scored_report(exam, "r1", {chosen[0]: 1, chosen[1]: 6, chosen[2]: 0, chosen[3]: 6})
        (folder / "exams").mkdir()
        (folder / "exams" / "ex.json").write_text(report.model_dump_json(), encoding="utf-8")

        _, rows = weak_section_results("ex", "r1", alpha=0.05)
        by_section = {row.section: row for row in rows}
        assert [name for name in chosen if by_section[name].weak] == [chosen[0], chosen[2]]
        assert by_section[chosen[2]].p_value < 0.001 and by_section[chosen[1]].p_value > 0.5
        assert by_section[chosen[0]].used == 6 and by_section[chosen[0]].rest == pytest.approx(12 / 18)
        assert by_section[chosen[0]].train_items == 2 and by_section[chosen[1]].train_items == 2
        assert by_section[chosen[2]].train_items == 0 and by_section[chosen[0]].base == pytest.approx(2 / 6, abs=1e-3)

        versions_before = len(global_var.datasets().versions("facts"))
        prepared = prepare_weak_generation(exam, rows, "facts", provider_for(server), "default-en",
                                           {"project_name": "Tidewater"}, GenerationSettings(pairs_per_call=2, backoff_base_s=0.01))
        expected = sections[chosen[0]] + sections[chosen[2]]
        assert sorted(s.slice_id for s in prepared.slices) == sorted(expected)
        assert prepared.settings.rounds == 2  # section 0's slice already has round 1 in the dataset
        progress = run_generation(prepared)
        assert progress.status == "finished" and progress.skipped_units == 1
        view = global_var.datasets().load("facts")
        new_units = {e["unit"] for e in view.events if e.get("type") == UNIT_DONE} - {f"{i}:1" for i in trained_slices}
        assert {unit.rsplit(":", 1)[0] for unit in new_units} == set(expected), "exactly the weak sections' slices"
        assert len(global_var.datasets().versions("facts")) == versions_before + 1, "the hand-off is one new dataset version"
        assert main.main(["--workdir", str(global_var.workdir().root), "--lang", "en", "exam", "weak", "ex", "--run", "r1",
                          "--dataset", "facts"]) == 0
        out = capsys.readouterr().out
        assert "2 of 4 sections are weak: on the kinds that tell knowledge from guessing (multiple choice)" in out
        assert "--generate" in out
        assert main.main(["--workdir", str(global_var.workdir().root), "--lang", "en", "exam", "weak", "ex", "--run", "r1",
                          "--dataset", "facts", "--generate", "--base-url", server.base_url, "--model", "test-model",
                          "--api-key", "k", "--template", "default-en", "--var", "project_name=Tidewater", "--pairs", "1"]) == 0
        out = capsys.readouterr().out
        assert f"{len(expected)} slices, round 3" in out and "status: finished" in out
    third = {e["unit"] for e in global_var.datasets().load("facts").events if e.get("type") == UNIT_DONE and e["unit"].endswith(":3")}
    assert {unit.rsplit(":", 1)[0] for unit in third} == set(expected)


def test_a_chinese_exam_uses_the_chinese_prompt_and_true_false_options(workdir):
    seen = []
    zh_slice = next(s for s in tidewater_slices() if s.source.startswith("zh/"))

    def record(info):
        seen.append(info)
        return "ok"

    with OpenAITestServer(faults=record) as server:
        prepared = prepare_exam(global_var.workspace(), "zh-exam", "tidewater", provider_for(server), "tf,mc", ExamSettings(**FAST), slice_ids=[zh_slice.slice_id])
        assert prepared.lang == "zh", "the language of the chosen slices"
        _, exam = run_exam_creation(prepared)
    assert all("只输出一个 JSON 对象" in info.messages[0]["content"] and "恰好包含 2 道题" in info.messages[0]["content"]
               for info in seen)
    assert "文档节选" in seen[0].prompt
    assert exam.lang == "zh" and {tuple(q.options) for q in exam.questions if q.kind == "tf"} == {("对", "错")}
