"""The LLM judge against the OpenAI test server: good, malformed and failing verdicts, resume after a
kill and after a cancel with no double scoring, edited items, accounting, sources, the CLI."""

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
from db.score_store import EDITED, NOT_JUDGED, SCORED, UNSCORED
from schema.provider import APIProvider
from tests.openai_test_server import JUDGE_CRITERIA, OpenAITestServer, judgement_scores
from tools.core.errors import UserError
from frontend.jobs import start_judge_job
from tools.generation.engine import GenerationSettings, prepare_generation, run_generation
from tools.llm.replies import OutputError
from tools.quality.judge import (
    CRITERIA,
    SCORE_COLUMNS,
    JudgeSettings,
    enable_scoring,
    item_scores,
    parse_judgement,
    prepare_judge,
    resolve_judge_template,
    run_judge,
    score_rows,
    score_summary,
)

REPO = Path(__file__).resolve().parent.parent
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}


def provider_for(server: OpenAITestServer, timeout_s: float = 2.0, api_key: str = "k", **prices) -> APIProvider:
    return APIProvider(name="judge", base_url=server.base_url, model_id="judge-model", api_key=api_key,
                       max_concurrency=64, timeout_s=timeout_s, **prices)


def make_dataset(name: str, questions: list[str]) -> list[str]:
    store = global_var.datasets()
    store.create(name)
    return [store.append_item(name, [{"role": "user", "content": q}, {"role": "assistant", "content": f"Answer to {q}"}])["id"]
            for q in questions]


def judge(server, dataset="ds", provider=None, lang="en", **settings) -> tuple:
    prepared = prepare_judge(global_var.workspace(), dataset, provider or provider_for(server), lang=lang,
                             settings=JudgeSettings(**{**FAST, "concurrency": 8, **settings}))
    return prepared, run_judge(prepared)


def score_records(dataset: str) -> list[dict]:
    """Every complete record of the sidecar, in order."""
    path = global_var.scores().path(dataset)
    lines = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines[:-1] if line.strip()]


def scored_once(dataset: str) -> Counter:
    return Counter(r["id"] for r in score_records(dataset) if r.get("status") == SCORED)


VERDICT = {name: {"score": 7, "reason": "Fine."} for name in CRITERIA}


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("content", [
    json.dumps({**VERDICT, "overall": {"score": 8, "reason": "Good."}}),
    "```json\n" + json.dumps({**VERDICT, "overall": 8}) + "\n```",
    "<think>weigh {it}</think>" + json.dumps({**VERDICT, "overall": {"score": "8", "reason": "Good."}}),
    "Here is my verdict: " + json.dumps({**{k.upper(): v for k, v in VERDICT.items()}, "Overall": 8}) + " Done.",
])
def test_parse_accepts_the_shapes_judges_produce(content):
    judgement = parse_judgement(content, has_source=True)
    assert judgement["overall"] == 8
    assert all(judgement["scores"][name] == {"score": 7, "reason": "Fine."} for name in CRITERIA)


@pytest.mark.parametrize("content, reason, where", [
    ("", "empty_output", "empty"),
    ('{"groundedness": {"score": 7, "reason": "x"}, "corr', "invalid_json", "JSON"),
    (json.dumps({"items": [1]}), "wrong_schema", "groundedness"),
    (json.dumps({**VERDICT, "clarity": {"score": 7}, "overall": 7}), "wrong_schema", "clarity.reason"),
    (json.dumps({**VERDICT, "correctness": {"score": 11, "reason": "x"}, "overall": 7}), "out_of_range", "correctness.score"),
    (json.dumps({**VERDICT, "overall": 0}), "out_of_range", "overall"),
    (json.dumps({**VERDICT, "relevance": {"score": "high", "reason": "x"}, "overall": 7}), "wrong_schema", "relevance.score"),
    (json.dumps(VERDICT), "wrong_schema", "overall"),
    (json.dumps([VERDICT]), "wrong_schema", "object"),
])
def test_parse_refuses_with_a_reason_naming_the_field(content, reason, where):
    with pytest.raises(OutputError) as refused:
        parse_judgement(content, has_source=True)
    assert refused.value.reason == reason and where in refused.value.detail


