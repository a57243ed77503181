"""A proof a sceptic accepts (issue 23): the statistics on known counts, the baselines on hand-made cases,
true/false scoring that removes the label prior, coverage by the training data, code answers that must be
code, judges that see the evidence, reports that are never overwritten, and the whole loop on the tiny
model against a test server that knows the truth behind every question."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

import global_var
from schema.exam import Exam, ExamReport, ForgettingFigure, Question, QuestionScore, QuestionSource, result_key
from schema.provider import APIProvider
from tests.fact_server import FactResponder
from tests.openai_test_server import OpenAITestServer
from tools.evaluation.analysis import analyse_report
from tools.evaluation.coverage import question_coverage
from tools.evaluation.stats import below_rest_p, binomial_two_sided, bootstrap_interval, paired_test
from train.exam_scoring import aggregate

# ---------------------------------------------------------------- statistics on known counts


def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_pairs():
    # 9 questions tuned right where base was wrong, 3 the other way: two-sided p = 2 * P(X <= 3 | 12, 1/2).
    expected = 2 * sum(math.comb(12, k) for k in range(4)) / 2 ** 12
    assert binomial_two_sided(3, 12) == pytest.approx(expected) == pytest.approx(0.146, abs=1e-3)
    base = [0] * 9 + [1] * 3 + [1] * 20 + [0] * 8
    tuned = [1] * 9 + [0] * 3 + [1] * 20 + [0] * 8
    found = paired_test(base, tuned, binary=True)
    assert (found.test, found.n, found.better, found.worse) == ("mcnemar-exact", 40, 9, 3)
    assert found.p_value == pytest.approx(expected) and not found.significant
    assert found.gain == pytest.approx(6 / 40) and found.gain_low < found.gain < found.gain_high
    # All 12 discordant pairs one way: p = 2 / 2^12.
    assert paired_test([0] * 12, [1] * 12, binary=True).p_value == pytest.approx(2 / 4096)
    # Graded scores: the sign test on the questions whose scores differ (ties drop out).
    graded = paired_test([0.1, 0.2, 0.5, 0.5], [0.3, 0.4, 0.5, 0.9], binary=False)
    assert (graded.test, graded.better, graded.worse) == ("sign-test", 3, 0)
    assert graded.p_value == pytest.approx(0.25)


def test_bootstrap_intervals_are_seeded_and_hold_the_mean():
    values = [1] * 30 + [0] * 10
    low, high = bootstrap_interval(values)
    assert low < 0.75 < high and (low, high) == bootstrap_interval(values)
    assert 0.6 < low < 0.68 and 0.82 < high < 0.9  # about ±1.96 * sqrt(.75 * .25 / 40) = ±0.134
    assert bootstrap_interval([]) == (None, None) and bootstrap_interval([0.5]) == (0.5, 0.5)


def test_a_subset_below_the_rest_is_significant_only_when_the_gap_is_large_for_its_size():
    rest = [1] * 30 + [0] * 10
    assert below_rest_p([0] * 6, rest, binary=True) < 0.001
    assert below_rest_p([0, 1], rest, binary=True) > 0.05  # two questions cannot show much
    assert below_rest_p([1] * 6, rest, binary=True) > 0.5
    assert below_rest_p([0.1, 0.2, 0.1], [0.8, 0.9, 0.7, 0.9, 0.8, 0.85], binary=False) < 0.05


# ---------------------------------------------------------------- baselines on hand-made cases


def _mc(qid: str, answer: int, options: int = 4, section: str = "a.md", excerpt: str | None = None) -> Question:
    return Question(id=qid, kind="mc", question=f"Which value is {qid}?", options=[str(10 * i + 1) for i in range(options)],
                    answer=answer, source=QuestionSource(source_doc=section, heading_path=["H"], excerpt=excerpt))


def _tf(qid: str, true: bool, pair: str | None = None) -> Question:
    return Question(id=qid, kind="tf", question=f"Statement {qid}.", options=["True", "False"], answer=0 if true else 1, pair=pair,
                    source=QuestionSource(source_doc="b.md", heading_path=["H"]))


def _scores(questions: list[Question], right: set[str], model: str, condition: str = "closed"):
    scores = [QuestionScore(id=q.id, kind=q.kind, section=q.source.section, correct=q.id in right, score=float(q.id in right),
                            chosen=q.answer if q.id in right else (q.answer + 1) % len(q.options)) for q in questions]
    return aggregate(model, scores, condition=condition)


def test_each_kind_is_reported_against_chance_majority_and_its_question_blind_score():
    # Eight multiple-choice questions with 4 options (chance 25 %) whose right option is at position 0 five times
    # (majority 62.5 %), and two with 2 options (chance 50 %): chance 30 %.
    questions = [_mc(f"m{i}", 0 if i < 5 else i % 4) for i in range(8)] + [_mc("m8", 1, 2), _mc("m9", 0, 2)]
    everything = {q.id for q in questions}
    results = {"base": _scores(questions, {"m0", "m1", "m2"}, "base"),
               "tuned": _scores(questions, everything - {"m9"}, "tuned"),
               result_key("base", "blind"): _scores(questions, {"m0", "m1", "m2", "m3", "m4"}, "base", "blind"),
               result_key("tuned", "blind"): _scores(questions, {"m0", "m1"}, "tuned", "blind"),
               result_key("base", "open"): _scores(questions, everything - {"m7"}, "base", "open"),
               result_key("tuned", "open"): _scores(questions, everything, "tuned", "open")}
    analysis, flags = analyse_report(questions, results)
    mc = analysis["mc"]
    assert mc.n == 10 and mc.metric == "accuracy"
    assert mc.chance == pytest.approx(0.3) and mc.majority == pytest.approx(0.6)
    assert mc.blind == {"base": 0.5, "tuned": 0.2}
    assert mc.closed["base"].value == 0.3 and mc.closed["tuned"].value == 0.9
    assert mc.closed["tuned"].low < 0.9 <= mc.closed["tuned"].high and mc.closed["tuned"].n == 10
    assert mc.open_book["base"].value == 0.9 and mc.open_book["tuned"].value == 1.0
    assert (mc.test.better, mc.test.worse) == (6, 0) and mc.test.p_value == pytest.approx(2 / 64)
    assert mc.test.significant
    # Questions the base gets right without the question, and those it gets wrong even open book, are flagged.
    assert mc.guessable == 5 and mc.broken == 1
    assert flags["m0"] == ["guessable"] and flags["m7"] == ["broken"]
    # The tuned 90 % is significantly above the best baseline (majority 60 %): the kind discriminates.
    assert mc.discriminating is True


def test_a_kind_whose_scores_need_no_knowledge_does_not_discriminate():
    # True/false balanced: always answering "True" is 50 %; a model at 62.5 % on 8 statements proves nothing.
    questions = [_tf(f"t{i}", i % 2 == 0) for i in range(8)]
    right = {"t0", "t2", "t4", "t6", "t1"}
    analysis, _ = analyse_report(questions, {"base": _scores(questions, right, "base"), "tuned": _scores(questions, right, "tuned")})
    tf = analysis["tf"]
    assert tf.chance == 0.5 and tf.majority == 0.5 and tf.discriminating is False
    assert tf.test.p_value == 1.0 and not tf.test.significant and tf.test.gain == 0


def test_true_false_scoring_removes_the_models_label_preference(monkeypatch):
    """A model that prefers "True" by a wide margin and knows a little: uncalibrated it answers True to every
    statement (50 % on a balanced set); with the content-free statement's margin removed, it is right on all."""
    import train.exam_scoring as scoring

    statements = [_tf(f"t{i}", i % 2 == 0, pair=f"p{i // 2}") for i in range(8)]

    def fake_logprobs(model, tokenizer, prompts, batch_size=8, packed=None, progress=None, stop_event=None):
        found = []
        for messages, options in prompts:
            text = messages[0]["content"]
            true_statement = any(f"Statement t{i}." in text for i in range(0, 8, 2))
            knowledge = 0.5 if true_statement else (-0.5 if "Statement t" in text else 0.0)
            found.append([(-1.0 + 3.0 + knowledge, 1), (-1.0, 1)])  # True favoured by +3 whatever the statement
        return found

    monkeypatch.setattr(scoring, "option_logprobs", fake_logprobs)
    closed = scoring.score_choice_questions(None, None, statements, "en")
    assert [s.raw_chosen for s in closed] == [0] * 8, "uncalibrated: always True"
    assert all(s.correct for s in closed) and [s.chosen for s in closed] == [0, 1] * 4
    assert closed[0].margin == pytest.approx(0.5) and closed[1].margin == pytest.approx(-0.5)
    blind = scoring.score_choice_questions(None, None, statements, "en", condition="blind")
    assert [s.chosen for s in blind] == [0] * 8 and sum(s.correct for s in blind) == 4  # the label preference itself


