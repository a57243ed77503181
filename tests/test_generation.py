"""The generation engine against the OpenAI test server: faults, counts, resume, crash, duplicates."""

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
from schema.dataset import first_exchange
from tools.core.errors import UserError
from schema.provider import APIProvider
from tests.openai_test_server import OpenAITestServer
from frontend.jobs import start_generation_job
from tools.generation.engine import (
    GenerationProgress,
    UNIT_DONE,
    UNIT_FAILED,
    GenerationSettings,
    normalize_question,
    parse_pairs,
    prepare_generation,
    run_generation,
    unit_outcomes,
)
from tools.llm.replies import OutputError

REPO = Path(__file__).resolve().parent.parent
VARIABLES = {"project_name": "Tidewater"}


def provider_for(server: OpenAITestServer, timeout_s: float = 2.0, max_concurrency: int = 64, api_key: str = "k") -> APIProvider:
    return APIProvider(name="test", base_url=server.base_url, model_id="test-model", api_key=api_key,
                       max_concurrency=max_concurrency, timeout_s=timeout_s)


def prepare(server, dataset="ds", provider=None, **settings):
    fast = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "concurrency": 8, "pairs_per_call": 2}
    return prepare_generation(global_var.workspace(), "tidewater", dataset, provider or provider_for(server), "default-en", VARIABLES,
                              GenerationSettings(**{**fast, **settings}))


def assert_accounted(dataset: str, prepared) -> tuple[int, int]:
    """Every planned unit ends done or failed, items match the done events, nothing is duplicated."""
    view = global_var.datasets().load(dataset)
    planned = {unit.key for unit in prepared.units}
    done, failed = unit_outcomes(view.events, planned)
    assert done + failed == len(planned)
    done_events = [e for e in view.events if e["type"] == UNIT_DONE]
    assert len({e["unit"] for e in done_events}) == len(done_events), "a unit finished twice"
    assert sum(e["items"] for e in done_events) == len(view.items)
    per_unit = Counter(item["provenance"]["unit"] for item in view.items.values())
    assert all(per_unit[e["unit"]] == e["items"] for e in done_events)
    questions = [normalize_question(first_exchange(item["messages"])[0]) for item in view.items.values()]
    assert len(set(questions)) == len(questions), "a duplicate question was kept"
    return done, failed


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("content", [
    '{"pairs": [{"question": "Q?", "answer": "A."}]}',
    '```json\n{"pairs": [{"question": "Q?", "answer": "A."}]}\n```',
    '<think>let me think {about it}</think>\n{"pairs": [{"question": "Q?", "answer": "A."}]}',
    '{"question": "Q?", "answer": "A."}',
    '[{"question": "Q?", "answer": "A."}]',
    'Here are the pairs: {"pairs": [{"question": "Q?", "answer": "A.", "extra": 1}]} Hope it helps.',
])
def test_parse_accepts_the_shapes_models_produce(content):
    pairs = parse_pairs(content)
    assert [(p.question, p.answer) for p in pairs] == [("Q?", "A.")]


@pytest.mark.parametrize("content, reason", [
    ("", "empty_output"),
    ("   ", "empty_output"),
    ("<think>still thinking when the tokens ran out", "empty_output"),
    ('{"pairs": [{"question": "Q?", "answer"', "invalid_json"),
    ('{"items": [{"q": "Q?", "a": "A."}]}', "wrong_schema"),
    ('{"pairs": [{"question": "Q?", "answer": "   "}]}', "wrong_schema"),
    ('{"pairs": []}', "no_pairs"),
])
def test_parse_rejects_with_a_reason(content, reason):
    with pytest.raises(OutputError) as rejected:
        parse_pairs(content)
    assert rejected.value.reason == reason
    assert rejected.value.detail


def test_normalized_questions_ignore_case_space_and_punctuation():
    assert normalize_question("What is  Tidewater?") == normalize_question("what is tidewater")
    assert normalize_question("什么是管道？") == normalize_question("什么是管道")
    assert normalize_question("「配置」在哪里,") == normalize_question("配置在哪里")
    assert normalize_question("Ｗｈａｔ　ｉｓ　ｘ？") == normalize_question("what is x")
    assert normalize_question("C++ flags") != normalize_question("C flags")


# ---------------------------------------------------------------- runs