def test_groundedness_is_null_without_a_source():
    no_grounding = {k: v for k, v in VERDICT.items() if k != "groundedness"}
    judgement = parse_judgement(json.dumps({**no_grounding, "groundedness": None, "overall": 6}), has_source=False)
    assert judgement["scores"]["groundedness"] is None and judgement["overall"] == 6
    with pytest.raises(OutputError):
        parse_judgement(json.dumps({**no_grounding, "overall": 6}), has_source=True)


# ---------------------------------------------------------------- templates


def test_templates_default_by_language_and_a_stored_one_overrides(workdir):
    zh, zh_lang = resolve_judge_template(global_var.prompts(), None, "zh")
    en, en_lang = resolve_judge_template(global_var.prompts(), None, "en")
    assert (zh.name, zh_lang, en.name, en_lang) == ("judge-default", "zh", "judge-default-en", "en")
    assert "问题" in zh.content and "Question" in en.content
    assert resolve_judge_template(global_var.prompts(), "judge-default-en")[1] == "en"  # the built-in's language when none is asked
    prompts = global_var.prompts()
    prompts.add(name="judge-default-en", content="Strict review.\n{document_slice}\nQ: {question}\nA: {answer}")
    assert resolve_judge_template(global_var.prompts(), None, "en")[0].content.startswith("Strict review.")
    prompts.add(name="no-answer", content="{document_slice} {question}")
    with pytest.raises(UserError) as missing:
        resolve_judge_template(global_var.prompts(), "no-answer")
    assert missing.value.key == "error.judge_template_missing" and "{answer}" in str(missing.value)
    with pytest.raises(UserError) as generation_template:
        resolve_judge_template(global_var.prompts(), "default-en")  # a generation template: {project_name} has no value here
    assert generation_template.value.key == "error.judge_template_missing"
    prompts.add(name="extra", content="{document_slice} {question} {answer} {project_name}")
    with pytest.raises(UserError) as unknown:
        resolve_judge_template(global_var.prompts(), "extra")
    assert unknown.value.key == "error.judge_template_unknown" and "{project_name}" in str(unknown.value)
    with pytest.raises(UserError) as absent:
        resolve_judge_template(global_var.prompts(), "nope")
    assert absent.value.key == "error.judge_template_not_found" and "judge-default-en" in str(absent.value)


# ---------------------------------------------------------------- runs


# Each item (by its question's marker) meets one scenario: the kinds its successive requests get.
SCENARIOS = {
    "good": ([], SCORED),
    "fenced": (["fenced"], SCORED),
    "think": (["think"], SCORED),
    "limited-once": (["429"], SCORED),
    "error-once": (["500"], SCORED),
    "malformed-once": (["malformed"], SCORED),  # the correction call succeeds
    "malformed": (["malformed", "malformed"], "invalid_json"),
    "wrong-shape": (["wrong_schema", "wrong_schema"], "wrong_schema"),
    "empty": (["empty", "empty"], "empty_output"),
    "failing": (["500", "500", "500"], "server_error"),
    "limited": (["429", "429", "429"], "rate_limited"),
}


def scenario_plan(info):
    marker = next(name for name in SCENARIOS if f"[case:{name}]" in info.prompt)
    kinds = SCENARIOS[marker][0]
    return kinds[info.attempt] if info.attempt < len(kinds) else "ok"


