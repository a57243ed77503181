"""One job-handle protocol for every kind of background job, and one way to start the LLM jobs that the page and
the command line share (frontend.jobs): the CLI's generation, judging and exam creation are registered too."""

from __future__ import annotations

import global_var
import main
from frontend.jobs import find_exam_creation_job, find_generation_job, find_judge_job
from tests.openai_test_server import OpenAITestServer
from tools.generation.engine import GenerationProgress
from tools.llm.runner import BackgroundJob
from tools.workspace import Workspace, open_workspace
from train.evaluation import EvaluationJob
from train.exam import ExamJob
from train.launcher import WorkerRun


def test_every_kind_of_job_handle_answers_the_one_protocol(tmp_path):
    handles = [
        BackgroundJob(None, GenerationProgress(dataset="d"), lambda *args: None, "t", "a run"),  # generation, judge, examgen
        EvaluationJob(run="r", max_items=None, judge_provider=None, max_new_tokens=8),
        ExamJob(exam="e", version=1, run="r", base_only=False),
        WorkerRun("r", tmp_path),
        global_var._SynchronousJob(),  # an export in the caller's thread
    ]
    for handle in handles:
        assert isinstance(handle, global_var.JobHandle), type(handle).__name__
        assert callable(handle.request_stop) and hasattr(handle, "thread")


def test_a_workspace_opened_by_hand_is_what_the_app_hands_out(tmp_path):
    opened = open_workspace(tmp_path / "wd")
    assert isinstance(opened, Workspace) and opened.workdir.docs.is_dir() and opened.prompts.names()
    global_var.reset()
    try:
        assert global_var.init(tmp_path / "wd").workdir.root == opened.workdir.root
        assert global_var.workspace().exams.root == opened.exams.root
    finally:
        global_var.reset()


def test_the_command_line_runs_its_llm_jobs_through_the_registry(workdir):
    """`generate`, `datasets score` and `exam create` in this process: each leaves its job in the registry, as a
    start from the page does, so the one rule (one per dataset / exam) holds for both ways in."""
    with OpenAITestServer() as server:
        common = ["--base-url", server.base_url, "--model", "test-model", "--api-key", "k"]
        root = ["--workdir", str(workdir.root)]
        assert main.main([*root, "generate", "--docs", "tidewater", "--dataset", "cli-ds", "--rounds", "1",
                          "--var", "project_name=Tidewater", *common]) == 0
        assert main.main([*root, "datasets", "score", "cli-ds", *common]) == 0
        assert main.main([*root, "exam", "create", "--docs", "tidewater", "--name", "cli-exam", "--kinds", "tf",
                          "--per-slice", "1", *common]) == 0
    generation, judging, creation = find_generation_job("cli-ds"), find_judge_job("cli-ds"), find_exam_creation_job("cli-exam")
    assert generation.progress().status == "finished" and generation.progress().items > 0
    assert judging.progress().status == "finished"
    assert creation.exam is not None and creation.exam.name == "cli-exam"
    assert global_var.running_jobs() == []