# ---------------------------------------------------------------- coverage by the training data


def _item(item_id: str, question: str, answer: str, unit: str | None = None, source: str | None = None) -> dict:
    provenance = {k: v for k, v in (("unit", unit), ("source_doc", source), ("heading_path", ["H"] if source else None)) if v}
    return {"id": item_id, "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            **({"provenance": provenance} if provenance else {})}


def test_coverage_compares_question_answer_and_options_not_the_question_text_alone():
    items = [
        _item("i1", "In tidewater, the default stage timeout is ___ seconds: what goes in the blank?",
              "The default stage timeout is 300 seconds.", unit="s1:1", source="api.md"),
        _item("i2", "How long may one attempt of a stage run by default?", "A stage attempt may run 300 seconds unless "
              "its timeout is set.", unit="s1:2", source="api.md"),
        _item("i3", "What does TW-1203 mean?", "TW-1203 means the stage timed out.", unit="s2:1", source="errors.md"),
    ]
    source = QuestionSource(source_doc="api.md", heading_path=["H"], slice_id="s1")
    cloze = Question(id="cloze", kind="mc", question="Fill in the blank: The default stage timeout is ___ seconds.",
                     options=["300", "600", "150", "30"], answer=0, source=source)
    # The same fact asked in other words: the answer is trained, the question's words only partly.
    paraphrase = Question(id="para", kind="short", question="By default, how many seconds may a stage attempt last?",
                          answer="300", source=source)
    untrained = Question(id="new", kind="mc", question="What is the default of retry.max_backoff in seconds?",
                         options=["60.0", "30.0", "120.0", "15.0"], answer=0, source=source)
    other_slice = Question(id="other", kind="short", question="Which error code means retries were exhausted?", answer="TW-1202",
                           source=QuestionSource(source_doc="guide.md", heading_path=["Errors"], slice_id="s9"))
    true_twin = Question(id="p:t", kind="tf", question="The default stage timeout is 300 seconds.", options=["True", "False"],
                         answer=0, pair="p", source=source)
    false_twin = Question(id="p:f", kind="tf", question="The default stage timeout is 600 seconds.", options=["True", "False"],
                          answer=1, pair="p", source=source)
    found = question_coverage([cloze, paraphrase, untrained, other_slice, true_twin, false_twin], items)
    assert found["cloze"].coverage == "verbatim" and found["cloze"].item_id == "i1"
    assert found["para"].coverage == "paraphrased"
    assert found["new"].coverage == "untrained" and found["new"].slice_trained is True
    assert found["other"].coverage == "untrained" and found["other"].slice_trained is False
    # The false twin alters the fact its true twin states: it is covered as the true one is.
    assert found["p:t"].coverage == found["p:f"].coverage == "verbatim"
    assert question_coverage([cloze], [{k: v for k, v in items[0].items() if k != "provenance"}])["cloze"].slice_trained is None


def test_the_leakage_check_flags_a_cloze_asked_with_another_lead_in(workdir):
    from schema.dataset import qa_messages
    from tools.generation.exam_leakage import check_exam_leakage

    store = global_var.datasets()
    store.create("train")
    store.append_items("train", [(qa_messages(f"According to the docs, the default {name} is ___: what goes in the blank?",
                                              f"The default {name} is {value}."), {"origin": "test"})
                                 for name, value in (("max_workers", "4"), ("tick_interval", "30"), ("cache.ttl", "86400"))])
    questions = [Question(id="verbatim", kind="short", question="According to the docs, the default max_workers is ___: what "
                          "goes in the blank?", answer="4"),
                 Question(id="lead-in", kind="mc", question="Which value completes: the default tick_interval is ___?",
                          options=["30", "60", "15", "120"], answer=0),
                 Question(id="lead-in-2", kind="short", question="Fill in the blank: the default cache.ttl is ___.", answer="86400"),
                 Question(id="untrained", kind="short", question="Fill in the blank: the default stage.timeout is ___.", answer="300"),
                 Question(id="other-value", kind="mc", question="Which value completes: the default tick_interval is ___ minutes?",
                          options=["5", "10", "15", "20"], answer=0)]
    exam = Exam(name="leaky", questions=questions)
    store_exams = global_var.workspace().exams
    with store_exams.lock("leaky").acquire():
        store_exams.save_new_version(exam)
    result = check_exam_leakage(global_var.workspace(), "leaky", "train")
    flagged = {entry["id"] for entry in result.flagged}
    assert flagged == {"verbatim", "lead-in", "lead-in-2"}
    matches = {qid: leak["match"] for qid, leak in store_exams.leakage("leaky", 1)["flags"].items()}
    assert matches["verbatim"] == "question" and matches["lead-in"] == matches["lead-in-2"] == "cloze"


# ---------------------------------------------------------------- code answers must be code


def test_code_answers_without_code_or_that_do_not_parse_score_nothing_and_run_code_must_match_the_reference():
    from pathlib import Path

    from tools.evaluation.code import docs_name_index
    from tools.evaluation.sandbox import package_paths
    from tools.core.workdir import SAMPLE_DOCS_SOURCE
    from train.exam_scoring import CodeRunner, check_code_answers

    reference = ('import inspect\nfrom tidewater import RetryPolicy\n\n'
                 'print(inspect.signature(RetryPolicy).parameters["max_backoff"].default)')
    question = Question(id="c1", kind="code", question="Write code with the library that prints the default max_backoff of "
                        "RetryPolicy.", answer=reference)
    index = docs_name_index([(SAMPLE_DOCS_SOURCE / "tidewater" / "api" / "pipeline.md").read_text(encoding="utf-8")])
    outputs = {
        "prose": "TW-1001 means the configuration is invalid; use RetryPolicy with max_backoff.",
        "broken": "```python\nfrom tidewater import RetryPolicy\nprint(RetryPolicy(\n```",
        "right": "```python\nfrom tidewater import RetryPolicy\nprint(RetryPolicy().max_backoff)\n```",
        "wrong": "```python\nfrom tidewater import RetryPolicy\nprint(RetryPolicy().backoff_base)\n```",
        "invented": "```python\nfrom tidewater import RetryPolicy\nprint(RetryPolicy.maximum_backoff_seconds())\n```",
    }
    questions = [question.model_copy(update={"id": key}) for key in outputs]
    # Without a runner: parsed, names checked inside the code only.
    checks = check_code_answers(questions, outputs, "python", index, None)
    assert checks["prose"]["code_found"] is False and checks["prose"]["grounding"] is None
    assert checks["broken"]["code_parses"] is False and "SyntaxError" in checks["broken"]["code_detail"]
    assert checks["right"]["code_parses"] is True and checks["right"]["grounding"] == 1.0
    assert "tidewater.RetryPolicy.maximum_backoff_seconds" in checks["invented"]["unknown_names"]
    # With the sample package importable: run, and compared with what the reference prints.
    runner = CodeRunner(paths=package_paths(Path(SAMPLE_DOCS_SOURCE / "tidewater")))
    assert runner.paths, "the sample doc set ships its package in .package"
    checks = check_code_answers(questions, outputs, "python", index, runner)
    assert runner.expected["right"].stdout.strip() == "60.0"
    assert checks["right"]["code_passed"] is True and checks["right"]["code_ran"] is True
    assert checks["wrong"]["code_passed"] is False and "printed something else" in checks["wrong"]["code_detail"]
    assert checks["invented"]["code_passed"] is False and "AttributeError" in checks["invented"]["code_detail"]
    assert "code_passed" not in checks["prose"] and "code_passed" not in checks["broken"]


# ---------------------------------------------------------------- judges see the evidence


def test_judges_of_exam_answers_see_the_source_slice(workdir, monkeypatch):
    import train.evaluation as evaluation
    from train.exam_scoring import score_open_questions

    facts, prompts = FactResponder(seed=3), []

    def responder(info):
        prompts.append(info.prompt)
        return facts(info)

    excerpt = "## Defaults\n\nThe default stage timeout is 300 seconds."
    questions = [Question(id="s1", kind="short", question="What is the default stage timeout in seconds?", answer="300",
                          source=QuestionSource(source_doc="api.md", heading_path=["Defaults"], excerpt=excerpt)),
                 Question(id="s2", kind="short", question="What is the default stage timeout in seconds, again?", answer="300")]
    monkeypatch.setattr(evaluation, "greedy_answers", lambda model, tokenizer, prompts, *args, **kwargs: ["It is 300."] * len(prompts))
    with OpenAITestServer(responder=responder) as server:
        judge = APIProvider(name="judge", base_url=server.base_url, model_id="test-model", api_key="k", max_concurrency=4)
        scores = score_open_questions(None, None, questions, judge, "en", evidence={"s1": excerpt})
    assert [s.judge for s in scores] == [1.0, 1.0]  # the server's grade: the reference's value is in the answer
    by_question = {next(q.id for q in questions if f"Question: {q.question}\n" in prompt): prompt for prompt in prompts}
    assert "Documentation excerpt (the evidence):\n<<<\n## Defaults\n\nThe default stage timeout is 300 seconds.\n>>>" in by_question["s1"]
    assert "(no documentation excerpt" in by_question["s2"]


# ---------------------------------------------------------------- nothing overwritten


def test_every_exam_run_is_kept_and_a_later_run_without_forgetting_hides_nothing(workdir):
    from train.exam_reports import exam_report_path, exam_reports, latest_forgetting, read_exam_report, save_exam_report

    folder = global_var.workdir().child("training", "r1")
    (folder / "exams").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": "tiny", "dataset": "d"}), encoding="utf-8")
    legacy = ExamReport(exam="ex", exam_version=1, run="r1", created_at="2026-01-01T00:00:00+00:00",
                        forgetting=ForgettingFigure(sample="s", rise=0.269))
    (folder / "exams" / "ex.json").write_text(legacy.model_dump_json(), encoding="utf-8")
    first = save_exam_report(ExamReport(exam="ex", exam_version=1, run="r1", scoring={"normalise": "mean"},
                                        forgetting=ForgettingFigure(sample="s", rise=0.181)))
    second = save_exam_report(ExamReport(exam="ex", exam_version=1, run="r1", scoring={"normalise": "sum"}))
    assert (first.name, second.name) == ("1.json", "2.json") and first.exists() and second.exists()
    assert [r.number for r in exam_reports("r1", "ex")] == [0, 1, 2]
    assert read_exam_report("r1", "ex").scoring == {"normalise": "sum"} and read_exam_report("r1", "ex", 1).forgetting.rise == 0.181
    assert exam_report_path("r1", "ex") == second and exam_report_path("r1", "ex", 0) == folder / "exams" / "ex.json"
    assert latest_forgetting("r1").rise == 0.181, "the run without a forgetting figure did not erase it"


# ---------------------------------------------------------------- the whole loop, with controls


def test_the_whole_loop_reports_every_baseline_with_controls_that_show_what_was_not_trained(workbench, capsys):
    """Docs -> exam with control sections -> generation that skips them -> training -> exam run with a judge,
    against a server that knows the truth: the report carries, per kind, every figure a sceptic asks for."""
    import main
    from tools.generation.engine import GenerationSettings, prepare_generation, run_generation
    from tools.generation.exams import ExamSettings, prepare_exam, run_exam_creation
    from train.config import TrainConfig
    from train.exam import run_exam
    from train.launcher import start_training

    facts, judge_prompts = FactResponder(seed=5, docs=global_var.workdir().child("docs", "tidewater")), []

    def responder(info):
        if "Reference answer:" in info.prompt:
            judge_prompts.append(info.prompt)
        return facts(info)

    controls = ["guide/errors.md", "notes/design.txt"]
    # The exam asks about the control documents and five slices generation trains on (two of them show the
    # signatures code tasks are written from): a third of the doc set keeps the test short.
    from tools.docs.docsets import slice_docset

    slices, _ = slice_docset(global_var.workdir().child("docs", "tidewater"))
    examined = [s.slice_id for s in slices if s.source in controls or s.source == "guide/quickstart.md"
                or (s.source == "api/pipeline.md" and ("RetryPolicy(" in s.text or "Stage(" in s.text))]
    with OpenAITestServer(responder=responder) as server:
        provider = global_var.providers().add(name="facts", base_url=server.base_url, model_id="test-model", api_key="k",
                                              max_concurrency=16, timeout_s=10)
        prepared = prepare_exam(global_var.workspace(), "proof", "tidewater", provider, "mc,tf,short,code", ExamSettings(per_slice=1, concurrency=16),
                                slice_ids=examined, lang="en", control_sections=controls)
        progress, exam = run_exam_creation(prepared)
        assert progress.status == "finished" and exam.control_sections == controls
        generation = prepare_generation(global_var.workspace(), "tidewater", "docs-qa", provider, "default-en", {"project_name": "Tidewater"},
                                        GenerationSettings(rounds=2, pairs_per_call=4, concurrency=16))
        assert ("generate.control_skipped" in {key for key, _ in generation.notes})
        assert not {s.source for s in generation.slices} & set(controls)
        assert run_generation(generation).status == "finished"
        job = start_training(TrainConfig(model="tiny", dataset="docs-qa", max_steps=40, batch_size=8, grad_accum=1,
                                         learning_rate=1e-2, lora_r=16, lora_alpha=16, max_length=512, save_steps=1000,
                                         logging_steps=10, eval_ratio=0.0, seed=1))
        assert job.wait(600)
        job.raise_if_failed()
        # The forgetting figure (and its band) is tested on its own (tests/test_exam_scoring.py): 5 s saved here.
        report = run_exam(exam, job.run_name, judge_provider="facts", max_new_tokens=24, forgetting=False)

    # True/false is balanced (the writer gave twins), so always answering one label scores 50 %.
    tf_answers = Counter(q.answer for q in exam.questions if q.kind == "tf")
    assert tf_answers[0] == tf_answers[1] > 0
    assert {q.kind for q in exam.questions} >= {"mc", "tf", "short", "code"}
    for kind in ("overall", "mc", "tf", "short", "code"):
        group = report.analysis[kind]
        assert group.n > 0 and set(group.closed) == {"base", "tuned"} and set(group.open_book) == {"base", "tuned"}
        assert group.test is not None and group.test.p_value is not None and group.test.n == group.n
        assert group.closed["tuned"].low is not None and group.closed["tuned"].high is not None
        if kind != "code":  # code tasks come from the slices that show a signature, none of them a control
            assert {"slice:trained", "slice:untrained"} <= set(group.splits), kind
    for kind in ("mc", "tf"):
        group = report.analysis[kind]
        assert group.chance is not None and group.majority is not None and set(group.blind) == {"base", "tuned"}
    assert report.analysis["tf"].majority == 0.5 and report.analysis["tf"].chance == 0.5
    assert report.analysis["mc"].chance == 0.25
    # The control sections' questions are the untrained slices; every question has a coverage class.
    control_questions = {q.id for q in exam.questions if q.source.source_doc in controls}
    assert {qid for qid, c in report.coverage.items() if c.slice_trained is False} == control_questions
    assert all(report.coverage[qid].coverage == "untrained" for qid in control_questions)
    assert report.analysis["overall"].splits["slice:untrained"].n == len(control_questions)
    # Code answers were run against the sample package; the judge saw each question's slice.
    assert report.scoring["code_run"] is True
    assert all(s.code_found is not None for s in report.results["tuned"].questions if s.kind == "code")
    for question in (q for q in exam.questions if q.kind in ("short", "code")):
        prompts = [p for p in judge_prompts if f"\nQuestion: {question.question}\n" in p]
        assert len(prompts) == 4, question.question  # base and tuned, closed and open book
        assert all(f"<<<\n{question.source.excerpt}\n>>>" in p for p in prompts), question.question

    # The CLI prints the same report as JSON; a second run is a new report, the first kept.
    capsys.readouterr()
    assert main.main(["--workdir", str(global_var.workdir().root), "--lang", "en", "exam", "run", "proof", "--run", job.run_name,
                      "--json", "--no-forgetting", "--no-run-code", "--conditions", "closed", "--max-new-tokens", "8"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["number"] == 2 and set(printed["analysis"]) >= {"overall", "mc", "tf", "short", "code"}
    assert printed["analysis"]["mc"]["test"]["p_value"] is not None and printed["analysis"]["mc"]["open_book"] == {}
    from train.exam_reports import exam_reports

    assert [r.number for r in exam_reports(job.run_name, "proof")] == [1, 2]
    assert exam_reports(job.run_name, "proof")[0].scoring["conditions"] == ["closed", "blind", "open"]