def test_good_malformed_and_failing_verdicts_leave_nothing_dropped(workdir):
    ids = make_dataset("ds", [f"What is case {i}? [case:{name}]" for i, name in enumerate(SCENARIOS)])
    before = global_var.datasets().load("ds").items.copy()
    with OpenAITestServer(faults=scenario_plan) as server:
        prepared, final = judge(server, max_attempts=3)
        served = server.stats["by_kind"]
    expected_unscored = Counter(outcome for _, outcome in SCENARIOS.values() if outcome != SCORED)
    assert final.status == "finished"
    assert final.scored == sum(1 for _, outcome in SCENARIOS.values() if outcome == SCORED)
    assert final.failures == dict(expected_unscored) and final.unscored == sum(expected_unscored.values())
    assert final.scored + final.unscored == len(ids) == final.total_items
    assert final.retries > 0 and all(served[k] for k in ("fenced", "think", "429", "500", "malformed", "wrong_schema", "empty"))
    # Nothing dropped: the dataset is untouched, and every item has a status with its reason.
    assert global_var.datasets().load("ds").items == before
    entries = item_scores(global_var.workspace(), "ds")
    assert set(entries) == set(ids)
    for item_id, question in zip(ids, SCENARIOS):
        entry, outcome = entries[item_id], SCENARIOS[question][1]
        if outcome == SCORED:
            assert entry.status == SCORED and entry.overall is not None and entry.source is False
            assert entry.scores["groundedness"] is None  # a dataset without a source: "no source"
            assert all(entry.scores[name]["reason"] for name in CRITERIA if name != "groundedness")
        else:
            assert (entry.status, entry.reason) == (UNSCORED, outcome) and entry.detail
    summary = score_summary(global_var.workspace(), "ds")
    assert summary["unscored_by_reason"] == dict(expected_unscored)
    assert summary["scored"] == final.scored and sum(summary["histogram"].values()) == final.scored
    assert summary["last_run"]["failures"] == dict(expected_unscored)
    rows = score_rows(global_var.workspace(), "ds")
    assert len(rows) == len(ids) and all(len(row) == len(SCORE_COLUMNS) for row in rows)
    by_id = {row[0]: dict(zip(SCORE_COLUMNS, row)) for row in rows}
    failing = by_id[ids[list(SCENARIOS).index("failing")]]
    assert failing["status"] == UNSCORED and failing["overall"] is None and failing["reason"].startswith("server_error")

    # A second run judges again only the unscored items, and the scored ones keep their single score.
    with OpenAITestServer() as server:
        _, again = judge(server)
        assert server.requests == final.unscored
    assert (again.skipped_items, again.scored, again.unscored) == (final.scored, final.unscored, 0)
    assert set(scored_once("ds").values()) == {1} and len(scored_once("ds")) == len(ids)


def test_verdicts_scores_and_accounting(workdir):
    make_dataset("ds", [f"Question number {i}?" for i in range(12)])
    with OpenAITestServer(latency=0.01) as server:
        provider = provider_for(server, price_input_per_m=2.0, price_output_per_m=8.0)
        _, final = judge(server, provider=provider, concurrency=4)
        tokens = (server.stats["prompt_tokens"], server.stats["completion_tokens"])
        assert server.stats["max_in_flight"] <= 4
    assert (final.tokens_in, final.tokens_out) == tokens and tokens[0] > 0
    assert final.cost == pytest.approx(provider.estimate_cost(*tokens))
    records = [r for r in score_records("ds") if "id" in r]
    assert sum(r["tokens"][0] for r in records) == tokens[0] and sum(r["tokens"][1] for r in records) == tokens[1]
    run = score_records("ds")[-1]["run"]
    assert run["tokens"] == {"in": tokens[0], "out": tokens[1]} and run["cost"] == pytest.approx(final.cost)
    # The stored scores are the server's verdicts.
    for record in records:
        assert record["judge"] == {"provider": "judge", "model": "judge-model", "template": "judge-default-en", "lang": "en"}
        assert {name for name in record["scores"]} == set(JUDGE_CRITERIA)
        assert isinstance(record["overall"], int) and 1 <= record["overall"] <= 10
    assert final.mean_overall == pytest.approx(sum(r["overall"] for r in records) / len(records), abs=0.01)


def test_edited_item_becomes_unscored_and_alone_is_judged_again(workdir):
    ids = make_dataset("ds", [f"Edit case {i}?" for i in range(5)])
    with OpenAITestServer() as server:
        judge(server)
        store = global_var.datasets()
        store.update_item("ds", ids[2], [{"role": "user", "content": "Edit case 2, reworded?"},
                                         {"role": "assistant", "content": "A better answer."}])
        entries = item_scores(global_var.workspace(), "ds")
        assert (entries[ids[2]].status, entries[ids[2]].reason) == (UNSCORED, EDITED)
        assert all(entries[i].status == SCORED for i in ids if i != ids[2])
        server.reset_stats()
        _, again = judge(server)
        assert server.requests == 1
    assert (again.skipped_items, again.scored) == (4, 1)
    assert item_scores(global_var.workspace(), "ds")[ids[2]].status == SCORED
    new_item = store.append_item("ds", [{"role": "user", "content": "New?"}, {"role": "assistant", "content": "Yes."}])
    assert (item_scores(global_var.workspace(), "ds")[new_item["id"]].status, item_scores(global_var.workspace(), "ds")[new_item["id"]].reason) == (UNSCORED, NOT_JUDGED)