def test_clean_run_persists_items_with_provenance_and_a_summary(workdir):
    with OpenAITestServer(latency=0.01) as server:
        prepared = prepare(server, rounds=2)
        final = run_generation(prepared)
    units = len(prepared.units)
    assert units == 2 * len(prepared.slices)
    assert final.status == "finished"
    assert (final.done_units, final.failed_units, final.items) == (units, 0, 2 * units)
    assert final.tokens_in > 0 and final.tokens_out > 0
    assert assert_accounted("ds", prepared) == (units, 0)
    view = global_var.datasets().load("ds")
    item = next(iter(view.items.values()))
    provenance = item["provenance"]
    assert provenance["origin"] == "generated" and provenance["model"] == "test-model" and provenance["provider"] == "test"
    assert provenance["template_id"] == "default-en" and provenance["source_doc"] and provenance["unit"].endswith((":1", ":2"))
    summary = view.meta["generation"]
    assert summary["status"] == "finished" and summary["units"]["done_total"] == units and summary["items"] == 2 * units
    assert summary["settings"]["rounds"] == 2 and summary["variables"] == VARIABLES
    # The checks without an LLM ran by themselves once the run ended: their result is saved for
    # the dataset's current journal, and the run's summary says what they found.
    from tools.quality.checks import check_summary_line, load_result

    saved = load_result(global_var.datasets(), "ds")
    assert saved is not None and saved["items"] == 2 * units
    assert final.checks["items"] == 2 * units and final.checks["flagged_items"] == saved["summary"]["flagged_items"]
    line = check_summary_line(final.checks, "ds", "en")
    assert line.startswith("Checks:") and "ds" in line


# Each prompt (unit) meets one scenario: the kinds its successive requests get (then "ok").
# max_attempts=3, so three transport faults in a row exhaust a unit.
SCENARIOS = [
    (["fenced"], "done"),
    (["think"], "done"),
    (["429"], "done"),
    (["500"], "done"),
    (["hang"], "done"),
    (["disconnect"], "done"),
    (["malformed"], "done"),  # the correction call succeeds
    (["empty"], "done"),
    (["wrong_schema", "wrong_schema"], "wrong_schema"),
    (["empty", "empty"], "empty_output"),
    (["malformed", "malformed"], "invalid_json"),
    (["500", "500", "500"], "server_error"),
    (["429", "429", "429"], "rate_limited"),
    (["hang", "hang", "hang"], "timeout"),
    (["disconnect", "disconnect", "disconnect"], "connection"),
]


def test_every_fault_kind_with_counts_adding_up(workdir):
    assigned: dict[str, int] = {}

    def plan(info):
        scenario = assigned.setdefault(info.prompt, len(assigned) % len(SCENARIOS))
        kinds = SCENARIOS[scenario][0]
        return kinds[info.attempt] if info.attempt < len(kinds) else "ok"

    with OpenAITestServer(faults=plan, hang_seconds=5) as server:
        prepared = prepare(server, provider=provider_for(server, timeout_s=0.3), max_attempts=3, concurrency=16)
        final = run_generation(prepared)
        kinds_served = server.stats["by_kind"]
    units = len(prepared.units)
    assert units >= len(SCENARIOS)
    expected_failures = Counter(outcome for _, outcome in SCENARIOS if outcome != "done")
    assert final.status == "finished"
    assert final.failures == dict(expected_failures)
    assert final.failed_units == sum(expected_failures.values())
    assert final.done_units + final.failed_units == units
    assert final.items == final.done_units * 2
    assert final.retries > 0
    assert all(kinds_served[kind] > 0 for kind in ("fenced", "think", "429", "500", "hang", "disconnect", "malformed", "empty", "wrong_schema"))
    assert assert_accounted("ds", prepared) == (final.done_units, final.failed_units)
    summary = global_var.datasets().load("ds").meta["generation"]
    assert summary["failures"] == dict(expected_failures)
    assert {f["reason"] for f in summary["failed_units"]} == set(expected_failures)
    failed_events = [e for e in global_var.datasets().load("ds").events if e["type"] == UNIT_FAILED]
    assert all(e["detail"] for e in failed_events)


def test_json_mode_dropped_when_the_provider_rejects_it(workdir):
    with OpenAITestServer(json_mode="reject") as server:
        prepared = prepare(server, concurrency=4)
        final = run_generation(prepared)
        rejected = server.stats["json_mode_rejected"]
    assert final.status == "finished" and final.failed_units == 0
    assert final.json_mode is False
    # Remembered for the run: at most the calls already in flight were rejected.
    assert 1 <= rejected <= 4
    assert global_var.datasets().load("ds").meta["generation"]["json_mode"] is False


def test_retry_after_is_honoured(workdir):
    with OpenAITestServer(faults=["429"], retry_after=0.4) as server:
        prepared = prepare(server, concurrency=1)
        prepared.slices = prepared.slices[:1]
        started = time.perf_counter()
        final = run_generation(prepared)
        elapsed = time.perf_counter() - started
    assert final.done_units == 1 and final.retries == 1
    assert elapsed >= 0.4


def test_concurrency_is_bounded_and_used(workdir):
    # 0.3 s, not less: on a busy 2-core machine the fourth call must be sent before the first one returns.
    with OpenAITestServer(latency=0.3) as server:
        final = run_generation(prepare(server, concurrency=4))
        assert server.stats["max_in_flight"] == 4
    assert final.status == "finished"


