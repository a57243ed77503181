"""What generation does for its speed, and that it changes nothing it keeps (issue 28): the checks after a command-line
run in a background process give the result the checks in the run give; the doc set read while the calls are in
flight is the one the checks read; the progress copies; the test server's jittered latency and its call log; the
benchmark's ideal schedule. Timings are bench/generation_cli.py's, not a test's."""

from __future__ import annotations

import copy
import os
import time

import pytest

import global_var
import main
from tests.openai_test_server import LognormalLatency, OpenAITestServer, RequestInfo, lognormal_latency
from tests.test_generation import assert_accounted, prepare
from tools.generation.background_checks import start_background_checks
from tools.generation.engine import GenerationProgress, run_generation
from tools.quality.checks import check_dataset, load_result, result_path
from tools.quality.sources import load_doc_context

# What differs between two runs of the same checks: when and how fast they ran.
RUN_FIELDS = ("checked_at", "timings_s", "seconds", "parallel", "reused_items")  # how a check ran, not what it found


def comparable(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in RUN_FIELDS + ("stale",)}


def wait_for_result(store, name: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = load_result(store, name)
        if result is not None:
            return result
        time.sleep(0.05)
    raise AssertionError(f"no checks result for {name} within {timeout} s")


def test_deferred_checks_in_the_background_equal_the_checks_in_the_run(workdir):
    store = global_var.datasets()
    with OpenAITestServer(latency=0.01) as server:
        inline = run_generation(prepare(server, dataset="inline"))
        deferred_run = prepare(server, dataset="deferred")
        deferred_run.defer_checks = True
        deferred = run_generation(deferred_run)
    assert inline.checks is not None and not inline.checks_deferred
    # Left to the caller: nothing checked yet, the progress says so; the run itself is whole.
    assert deferred.checks is None and deferred.checks_deferred and deferred.status == "finished"
    assert load_result(store, "deferred") is None
    assert assert_accounted("deferred", deferred_run)[1] == 0

    pid = start_background_checks("deferred", store, workdir.docs)
    assert isinstance(pid, int) and pid > 0
    background = wait_for_result(store, "deferred")
    # The same checks of the same journal, run here: the background result is theirs.
    here = check_dataset("deferred", store, workdir.docs, save=False)
    assert comparable(background) == comparable(here)
    assert background["summary"]["flagged_items"] == here["summary"]["flagged_items"]
    # And the run that checked inline saved a result of its own journal.
    assert load_result(store, "inline")["items"] == inline.items


def test_the_command_line_leaves_the_checks_to_the_background_unless_asked_to_wait(workdir, capsys):
    store = global_var.datasets()
    with OpenAITestServer(latency=0.01) as server:
        common = ["--workdir", str(workdir.root), "--lang", "en", "generate", "--docs", "tidewater", "--base-url",
                  server.base_url, "--model", "test-model", "--api-key", "k", "--template", "default-en",
                  "--var", "project_name=Tidewater", "--pairs", "2"]
        assert main.main([*common, "--dataset", "bg"]) == 0
        out = capsys.readouterr().out
        assert "is being checked in the background (process " in out and "`datasets check bg`" in out
        background = wait_for_result(store, "bg")
        assert main.main([*common, "--dataset", "waited", "--wait-for-checks"]) == 0
        out = capsys.readouterr().out
        assert "in the background" not in out and "Checks:" in out
    waited = load_result(store, "waited")
    assert waited is not None and background["items"] == waited["items"] > 0
    assert comparable(background) == comparable(check_dataset("bg", store, workdir.docs, save=False))


def test_a_background_checker_that_fails_before_writing_leaves_no_file(workdir, monkeypatch):
    """The result is written whole (atomic rename) or not at all: a checker that ends before it writes (here its
    checks fail, as if it were killed there) leaves nothing beside the journal; the next check runs them again."""
    store = global_var.datasets()
    with OpenAITestServer(latency=0.01) as server:
        prepared = prepare(server, dataset="killed")
        prepared.defer_checks = True
        run_generation(prepared)
    # A checker whose checks fail before writing (as if killed there): no result, no temp file left.
    monkeypatch.setattr("tools.quality.checks.run_checks", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    pid = start_background_checks("killed", store, workdir.docs)
    assert pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    folder = result_path(store, "killed").parent
    assert not result_path(store, "killed").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".killed") and "check" in p.name]


def test_the_doc_set_read_during_the_run_is_the_one_the_checks_read(workdir):
    with OpenAITestServer(latency=0.01) as server:
        prepared = prepare(server, dataset="ctx")
        run_generation(prepared)
    folder = workdir.docs / "tidewater"
    cached = load_doc_context(folder, "tidewater", prepared.settings.max_slice_tokens)
    from tools.quality.checks import doc_context_for

    context, reason = doc_context_for(global_var.datasets().load("ctx").meta, workdir.docs)
    assert reason is None and context is cached  # the checks found what the run read
    assert [s.slice_id for s in context.slices] == [s.slice_id for s in prepared.slices]