def test_generated_items_are_judged_against_their_slice(workdir):
    seen_prompts = []

    def record(info):
        seen_prompts.append(info.prompt)
        return "ok"

    with OpenAITestServer(faults=record) as server:
        generation = prepare_generation(global_var.workspace(), "tidewater", "gen", provider_for(server), "default-en", {"project_name": "Tidewater"},
                                        GenerationSettings(pairs_per_call=1, concurrency=8, **FAST))
        run_generation(generation)
        seen_prompts.clear()
        global_var.datasets().append_item("gen", [{"role": "user", "content": "Hand-written?"},
                                                  {"role": "assistant", "content": "Yes."}])
        _, final = judge(server, dataset="gen")
    items = global_var.datasets().load("gen").items
    assert final.scored == len(items) and final.no_source == 1
    entries = item_scores(global_var.workspace(), "gen")
    with_source = [e for e in entries.values() if e.source]
    assert len(with_source) == len(items) - 1
    assert all(isinstance(e.scores["groundedness"]["score"], int) for e in with_source)
    slices = {s.slice_id: s for s in generation.slices}
    item = next(i for i in items.values() if i["provenance"].get("unit"))
    text = slices[item["provenance"]["unit"].rsplit(":", 1)[0]].text.strip()
    assert any(text in prompt and item["messages"][0]["content"] in prompt for prompt in seen_prompts)


def test_a_second_run_on_the_same_dataset_is_refused(workdir):
    make_dataset("ds", ["Only one?"])
    with OpenAITestServer(latency=0.5) as server:
        prepared = prepare_judge(global_var.workspace(), "ds", provider_for(server), lang="en")
        job = start_judge_job(prepared)
        with pytest.raises(UserError) as twice:
            start_judge_job(prepare_judge(global_var.workspace(), "ds", provider_for(server), lang="en"))
        assert twice.value.key == "error.judge_running"
        # Another process's run is named by the judge lock (here: a lock held outside the job).
        job.wait(10)
        with global_var.scores().judge_lock("ds").acquire():
            with pytest.raises(UserError) as held:
                prepare_judge(global_var.workspace(), "ds", provider_for(server), lang="en")
            assert held.value.key == "error.judge_locked" and str(os.getpid()) in str(held.value)
            # Taken between the check and the run: the run ends at once as failed, naming the holder.
            raced = run_judge(prepared)
            assert raced.status == "failed" and str(os.getpid()) in raced.message and raced.processed_items == 0
    assert job.progress().status == "finished"


def test_cancel_mid_run_then_resume_scores_each_item_once(workdir):
    ids = make_dataset("ds", [f"Cancel case {i}?" for i in range(40)])
    with OpenAITestServer(latency=0.05) as server:
        job = start_judge_job(prepare_judge(global_var.workspace(), "ds", provider_for(server), lang="en", settings=JudgeSettings(concurrency=2, **FAST)))
        deadline = time.monotonic() + 20
        while job.progress().scored < 6:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.01)
        job.cancel()
        cancelled = job.wait(10)
        assert cancelled.status == "cancelled" and 6 <= cancelled.scored < len(ids)
        _, resumed = judge(server)
    assert resumed.skipped_items == cancelled.scored and resumed.scored == len(ids) - cancelled.scored
    assert scored_once("ds") == Counter({item_id: 1 for item_id in ids})


def test_sigkill_mid_run_then_resume_without_double_scoring(workdir):
    root = global_var.workdir().root
    ids = make_dataset("killed", [f"Kill case {i}?" for i in range(40)])
    sidecar = global_var.scores().path("killed")
    with OpenAITestServer(latency=0.1) as server:
        command = [sys.executable, "main.py", "--workdir", str(root), "--lang", "en", "datasets", "score", "killed",
                   "--base-url", server.base_url, "--model", "judge-model", "--api-key", "k", "--concurrency", "2"]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        try:
            while not (sidecar.exists() and sidecar.read_text(encoding="utf-8").count('"status":"scored"') >= 5):
                if process.poll() is not None:
                    pytest.fail(f"the score command ended early:\n{process.stdout.read().decode(errors='replace')}")
                if time.monotonic() > deadline:
                    pytest.fail("the score command made no progress in 30 s")
                time.sleep(0.02)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            process.stdout.close()
        assert process.returncode == -signal.SIGKILL
        before = scored_once("killed")
        assert global_var.scores().load("killed").runs == []  # it never got to write its summary
        _, resumed = judge(server, dataset="killed")
    assert resumed.status == "finished" and resumed.skipped_items == sum(before.values())
    assert scored_once("killed") == Counter({item_id: 1 for item_id in ids})


