"""The sample library shipped with the sample docs (workdir/docs/tidewater/.package) does what its docs say."""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "workdir" / "docs" / "tidewater" / ".package"


@pytest.fixture()
def tw(tmp_path, monkeypatch):
    """The tidewater package, run from an empty folder with no config file and no TW_* variables."""
    for variable in list(os.environ):
        if variable.startswith("TW_") or variable == "TIDEWATER_CONFIG":
            monkeypatch.delenv(variable)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(PACKAGE_DIR))
    module = importlib.import_module("tidewater")
    assert Path(module.__file__).is_relative_to(PACKAGE_DIR)
    monkeypatch.setattr(module.config, "_configured_path", None)  # whatever a test configures is undone
    return module


def test_version_and_public_names(tw):
    assert tw.__version__ == "2.3.1"
    for name in ("Tide", "Stage", "RetryPolicy", "TideResult", "StageResult", "stage", "TransientError",
                 "TidewaterError", "StageTimeoutError", "TideTypeError", "configure"):
        assert hasattr(tw, name), name
    assert issubclass(tw.StageTimeoutError, tw.TransientError) and tw.StageTimeoutError.code == "TW-1203"


def test_documented_defaults_show_in_the_signatures(tw):
    run = inspect.signature(tw.Tide.run).parameters
    assert (run["inputs"].default, run["max_workers"].default, run["dry_run"].default, run["timeout"].default) == (
        None, 4, False, None)
    stage = inspect.signature(tw.Stage).parameters
    assert list(stage) == ["func", "name", "input_type", "output_type", "timeout", "retry", "cache", "map"]
    assert (stage["timeout"].default, stage["retry"].default, stage["cache"].default, stage["map"].default) == (
        300, None, False, False)
    assert stage["input_type"].default is Any
    retry = inspect.signature(tw.RetryPolicy).parameters
    assert {name: p.default for name, p in retry.items()} == {
        "max_attempts": 3, "backoff_base": 1.5, "backoff_factor": 2.0, "max_backoff": 60.0, "jitter": True,
        "retry_on": (tw.TransientError,)}
    tide = inspect.signature(tw.Tide).parameters
    assert tide["fail_fast"].default is True and tide["stages"].default is None


def test_retry_delays_follow_the_documented_formula(tw):
    policy = tw.RetryPolicy()
    assert (policy.delay(1), policy.delay(2)) == (1.5, 3.0)
    assert policy.delays() == [1.5, 3.0]
    assert tw.RetryPolicy(backoff_base=0.5, max_backoff=5.0, max_attempts=4).delays() == [0.5, 1.0, 2.0]
    assert tw.RetryPolicy(backoff_base=50).delay(3) == 60.0
    assert tw.RetryPolicy.none().max_attempts == 1
    assert 1.35 <= policy.jittered_delay(1) <= 1.65


def _names_tide(tw):
    @tw.stage(output_type=list[str])
    def fetch(_: None) -> list[str]:
        return ["  Alpha ", "beta", " GAMMA"]

    @tw.stage(input_type=list[str], output_type=list[str], retry=tw.RetryPolicy(max_attempts=5))
    def clean(rows: list[str]) -> list[str]:
        return [r.strip().lower() for r in rows]

    return tw.Tide("names", stages=[fetch, clean])


def test_the_readme_example_runs(tw):
    result = _names_tide(tw).run()
    assert result.status == "succeeded"
    assert result.output == ["alpha", "beta", "gamma"]
    assert [s.name for s in result.stage_results] == ["fetch", "clean"]
    assert all(s.attempts == 1 and s.status == "succeeded" for s in result.stage_results)
    assert re.fullmatch(r"[0-9a-f]{12}", result.run_id)
    assert result.run_id != _names_tide(tw).run().run_id


def test_dry_run_plans_without_calling_stages(tw):
    called = []
    tide = tw.Tide("plan").add_stage(tw.Stage(called.append, name="record"))
    result = tide.run(dry_run=True)
    assert (result.status, result.output, called) == ("planned", None, [])