def test_duplicate_questions_are_dropped_and_counted(workdir):
    def same_questions(info):
        questions = ["What is Tidewater?", "what is  tidewater", "WHAT IS TIDEWATER？", "什么是管道？", "什么是管道"]
        return json.dumps({"pairs": [{"question": q, "answer": "An answer."} for q in questions]})

    with OpenAITestServer(responder=same_questions) as server:
        prepared = prepare(server, concurrency=4)
        final = run_generation(prepared)
    units = len(prepared.units)
    assert final.items == 2
    assert final.duplicates == units * 5 - 2
    assert final.done_units == units  # a unit whose pairs were all duplicates still finished
    assert assert_accounted("ds", prepared) == (units, 0)


def test_cancel_then_resume_without_duplicates(workdir):
    with OpenAITestServer(latency=0.05) as server:
        prepared = prepare(server, concurrency=2)
        job = start_generation_job(prepared)
        deadline = time.monotonic() + 10
        while job.progress().done_units < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        job.cancel()
        cancelled = job.wait(10)
        assert cancelled.status == "cancelled"
        assert 3 <= cancelled.done_units < len(prepared.units)
        first_requests = server.stats["requests"]

        resumed = run_generation(prepare(server, concurrency=2))
    units = len(prepared.units)
    assert resumed.status == "finished"
    assert resumed.skipped_units == cancelled.done_units
    assert resumed.done_units == units - cancelled.done_units
    # Only the units cut off in flight were asked twice.
    assert server.stats["requests"] - first_requests == resumed.done_units
    assert first_requests - cancelled.done_units <= 2
    assert assert_accounted("ds", prepared) == (units, 0)


def test_failed_units_are_retried_on_resume_and_rounds_extend(workdir):
    with OpenAITestServer(faults=lambda info: "500" if info.index < 2 else "ok") as server:
        first = run_generation(prepare(server, concurrency=1, max_attempts=2))
        assert first.failed_units == 1 and first.failures == {"server_error": 1}
        again = run_generation(prepare(server, concurrency=1, max_attempts=2))
        assert (again.done_units, again.failed_units) == (1, 0)
        more = prepare(server, concurrency=4, rounds=2)
        extended = run_generation(more)
    assert extended.skipped_units == len(more.slices)
    assert extended.done_units == len(more.slices)
    assert assert_accounted("ds", more) == (len(more.units), 0)


def test_items_without_their_event_count_as_done(workdir):
    """A crash between a call's item write and its event must not generate that unit twice."""
    with OpenAITestServer() as server:
        prepared = prepare(server, concurrency=4)
        unit = prepared.units[0]
        store = global_var.datasets()
        store.create("ds", meta={"generated_from": {"docs": "tidewater", "max_slice_tokens": prepared.settings.max_slice_tokens}})
        store.append_items("ds", [([{"role": "user", "content": "Q1?"}, {"role": "assistant", "content": "A1."}],
                                   {"origin": "generated", "unit": unit.key})])
        final = run_generation(prepare(server, concurrency=4))
        assert server.stats["requests"] == len(prepared.units) - 1
    assert final.skipped_units == 1
    assert assert_accounted("ds", prepared) == (len(prepared.units), 0)


def test_rejected_api_key_stops_the_run(workdir):
    with OpenAITestServer(api_key="right") as server:
        final = run_generation(prepare(server, provider=provider_for(server, api_key="wrong")))
    assert final.status == "failed"
    assert "AuthenticationError" in final.message
    assert final.failed_units == 0  # nothing is blamed on the units: they run again once the key is fixed
    assert global_var.datasets().load("ds").meta["generation"]["status"] == "failed"


def test_sigkill_mid_run_then_resume(workdir, tmp_path):
    root = global_var.workdir().root
    with OpenAITestServer(latency=0.15) as server:
        command = [sys.executable, "main.py", "--workdir", str(root), "--lang", "en", "generate", "--docs", "tidewater",
                   "--dataset", "killed", "--base-url", server.base_url, "--model", "test-model", "--api-key", "k",
                   "--template", "default-en", "--var", "project_name=Tidewater", "--concurrency", "2", "--pairs", "2"]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        journal = root / "dataset" / "killed.jsonl"
        deadline = time.monotonic() + 30
        try:
            while not (journal.exists() and journal.read_text(encoding="utf-8").count('"unit_done"') >= 3):
                if process.poll() is not None:
                    pytest.fail(f"the generate command ended early:\n{process.stdout.read().decode(errors='replace')}")
                if time.monotonic() > deadline:
                    pytest.fail("the generate command made no progress in 30 s")
                time.sleep(0.02)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            process.stdout.close()
        assert process.returncode == -signal.SIGKILL
        killed_view = global_var.datasets().load("killed")
        assert "generation" not in killed_view.meta  # it never got to write its summary
        done_before = sum(1 for e in killed_view.events if e["type"] == UNIT_DONE)

        resumed_prepared = prepare(server, dataset="killed")
        resumed = run_generation(resumed_prepared)
    assert resumed.status == "finished"
    assert resumed.skipped_units >= done_before
    assert assert_accounted("killed", resumed_prepared) == (len(resumed_prepared.units), 0)