def test_progress_copies_are_deep():
    progress = GenerationProgress(dataset="d", failures={"timeout": 1}, recent_failures=[{"unit": "u", "reason": "r"}],
                                  checks={"by_kind": {"low_grounding": 2}}, tool_calls={"reasons": {"x": 1}})
    clone = copy.deepcopy(progress)
    assert clone == progress and clone is not progress
    clone.failures["timeout"] += 1
    clone.recent_failures[0]["unit"] = "v"
    clone.checks["by_kind"]["low_grounding"] = 0
    clone.tool_calls["reasons"]["x"] = 5
    assert progress.failures == {"timeout": 1} and progress.recent_failures == [{"unit": "u", "reason": "r"}]
    assert progress.checks == {"by_kind": {"low_grounding": 2}} and progress.tool_calls == {"reasons": {"x": 1}}
    assert clone.to_dict().keys() == progress.to_dict().keys()


# ---------------------------------------------------------------- the test server and the benchmark


def info(prompt: str, attempt: int = 0) -> RequestInfo:
    return RequestInfo(index=0, attempt=attempt, prompt=prompt, messages=[{"role": "user", "content": prompt}], body={})


def test_lognormal_latency_is_deterministic_per_call_with_its_median():
    latency = lognormal_latency(0.4, 0.5, seed=3)
    assert latency(info("a")) == LognormalLatency(0.4, 0.5, 3)(info("a"))
    assert latency(info("a")) != latency(info("a", attempt=1)) and latency(info("a")) != lognormal_latency(0.4, 0.5, 4)(info("a"))
    draws = sorted(latency(info(f"prompt {i}")) for i in range(4001))
    assert draws[2000] == pytest.approx(0.4, rel=0.05)
    # sigma 0.5: the 84th percentile is about median * e^0.5
    assert draws[int(0.8413 * 4000)] == pytest.approx(0.4 * 2.718281828 ** 0.5, rel=0.08)
    assert lognormal_latency(0.4, 0.0)(info("x")) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        lognormal_latency(0, 0.5)


def test_the_server_logs_each_call_and_keeps_a_fixed_latency_working():
    from openai import OpenAI

    with OpenAITestServer(latency=lognormal_latency(0.02, 0.5, seed=1)) as server:
        client = OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        for prompt in ("one", "two"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])
        log = server.call_log
        assert [entry["index"] for entry in log] == [0, 1] and all(entry["kind"] == "ok" for entry in log)
        for entry, prompt in zip(log, ("one", "two")):
            assert entry["latency"] == lognormal_latency(0.02, 0.5, seed=1)(info(prompt))
            assert entry["replied"] - entry["arrived"] >= entry["latency"] * 0.99
        server.reset_stats()
        assert server.call_log == [] and server.requests == 0
    with OpenAITestServer(latency=0.01) as server:  # the plain number still works as before
        OpenAI(base_url=server.base_url, api_key="k").chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
        assert server.call_log[0]["latency"] == 0.01 and server.requests == 1


def test_the_ideal_schedule_lists_calls_onto_slots_in_order():
    from bench.generation_cli import ideal_schedule

    assert ideal_schedule([1.0, 1.0, 1.0], 2) == 2.0
    assert ideal_schedule([3.0, 1.0, 1.0, 1.0], 2) == 3.0
    assert ideal_schedule([1.0, 1.0, 3.0], 2) == 4.0  # the long call starts when a slot frees
    assert ideal_schedule([0.5] * 64, 32) == 1.0
    assert ideal_schedule([], 4) == 0.0


def test_provenance_is_the_schemas_dump(workdir):
    """The engine writes each unit's provenance as a plain dict: the same keys, order and values as
    schema.dataset.Provenance(...).model_dump(exclude_none=True), tags after."""
    from schema.dataset import Provenance
    from tools.generation.engine import GenerationRunner, GenerationUnit

    with OpenAITestServer(latency=0.01) as server:
        prepared = prepare(server, dataset="prov")
    runner = GenerationRunner(prepared)
    for document_slice in prepared.slices[:5]:
        unit = GenerationUnit(document_slice, 2)
        for tags in ({}, {"variant": "question:1", "group": "g"}):
            fast = runner._provenance(unit, **tags)
            schema = Provenance(source_doc=document_slice.source, heading_path=document_slice.heading_path,
                                provider=prepared.provider.name, model=prepared.provider.model_id,
                                template_id=prepared.template.name, origin="generated", unit=unit.key,
                                created_at=fast["created_at"]).model_dump(exclude_none=True)
            assert list(fast.items()) == list({**schema, **tags}.items())
            assert Provenance(**fast).model_dump(exclude_none=True) == fast
