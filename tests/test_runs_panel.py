"""The Fine-tuning tab's "Runs & exams" panel (issue 15), its handlers called without a browser: the runs
table and the comparison (curves, Markdown, CSV) in both languages, an exam run in the background on the
tiny model and picked up by the timer, the device rule, and the weak sections handed to a generation run."""

from __future__ import annotations

import csv
import json

import pytest

import global_var
import tests.test_exam_create as exam_create
import tests.test_runs_compare as runs_compare
from frontend.web.runs_panel import (
    ExamJob,
    compare,
    curves_colors,
    current_exam_job,
    followed_on_load,
    generate_weak,
    poll,
    refresh_panel,
    runs_frame,
    show_exam,
    show_weak,
    start_exam,
    stop_exam,
)
from schema.exam import ExamReport, GroupScore, ModelExamScore
from tests.fixtures_train import TINY, load_facts
from tests.openai_test_server import OpenAITestServer
from tools.core.i18n import t
from frontend.jobs import find_generation_job
from tools.generation.engine import UNIT_DONE
from train.exam import build_facts_exam
from train.weak_sections import WEAK_PURPOSE


@pytest.fixture()
def three_runs(workdir):
    runs_compare.make_run("small", "facts", 1, 2e-4, 4, 2, 4.0, exam={"base": 0.25, "tuned": 0.75, "ppl": 10.5})
    runs_compare.make_run("large", "facts", 3, 1e-4, 8, 4, 12.0, exam={"base": 0.25, "tuned": 0.9, "ppl": 12.0})
    runs_compare.make_run("unfinished", "other", 2, 5e-5, 6, 3, 6.0, metrics=False)
    return ["small", "large", "unfinished"]


def test_runs_table_and_comparison_in_both_languages(three_runs):
    english = runs_frame("en")
    assert sorted(english["run"]) == sorted(three_runs)
    assert {"dataset version", "best eval loss", "exam facts", "general perplexity change", "learning_rate"} <= set(english.columns)
    small = english[english["run"] == "small"].iloc[0]
    # Each exam cell says how it was scored (exam version, normalisation, option listing).
    assert small["exam facts"] == "75.0% (base 25.0%) [v2 · mean · listed]" and small["state"] == t("ttab.state.completed", "en")
    chinese = runs_frame("zh")
    assert {"运行", "数据集版本", "试卷 facts"} <= set(chinese.columns)
    assert chinese[chinese["运行"] == "small"].iloc[0]["试卷 facts"].startswith("75.0%(基座 25.0%)")

    curves, table, markdown, files = compare("en", ["small", "large"], "epoch")
    frame = curves["value"]
    assert set(frame["line"]) == {"small · loss", "small · eval_loss", "large · loss", "large · eval_loss"}
    assert frame[frame["line"] == "small · loss"]["x"].max() == 2.0 == frame[frame["line"] == "large · loss"]["x"].max()
    # The colours come in the next event, after the points (the page's chart rebuilds from the points it
    # held before an update that changes its colours): one per line of every picked run.
    assert curves["x_title"] == "epoch" and "color_map" not in curves
    colors = curves_colors(["small", "large"])["color_map"]
    assert set(colors) == set(frame["line"]) and len(set(colors.values())) == 4
    assert curves_colors([])["color_map"] is None
    assert table["run"].tolist() == ["small", "large"] and table.iloc[1]["exam facts"].startswith("90.0% (base 25.0%)")
    assert "#### exam facts" in markdown and "| group | small Base | small Tuned | large Base | large Tuned |" in markdown
    assert "| section: api.md > Retry | 25.0% | 75.0% | 25.0% | 90.0% |" in markdown
    csv_path, md_path = files
    rows = list(csv.reader(open(csv_path, encoding="utf-8")))
    assert rows[0][:3] == ["run", "state", "dataset"] and [row[0] for row in rows[1:]] == ["small", "large"]
    written = open(md_path, encoding="utf-8").read()
    assert "| small | completed | facts | 1 |" in written and "### exam facts" in written

    curves, table, markdown, files = compare("zh", ["small"], "step")
    # The lines keep the trainer's series names in either language (a switch leaves the set of lines, the
    # chart's colour domain, as it was); the legend's title says what they mean in the page's language.
    assert set(curves["value"]["line"]) == {"small · loss", "small · eval_loss"} and curves["x_title"] == "步数"
    assert curves["color_title"] == "loss=训练 · eval_loss=验证"
    assert "| 分组 | small 基座 | small 微调 |" in markdown and list(table.columns)[:2] == ["运行", "状态"]
    assert open(files[1], encoding="utf-8").read().startswith("| 运行 | 状态 |")
    curves, table, hint, files = compare("en", [], "step")
    assert curves["value"].empty and table.empty and hint == t("runs.compare_hint", "en") and files is None

    table, picked, x_axis, exam, run, provider, dataset, template, no_exams, judge, normalise, delete_pick = refresh_panel(
        "zh", ["small", "gone"], "epoch", None, "large", None, None, None, None, "sum", "gone")
    assert sorted(picked["choices"]) == sorted(three_runs) and picked["value"] == ["small"]
    assert x_axis["value"] == "epoch" and ("轮次", "epoch") in x_axis["choices"]
    assert normalise["value"] == "sum" and ("求和", "sum") in normalise["choices"] and judge["choices"] == []
    assert "value" not in run and no_exams == t("runs.exam_none", "zh")
    assert sorted(delete_pick["choices"]) == sorted(three_runs) and delete_pick["value"] is None  # a deleted run is not kept