# ---------------------------------------------------------------- preparing


def test_prepare_says_what_to_fix(workdir):
    store = global_var.datasets()
    with OpenAITestServer() as server:
        provider = provider_for(server, max_concurrency=4)
        with pytest.raises(UserError) as unknown:
            prepare_generation(global_var.workspace(), "tidewater", "x", "no-such-provider", "default-en", VARIABLES)
        assert unknown.value.key == "error.not_found" and "no-such-provider" in str(unknown.value)
        with pytest.raises(UserError) as unfilled:
            prepare_generation(global_var.workspace(), "tidewater", "x", provider, "default-en", {"project_name": "  "})
        assert unfilled.value.key == "error.generate_variables_missing" and "project_name" in str(unfilled.value)
        with pytest.raises(UserError) as no_docs:
            prepare_generation(global_var.workspace(), "nothing-here", "x", provider, "default-en", VARIABLES)
        assert no_docs.value.key == "error.not_found"
        with pytest.raises(UserError) as bad_number:
            prepare_generation(global_var.workspace(), "tidewater", "x", provider, "default-en", VARIABLES, GenerationSettings(rounds=0))
        assert bad_number.value.key == "error.number_range" and "rounds" in str(bad_number.value)

        clamped = prepare_generation(global_var.workspace(), "tidewater", "x", provider, "default-en", VARIABLES, GenerationSettings(concurrency=50))
        assert clamped.settings.concurrency == 4
        assert clamped.notes[0][0] == "generate.concurrency_clamped"

        store.create("imported", meta={"imported_from": "file.jsonl"})
        with pytest.raises(UserError) as imported:
            prepare_generation(global_var.workspace(), "tidewater", "imported", provider, "default-en", VARIABLES)
        assert imported.value.key == "error.generate_not_generated"

        other = global_var.workdir().docs / "other"
        other.mkdir()
        (other / "a.md").write_text("# Other\n\nSome other library.\n", encoding="utf-8")
        run_generation(prepare_generation(global_var.workspace(), "other", "from-other", provider, "default-en", VARIABLES))
        with pytest.raises(UserError) as other_docs:
            prepare_generation(global_var.workspace(), "tidewater", "from-other", provider, "default-en", VARIABLES)
        assert other_docs.value.key == "error.generate_other_docs" and "other" in str(other_docs.value)
        with pytest.raises(UserError) as other_budget:
            prepare_generation(global_var.workspace(), "other", "from-other", provider, "default-en", VARIABLES, GenerationSettings(max_slice_tokens=100))
        assert other_budget.value.key == "error.generate_other_budget"
        resumed = prepare_generation(global_var.workspace(), "other", "from-other", provider, "default-en", VARIABLES)
        assert resumed.resuming and resumed.notes[-1][0] == "generate.resuming"


def test_the_command_lines_progress_and_summary_speak_its_language(workdir, capsys):
    """`generate` prints its progress and summary in --lang: no English line in a Chinese terminal."""
    import re

    import main
    from frontend.cli.generate import progress_line

    with OpenAITestServer(latency=0.01) as server:
        for lang in ("zh", "en"):
            code = main.main(["--workdir", str(workdir.root), "--lang", lang, "generate", "--docs", "tidewater",
                              "--dataset", f"cli-{lang}", "--base-url", server.base_url, "--model", "test-model",
                              "--api-key", "k", "--template", "default-en", "--var", "project_name=Tidewater"])
            out = capsys.readouterr().out
            assert code == 0, out
            summary = out[out.index("status:" if lang == "en" else "状态:"):]
            if lang == "zh":
                assert "新增条目" in summary and "已完成" in summary
                # Left in English only: names (JSON, token, the dataset's) and commands to type (in backticks).
                words = set(re.findall(r"[A-Za-z]{3,}", re.sub(r"`[^`]*`", "", summary))) - {"JSON", "token", "cli"}
                assert not words, (words, summary)
            else:
                assert "status: finished" in summary and "items added:" in summary
    progress = GenerationProgress(dataset="d", total_units=4, failures={"rate_limited": 2})
    assert progress_line(progress, "zh").startswith("[0/4 单元]  条目 0  失败 0 (限流 2)")
    assert progress_line(progress, "en", what="questions").startswith("[0/4 units]  questions 0  failed 0 (rate limited 2)")