def test_a_torn_last_line_is_ignored_then_cut(workdir):
    ids = make_dataset("ds", ["Torn?", "Tail?"])
    scores = global_var.scores()
    path = scores.path("ds")
    path.write_text('{"id":"%s","v":"x","status":"scored"' % ids[0], encoding="utf-8")  # a writer killed mid-line
    view = scores.load("ds")
    assert view.torn_tail and view.latest == {}
    with OpenAITestServer() as server:
        _, final = judge(server)
    assert final.scored == 2
    assert scored_once("ds") == Counter({ids[0]: 1, ids[1]: 1})  # every line parses: the torn one was cut


# ---------------------------------------------------------------- generation scores as it goes


def test_generation_scores_as_it_goes(workdir):
    with OpenAITestServer() as server:
        provider = provider_for(server)
        generation = prepare_generation(global_var.workspace(), "tidewater", "gen", provider, "default-en", {"project_name": "Tidewater"},
                                        GenerationSettings(pairs_per_call=2, concurrency=4, **FAST))
        enable_scoring(global_var.workspace(), generation, provider, lang="en")
        final = run_generation(generation)
    items = global_var.datasets().load("gen").items
    assert final.status == "finished" and len(items) == final.items > 0
    assert final.scoring["status"] == "finished" and final.scoring["scored"] == len(items)
    assert final.scoring["tokens_in"] > 0
    assert all(entry.status == SCORED and entry.source for entry in item_scores(global_var.workspace(), "gen").values())
    assert set(scored_once("gen").values()) == {1}
    assert global_var.datasets().load("gen").meta["generation"]["scoring"]["scored"] == len(items)
    assert global_var.scores().load("gen").runs[-1]["during_generation"] is True


def test_generation_scores_leftovers_of_a_killed_run(workdir):
    with OpenAITestServer() as server:
        provider = provider_for(server)
        settings = GenerationSettings(pairs_per_call=2, concurrency=4, **FAST)
        run_generation(prepare_generation(global_var.workspace(), "tidewater", "gen", provider, "default-en", {"project_name": "Tidewater"}, settings))
        # A run that wrote items but was killed before scoring them: resuming with scoring on scores them.
        generation = prepare_generation(global_var.workspace(), "tidewater", "gen", provider, "default-en", {"project_name": "Tidewater"}, settings)
        final = run_generation(enable_scoring(global_var.workspace(), generation, provider, lang="en"))
    assert final.skipped_units == len(generation.units)
    assert final.scoring["scored"] == len(global_var.datasets().load("gen").items)


def test_a_judge_with_a_bad_key_stops_scoring_not_generation(workdir):
    with OpenAITestServer(api_key="right") as server:
        generation = prepare_generation(global_var.workspace(), "tidewater", "gen", provider_for(server, api_key="right"),
                                        "default-en", {"project_name": "Tidewater"},
                                        GenerationSettings(pairs_per_call=1, concurrency=2, **FAST))
        final = run_generation(enable_scoring(global_var.workspace(), generation, provider_for(server), lang="en"))
    assert final.status == "finished" and final.items > 0
    assert final.scoring["status"] == "failed" and "AuthenticationError" in final.scoring["message"]
    assert all(entry.status == UNSCORED for entry in item_scores(global_var.workspace(), "gen").values())


# ---------------------------------------------------------------- the command line


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", "--workdir", str(root), "--lang", "en", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_scores_a_dataset_end_to_end(workdir):
    root = global_var.workdir().root
    ids = make_dataset("cli", [f"CLI case {i}? [case:{name}]" for i, name in enumerate(("good", "malformed", "limited-once"))])
    prompts = []

    def plan(info):
        prompts.append(info.prompt)
        return scenario_plan(info) if "Question:" in info.prompt else "ok"  # the zh run (Chinese template): all good

    with OpenAITestServer(faults=plan, retry_after=0.01) as server:
        done = run_cli(root, "datasets", "score", "cli", "--base-url", server.base_url, "--model", "judge-model",
                       "--api-key", "k", "--concurrency", "2", "--backoff", "0.01")
        assert done.returncode == 0, done.stderr
        assert "Judging dataset cli: 3 items, 0 already scored" in done.stdout
        assert "[3/3 items] scored 2, unscored 1 (invalid_json 1)" in done.stdout
        assert "status: finished" in done.stdout and "unscored, by reason: invalid_json 1" in done.stdout
        assert f"item {ids[1]}: invalid_json:" in done.stdout and "tokens in/out:" in done.stdout
        # A saved provider as the judge, the Chinese template; only the unscored item is judged again.
        global_var.providers().add(name="saved-judge", base_url=server.base_url, model_id="judge-model", api_key="k")
        server.reset_stats()
        again = run_cli(root, "datasets", "score", "cli", "--judge", "saved-judge", "--lang", "zh")
        assert again.returncode == 0, again.stderr
        assert server.requests == 1 and "问题" in prompts[-1] and "Question:" in prompts[0]
    assert "1 scored in this run" in again.stdout and "2 scored before and skipped" in again.stdout
    assert set(scored_once("cli").values()) == {1} and len(scored_once("cli")) == 3