def test_definition_errors_carry_their_codes(tw):
    @tw.stage
    def load(_):
        return [1]

    with pytest.raises(tw.TidewaterError) as duplicate:
        tw.Tide("dup", stages=[load, load])
    assert duplicate.value.code == "TW-1102" and isinstance(duplicate.value, tw.TideDefinitionError)
    with pytest.raises(tw.TidewaterError) as empty:
        tw.Tide("empty").run()
    assert empty.value.code == "TW-1103"
    with pytest.raises(tw.TidewaterError) as bad_name:
        tw.Tide("Bad-Name")
    assert bad_name.value.code == "TW-1104"
    numbers = tw.Stage(lambda rows: rows, name="numbers", output_type=list[str])
    wants_int = tw.Stage(lambda n: n, name="wants_int", input_type=int)
    with pytest.raises(tw.TideTypeError) as mismatch:
        tw.Tide("types", stages=[numbers, wants_int])
    assert mismatch.value.code == "TW-1101"
    per_item = tw.Stage(len, name="per_item", input_type=str, map=True)
    tw.Tide("fits", stages=[numbers, per_item]).validate()  # a map stage's input_type is one element's


def test_stage_errors_are_collected_not_raised(tw):
    calls = []

    @tw.stage(retry=tw.RetryPolicy(max_attempts=3, backoff_base=0.01))
    def flaky(_):
        calls.append(1)
        if len(calls) < 3:
            raise tw.TransientError("try again")
        return "ok"

    result = tw.Tide("flaky", [flaky]).run()
    assert (result.status, result.output, result.stage_results[0].attempts) == ("succeeded", "ok", 3)

    @tw.stage
    def broken(_):
        raise ValueError("bug")

    failed = tw.Tide("broken", [broken, flaky]).run()
    assert failed.status == "failed" and failed.output is None
    assert [(e.code, e.stage) for e in failed.errors] == [("TW-1201", "broken")]
    assert [s.status for s in failed.stage_results] == ["failed", "skipped"]


def test_a_slow_stage_times_out_and_exhausts_its_retries(tw):
    @tw.stage(timeout=0.1, retry=tw.RetryPolicy.none())
    def slow(_):
        __import__("time").sleep(1)

    result = tw.Tide("slow", [slow]).run()
    assert result.status == "failed"
    assert result.errors[0].code == "TW-1202"
    assert isinstance(result.errors[0].__cause__, tw.StageTimeoutError)


def test_map_stages_keep_the_input_order(tw):
    @tw.stage(output_type=list[int])
    def numbers(_):
        return [3, 1, 2]

    @tw.stage(input_type=int, output_type=int, map=True)
    def square(n):
        __import__("time").sleep(n / 100)
        return n * n

    assert tw.Tide("squares", [numbers, square]).run(max_workers=3).output == [9, 1, 4]
    assert square.call(5) == 25


def test_config_defaults_file_and_environment(tw, tmp_path, monkeypatch):
    config = tw.load_config()
    assert config.path is None
    assert (config["retry.max_attempts"], config["tide.max_workers"], config["stage.timeout"]) == (3, 4, 300)
    assert config.retry.backoff_base == 1.5 and config["cache.ttl"] == 86400 and config["scheduler.timezone"] == "UTC"
    (tmp_path / "tidewater.toml").write_text("[retry]\nmax_attempts = 5\n[tide]\nmax_workers = 8\n")
    monkeypatch.setenv("TW_RETRY__MAX_ATTEMPTS", "7")
    config = tw.load_config()
    assert config["retry.max_attempts"] == 7 and config.source("retry.max_attempts") == "env"
    assert config["tide.max_workers"] == 8 and config.source("tide.max_workers") == "file"
    (tmp_path / "tidewater.toml").write_text("[retry]\nmax_attempt = 5\n")
    with pytest.raises(tw.ConfigError) as unknown:
        tw.load_config()
    assert unknown.value.code == "TW-1002" and "max_attempts" in str(unknown.value)
    (tmp_path / "tidewater.toml").write_text("[tide]\nmax_workers = 0\n")
    with pytest.raises(tw.ConfigError, match="TW-1003"):
        tw.load_config()
    (tmp_path / "tidewater.toml").write_text("[tide\n")
    with pytest.raises(tw.ConfigError, match="TW-1001"):
        tw.load_config()
    with pytest.raises(tw.ConfigError, match="TW-1004"):
        tw.configure(tmp_path / "missing.toml")


def test_the_package_is_not_read_as_documents():
    from tools.docs.reading import scan_docset

    listed = [document.path for document in scan_docset(PACKAGE_DIR.parent)]
    assert listed and not any(".package" in path for path in listed)