def _save_exam(name: str, questions: int = 8) -> None:
    exam = build_facts_exam(load_facts()[:questions], name=name)
    path = global_var.workspace().exams.version_path(name, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(exam.model_dump_json(), encoding="utf-8")


def _run_on_tiny(name: str) -> None:
    runs_compare.make_run(name, "facts", 1, 2e-4, 4, 2, 4.0)
    config_path = global_var.workdir().child("training", name) / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config_path.write_text(json.dumps({**config, "model": TINY}), encoding="utf-8")


def test_an_exam_runs_in_the_background_and_the_timer_shows_its_report(workbench):
    _save_exam("facts-exam")
    _run_on_tiny("r1")
    table, _, _, exam, run, *_ = refresh_panel("en", [], "step", None, None, None, None, None)
    assert exam["choices"] == [("facts-exam (v1, 8 questions)", "facts-exam")] and run["choices"] == ["r1"]

    # Without an adapter only the base model can sit the exam; nothing starts.
    with pytest.raises(Exception, match="adapter"):
        start_exam("en", "facts-exam", "r1", False)
    assert current_exam_job() is None
    with pytest.raises(Exception, match="Exam"):
        start_exam("en", None, "r1", True)

    # The exam options (those of `exam run`) are checked before anything starts.
    for options, named in (({"margin": 0}, "margin"), ({"normalise": "max"}, "max"), ({"judge": "nobody"}, "nobody"),
                           ({"max_new_tokens": 0}, "max_new_tokens|0")):
        with pytest.raises(Exception, match=named):
            start_exam("en", "facts-exam", "r1", True, **options)
    assert current_exam_job() is None

    message = start_exam("en", "facts-exam", "r1", True, normalise="sum", list_options=False, forgetting=False, margin=0.2)
    assert message == t("runs.exam_started", "en", exam="facts-exam", run="r1")
    job = current_exam_job()
    assert isinstance(job, ExamJob) and job.wait(120), "the exam did not finish"
    assert job.state == "finished", job.error
    assert job.exam_report.scoring["normalise"] == "sum" and job.exam_report.scoring["list_options"] is False
    status, report, splits, sections, runs, shown, weak = poll("en", None, None)
    assert "facts-exam" in status and "done in" in status and shown
    assert "v1 · sum · unlisted · tf calibrated · blind+open" in status and "Legend" in status
    # Per kind: the score with its baselines and interval; the base model only, so no test of a gain.
    assert list(report.columns)[:5] == ["group", "n", "chance / majority", "no question (base / tuned)", "base [95% CI]"]
    overall, mc = report.iloc[0], report.iloc[1]
    assert overall["group"] == "overall" and overall["n"] == "8" and overall["tuned [95% CI]"] == "-"
    assert mc["group"] in ("multiple choice", "recognition") and mc["chance / majority"].startswith("25.0% / ")
    assert list(splits.columns)[:2] == ["group", "open book (base / tuned)"]
    assert list(sections.columns) == ["Group", "Questions", "Base", "Tuned"] and len(sections) == 3
    base_figure = overall["base [95% CI]"].split(" ")[0]
    assert runs[runs["run"] == "r1"].iloc[0]["exam facts-exam"].startswith(f"- (base {base_figure})")
    # The next tick sends nothing new; a reloaded page (no shown key) gets the outcome again.
    assert all(not isinstance(part, str) or part == shown for part in poll("en", shown, None)[:6])
    assert poll("zh", None, None)[1].columns[0] == "分组"
    status, saved, saved_splits, saved_sections = show_exam("en", "facts-exam", "r1")
    assert "Saved result" in status and saved.iloc[0]["base [95% CI]"] == overall["base [95% CI]"]
    assert stop_exam("en") == t("runs.exam_nothing_running", "en")
    # An exam is a job kind of its own: the evaluation section neither shows nor stops it.
    from frontend.web.train_tab import poll_evaluation

    eval_status, summary, items, paths, key = poll_evaluation("en", None)
    assert eval_status == t("etab.idle", "en") and key is None


def test_an_exam_waits_for_the_device_like_every_model_job(workbench):
    class Busy:
        def is_running(self):
            return True

    _save_exam("facts-exam", 4)
    _run_on_tiny("r1")
    global_var.start_job("export", "r0", Busy())
    with pytest.raises(Exception, match="export"):
        start_exam("en", "facts-exam", "r1", True)
    assert current_exam_job() is None


def test_weak_sections_table_and_generation_on_exactly_their_slices(workdir):
    slices = exam_create.tidewater_slices()
    sections: dict[str, list[str]] = {}
    for piece in slices:
        sections.setdefault(exam_create._section(piece), []).append(piece.slice_id)
    chosen = list(sections)[:4]
    with OpenAITestServer() as server:
        _, _, exam = exam_create.create(server, kinds="mc", slice_ids=[sections[name][0] for name in chosen], per_slice=6)
        global_var.providers().add(name="local", base_url=server.base_url, model_id="test-model", api_key="k",
                                   max_concurrency=4, timeout_s=5)
        folder = global_var.workdir().child("training", "r1")
        (folder / "data").mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"model": "tiny", "dataset": "facts"}), encoding="utf-8")
        (folder / "data" / "train.jsonl").write_text("", encoding="utf-8")
        # Tuned right on 1, 6, 0 and 6 of each section's 6 questions: sections 0 and 2 significantly below the rest.
        report = exam_create.scored_report(exam, "r1", {chosen[0]: 1, chosen[1]: 6, chosen[2]: 0, chosen[3]: 6})
        (folder / "exams").mkdir()
        (folder / "exams" / "ex.json").write_text(report.model_dump_json(), encoding="utf-8")

        summary, table, dataset = show_weak("en", "ex", "r1", 0.05, None)
        assert summary.startswith("2 of 4 sections are weak") and "(multiple choice)" in summary and dataset == "facts"
        flagged = table[table["weak"] == "yes"]["section"].tolist()
        assert flagged == [chosen[0], chosen[2]] and table.iloc[0]["Base"] == "33.3%"
        assert table.iloc[1]["p (below the others)"] != "-" and table.iloc[0]["tested"] == "6"
        assert show_weak("zh", "ex", "r1", 0.05, "facts")[1].columns[0] == "章节"
        with pytest.raises(Exception, match="significance level"):
            show_weak("en", "ex", "r1", 2, None)
        with pytest.raises(Exception, match="provider"):
            generate_weak("en", "ex", "r1", 0.05, None, "facts", "default-en", [], 1)

        panel, watched = generate_weak("en", "ex", "r1", 0.05, "local", "", "default-en", [["project_name", "Tidewater"]], 1)
        assert watched == "facts" and "facts" in panel
        job = find_generation_job("facts")
        assert job.prepared.purpose == WEAK_PURPOSE
        progress = job.wait(60)
        assert progress.status == "finished", progress.message
        assert "finished" in poll("en", None, "facts")[6].lower()
    units = {e["unit"].rsplit(":", 1)[0] for e in global_var.datasets().load("facts").events if e.get("type") == UNIT_DONE}
    assert units == set(sections[chosen[0]] + sections[chosen[2]]), "exactly the weak sections' slices"
    assert global_var.datasets().load("facts").items and exam.name == "ex", "the new items landed in the dataset"


def test_a_reloaded_page_follows_the_weak_sections_generation_that_still_runs(workdir):
    class Running:
        def __init__(self, dataset, purpose):
            self.dataset, self.prepared = dataset, type("Prepared", (), {"purpose": purpose})()
            self.running = True

        def is_running(self):
            return True

    assert followed_on_load()[0] is None
    global_var.start_job("generation", "plain", Running("plain", ""))
    watched, timer = followed_on_load()
    assert watched is None and timer.active is False, "a Generation-tab run is that tab's to show"
    global_var.start_job("generation", "facts", Running("facts", WEAK_PURPOSE))
    watched, timer = followed_on_load()
    assert watched == "facts" and timer.active is True
