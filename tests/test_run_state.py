"""Run states are one closed set (schema.run_state): every place that decides "still running" reads
RUNNING_STATES, and no training-run or model-job state is a string literal typed again in the code."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import psutil
import pytest

import global_var
from frontend.web import train_tab
from schema.run_state import FINISHED_STATES, JOB_RUNNING_STATES, RESUMABLE_STATES, RUNNING_STATES, JobState, RunState
from tools.core.i18n import STRINGS
from train import runs

REPO = Path(__file__).resolve().parent.parent
# Where training-run and model-job states are written or compared.
STATE_FILES = [*sorted((REPO / "train").glob("*.py")), REPO / "global_var.py", REPO / "frontend/web/train_tab.py",
               REPO / "frontend/web/runs_panel.py", REPO / "frontend/cli/train.py", REPO / "frontend/cli/runs.py"]


def _place_run(workdir, name: str, state: str, alive: bool = True) -> Path:
    """A run folder with an adapter whose status.json says `state`; with `alive`, its worker is this process."""
    folder = workdir.child("training", name, what="run name")
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"model": "m", "dataset": "d"}), encoding="utf-8")
    me = psutil.Process()
    status = {"run": name, "state": state, "started": "2026-01-01 10:00:00"}
    if alive:
        status.update(pid=me.pid, pid_created=me.create_time())
    (folder / "status.json").write_text(json.dumps(status), encoding="utf-8")
    return folder


@pytest.mark.parametrize("state", sorted(RUNNING_STATES))
def test_a_run_still_running_is_not_offered_for_evaluation(workdir, state):
    """The evaluation list used its own copy of the running states, without "starting": a run being
    started was offered as finished."""
    _place_run(workdir, "busy", state)
    _place_run(workdir, "done", RunState.COMPLETED, alive=False)
    assert [entry["state"] for entry in runs.list_runs() if entry["run"] == "busy"] == [state]
    assert train_tab._evaluable_runs() == ["done"]


def test_the_worker_line_shows_for_every_running_state():
    for state in RunState:
        status = {"run": "r", "state": state, "step": 0, "total_steps": 0, "percent": 0.0, "pid": 42, "processes": 1}
        assert ("pid 42" in train_tab.status_markdown("en", status)) == (state in RUNNING_STATES), state


def test_the_sets_partition_the_states_and_have_labels():
    assert runs.RUNNING_STATES is RUNNING_STATES
    assert not (RUNNING_STATES & FINISHED_STATES or RUNNING_STATES & RESUMABLE_STATES or FINISHED_STATES & RESUMABLE_STATES)
    assert RUNNING_STATES | FINISHED_STATES | RESUMABLE_STATES == set(RunState) - {RunState.UNKNOWN}
    assert JOB_RUNNING_STATES == {JobState.RUNNING, JobState.STOPPING}
    missing = [state for state in RunState if state is not RunState.UNKNOWN and f"ttab.state.{state}" not in STRINGS]
    assert not missing, f"run states without a label: {missing}"


def test_a_state_is_its_string_in_status_json(workdir):
    folder = _place_run(workdir, "r", RunState.STARTING)
    text = (folder / "status.json").read_text(encoding="utf-8")
    assert '"state": "starting"' in text and json.loads(text)["state"] == RunState.STARTING
    assert f"ttab.state.{RunState.EARLY_STOPPED}" == "ttab.state.early_stopped"


def test_a_stoppable_job_stops_through_its_states():
    from train.evaluation import EvaluationJob

    job = EvaluationJob(run="r", max_items=None, judge_provider=None, max_new_tokens=8)
    assert job.state is JobState.RUNNING and job.is_running()
    job.request_stop()
    assert job.state is JobState.STOPPING and job.is_running() and job.stop_event.is_set()
    job.state = JobState.STOPPED
    assert not job.is_running()
    assert global_var.StoppableJob.is_running is EvaluationJob.is_running


# ---------------------------------------------------------------- no state typed as a literal


def _is_state(node: ast.AST) -> bool:
    """`x.state`, `x["state"]`, `x.get("state", ...)`, or the name `state`."""
    if isinstance(node, ast.Attribute):
        return node.attr == "state"
    if isinstance(node, ast.Name):
        return node.id in ("state", "last_state")
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "state"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
        return isinstance(node.args[0], ast.Constant) and node.args[0].value == "state"
    return False


def _literals(node: ast.AST) -> list[str]:
    """The string literals a value can be: itself, either arm of `a if c else b`, the items of a tuple/list/set."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [literal for item in node.elts for literal in _literals(item)]
    return []


def state_literals(path: Path) -> list[str]:
    """'file:line: "literal"' for each string literal written to, defaulted for, or compared with a state."""
    found = []
    label = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name

    def note(node: ast.AST, value: ast.AST) -> None:
        found.extend(f"{label}:{node.lineno}: {literal!r}" for literal in _literals(value))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for part, value in zip(target.elts, node.value.elts):
                        if _is_state(part):
                            note(node, value)
                elif _is_state(target):
                    note(node, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None and _is_state(node.target):
            note(node, node.value)
        elif isinstance(node, ast.Compare) and _is_state(node.left):
            for comparator in node.comparators:
                note(node, comparator)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "state":
                    note(node, value)
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "state":
                    note(node, keyword.value)
            if _is_state(node) and len(node.args) > 1:  # status.get("state", default)
                note(node, node.args[1])
    return found


def test_no_state_is_a_string_literal():
    found = [hit for path in STATE_FILES for hit in state_literals(path)]
    assert not found, "states typed as strings (use schema.run_state's RunState / JobState / RUNNING_STATES):\n" + "\n".join(found)


def test_the_scan_sees_a_literal(tmp_path):
    """The checker itself: the copy of the running states that missed "starting" is found, an enum member is not."""
    source = tmp_path / "probe.py"
    source.write_text('def f(run, job):\n    job.state = "failed"\n    job.state = RunState.FAILED\n'
                      '    return run["state"] not in ("preparing", "running", "stopping")\n', encoding="utf-8")
    assert [hit.split(": ", 1)[1] for hit in state_literals(source)] == ["'failed'", "'preparing'", "'running'", "'stopping'"]