def test_cli_says_what_to_fix(workdir, capsys):
    import main

    root = str(global_var.workdir().root)
    make_dataset("cli", ["Anything?"])
    assert main.main(["--workdir", root, "--lang", "en", "datasets", "score", "cli"]) == 2
    assert "--judge NAME" in capsys.readouterr().err
    assert main.main(["--workdir", root, "--lang", "en", "datasets", "score", "nope", "--base-url", "http://127.0.0.1:9/v1",
                      "--model", "m"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main.main(["--workdir", root, "--lang", "en", "datasets", "score", "cli", "--judge", "no-such-provider"]) == 2
    assert "no-such-provider" in capsys.readouterr().err
    assert main.main(["--workdir", root, "--lang", "en", "datasets", "score", "cli", "--base-url", "http://127.0.0.1:9/v1",
                      "--model", "m", "--concurrency", "0"]) == 2
    assert "concurrency" in capsys.readouterr().err


def test_cli_generate_with_score_with(workdir):
    root = global_var.workdir().root
    with OpenAITestServer() as server:
        global_var.providers().add(name="saved-judge", base_url=server.base_url, model_id="judge-model", api_key="k")
        done = run_cli(root, "generate", "--docs", "tidewater", "--dataset", "gen", "--base-url", server.base_url,
                       "--model", "test-model", "--api-key", "k", "--template", "default-en", "--var", "project_name=T",
                       "--pairs", "1", "--score-with", "saved-judge")
    assert done.returncode == 0, done.stderr
    items = global_var.datasets().load("gen").items
    assert f"scored as it went: {len(items)} items scored, 0 unscored" in done.stdout
    assert all(entry.status == SCORED for entry in item_scores(global_var.workspace(), "gen").values())


def test_server_verdicts_are_deterministic():
    assert judgement_scores("same prompt") == judgement_scores("same prompt")
    assert all(4 <= value <= 10 for value in judgement_scores("x").values())


def test_scores_follow_a_renamed_dataset_and_go_with_a_deleted_one(workdir):
    ids = make_dataset("ds", ["Rename me?"])
    with OpenAITestServer() as server:
        judge(server)
    store, scores = global_var.datasets(), global_var.scores()
    store.rename("ds", "renamed")
    scores.rename("ds", "renamed")
    assert item_scores(global_var.workspace(), "renamed")[ids[0]].status == SCORED and not scores.path("ds").exists()
    scores.delete("renamed")
    assert not scores.path("renamed").exists() and item_scores(global_var.workspace(), "renamed")[ids[0]].reason == NOT_JUDGED


def test_a_redaction_rewrites_the_scores_too(workdir):
    ids = make_dataset("ds", ["Where is the key sk-SECRET123?", "Plain?"])
    with OpenAITestServer() as server:
        judge(server)
    scores = global_var.scores()
    path = scores.path("ds")
    with open(path, "a", encoding="utf-8") as handle:  # a reason that quotes the secret, and a torn line
        handle.write(json.dumps({"id": ids[1], "v": "old", "status": "unscored", "reason": "x", "detail": "sk-SECRET123"}) + "\n")
        handle.write('{"id": "torn", "detail": "sk-SECRET123')

    def redact(record: dict) -> dict:
        return json.loads(json.dumps(record).replace("sk-SECRET123", "[REDACTED]"))

    assert scores.rewrite_history("ds", redact) == 4  # two scores, the run summary, the appended record
    text = path.read_text(encoding="utf-8")
    assert "sk-SECRET123" not in text and "[REDACTED]" in text
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert scores.load("ds").latest[ids[0]]["status"] == SCORED
