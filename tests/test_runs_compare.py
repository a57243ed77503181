"""Comparing training runs (issues 15, 23): run folders shaped like the trainer writes them (config.json,
status.json, metrics.json, trainer_log.jsonl, exams/<exam>.json and exams/<exam>/<n>.json), compared as rows,
Markdown, CSV and curves; exams scored in different ways flagged or refused; groups of seeds (`train --seeds`)
summed up as mean and spread."""

from __future__ import annotations

import csv
import io
import json

import pytest

import global_var
import main
from schema.exam import Estimate, ExamReport, ForgettingFigure, GroupAnalysis, GroupScore, ModelExamScore, PairedTest
from tools.core.errors import UserError
from train.compare import (
    comparison_notes,
    comparison_table,
    compare_runs,
    format_comparison,
    group_runs,
    loss_curves,
    loss_curves_frame,
    run_groups,
    spread,
)
from train.exam_reports import exam_report_path, exam_reports, save_exam_report


def _log_lines(steps: int, steps_per_epoch: int, eval_every: int, start_loss: float, resumed_at: int | None = None) -> list[dict]:
    """trainer_log.jsonl records as train.trainer's callback writes them: train lines, eval lines, the final runtime line."""
    records = []
    for step in range(1, steps + 1):
        epoch = round(step / steps_per_epoch, 4)
        records.append({"step": step, "total_steps": steps, "epoch": epoch, "loss": round(start_loss / step, 4),
                        "learning_rate": 2e-4, "grad_norm": 1.0, "tokens_per_s": 900.0, "tokens_seen": step * 512,
                        "eta_s": 1.0, "percent": round(100 * step / steps, 1), "time": "2026-12-01T10:00:00"})
        if step % eval_every == 0:
            records.append({"step": step, "total_steps": steps, "epoch": epoch, "eval_loss": round(start_loss / step + 0.3, 4),
                            "eval_perplexity": 2.0, "percent": round(100 * step / steps, 1), "time": "2026-12-01T10:00:00"})
        if resumed_at == step:  # a resumed run logs the step it restarted from again, with a new value
            records.append({**records[-1], "loss": 9.0})
            records.append({**records[-1], "loss": 0.5})
    records.append({"step": steps, "total_steps": steps, "epoch": round(steps / steps_per_epoch, 4), "train_runtime": 10.0 * steps,
                    "train_loss": 1.0, "percent": 100.0, "time": "2026-12-01T10:00:00"})
    return records


def make_run(name: str, dataset: str, version: int, lr: float, steps: int, steps_per_epoch: int, start_loss: float,
             metrics: bool = True, exam: dict | None = None, resumed_at: int | None = None, seed: int = 42,
             group: str | None = None) -> None:
    folder = global_var.workdir().child("training", name)
    (folder / "data").mkdir(parents=True)
    config = {"model": "tiny-model", "dataset": dataset, "dataset_version": version, "run_name": name, "learning_rate": lr,
              "epochs": 3.0, "max_steps": 0, "batch_size": 2, "grad_accum": 4, "lora_r": 16, "lora_alpha": 16,
              "lora_dropout": 0.0, "max_length": 512, "seed": seed, "general_mix": 0.0, "scheduler": "cosine",
              "plan": {"total_steps": steps}, "created": "2026-12-01T10:00:00",
              **({"group": group} if group else {})}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "status.json").write_text(json.dumps({"run": name, "state": "completed", "step": steps, "total_steps": steps,
                                                    "started": "2026-12-01 10:00:00", "finished": "2026-12-01 10:05:30"}),
                                        encoding="utf-8")
    log = _log_lines(steps, steps_per_epoch, 2, start_loss, resumed_at)
    (folder / "trainer_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log) + '{"step": 99, "lo', encoding="utf-8")
    if metrics:
        evals = [r["eval_loss"] for r in log if "eval_loss" in r]
        (folder / "metrics.json").write_text(json.dumps({"train_runtime": 12.5 * steps, "state": "completed", "global_step": steps,
                                                         "best_eval_loss": min(evals), "eval_items": 4}), encoding="utf-8")
    if exam:
        report = ExamReport(exam="facts", exam_version=2, run=name, created_at="2026-12-01T10:06:00+00:00", results={
            variant: ModelExamScore(model=variant, overall=GroupScore(n=10, accuracy=exam[variant]),
                                    by_kind={"mc": GroupScore(n=10, accuracy=exam[variant])},
                                    by_section={"api.md > Retry": GroupScore(n=10, accuracy=exam[variant])})
            for variant in ("base", "tuned")},
            forgetting=ForgettingFigure(sample="stdlib-docstrings-en+zh", tokens=1000, base_perplexity=10.0,
                                        tuned_perplexity=exam["ppl"], rise=exam["ppl"] / 10.0 - 1, margin=0.1,
                                        warning=exam["ppl"] / 10.0 - 1 > 0.1))
        (folder / "exams").mkdir()
        (folder / "exams" / "facts.json").write_text(report.model_dump_json(), encoding="utf-8")


@pytest.fixture()
def three_runs(workdir):
    make_run("small", "facts", 1, 2e-4, 4, 2, 4.0, exam={"base": 0.25, "tuned": 0.75, "ppl": 10.5})
    make_run("large", "facts", 3, 1e-4, 8, 4, 12.0, exam={"base": 0.25, "tuned": 0.9, "ppl": 12.0}, resumed_at=4)
    make_run("unfinished", "other", 2, 5e-5, 6, 3, 6.0, metrics=False)
    return ["small", "large", "unfinished"]


def test_three_runs_compare_with_dataset_versions_params_losses_exams_and_forgetting(three_runs):
    small, large, unfinished = compare_runs(three_runs)
    assert (small.dataset, small.dataset_version, small.params["learning_rate"], small.steps) == ("facts", 1, 2e-4, 4)
    assert small.duration_s == 50.0  # metrics.json's train_runtime
    assert small.final_loss == 1.0 and small.final_eval_loss == 1.3 and small.best_eval_loss == 1.3
    facts = small.exams["facts"]
    # A report saved before reports were numbered (exams/facts.json) and without an analysis: no interval, no test.
    assert (facts["version"], facts["number"], facts["base"], facts["tuned"]) == (2, 0, 0.25, 0.75)
    assert facts["low"] is None and facts["significant"] is None and facts["scoring"] == "v2 · mean · listed"
    assert small.forgetting["rise"] == pytest.approx(0.05) and not small.forgetting["warning"]
    assert large.dataset_version == 3 and large.exams["facts"]["tuned"] == 0.9 and large.forgetting["warning"]
    # No metrics.json: the best eval loss comes from the log, the duration from its runtime line.
    assert unfinished.best_eval_loss == 1.3 and unfinished.duration_s == 60.0 and unfinished.exams == {}
    assert unfinished.forgetting is None and unfinished.dataset == "other"


def test_markdown_and_csv_hold_one_row_per_run_and_the_exam_side_by_side(three_runs):
    markdown = format_comparison(three_runs, "md")
    table = markdown.split("\n\n")[0].splitlines()
    assert len(table) == 2 + 3 and table[0].startswith("| run | state | dataset | dataset version |")
    assert "| small | completed | facts | 1 | tiny-model | 0.0002 |" in table[2]
    assert "75.0% (base 25.0%) [v2 · mean · listed]" in table[2] and "+5.0%" in table[2] and "+20.0% !" in table[3]
    assert "≠" not in markdown and comparison_notes(compare_runs(three_runs), "en") == []
    assert "### exam facts" in markdown and "| group | small Base | small Tuned | large Base |" in markdown
    assert "| section: api.md > Retry | 25.0% | 75.0% | 25.0% | 90.0% |  |  |" in markdown
    chinese = format_comparison(three_runs, "md", "zh")
    assert chinese.startswith("| 运行 | 状态 | 数据集 | 数据集版本 |") and "| 章节: api.md > Retry |" in chinese

    rows = list(csv.reader(io.StringIO(format_comparison(three_runs, "csv"))))
    header, body = rows[0], rows[1:]
    assert [row[0] for row in body] == three_runs
    column = {name: index for index, name in enumerate(header)}
    assert body[1][column["best_eval_loss"]] == "1.8000" and body[1][column["dataset_version"]] == "3"
    assert body[2][column["exam:facts"]] == "" and body[0][column["duration_s"]] == "50.0"
    assert body[0][column["exam:facts"]] == "75.0% (base 25.0%)" and body[0][column["exam:facts:scoring"]] == "v2 · mean · listed"
    assert body[2][column["exam:facts:scoring"]] == ""


def test_loss_curves_overlay_on_steps_or_epochs(three_runs):
    by_step = loss_curves(three_runs, "step")
    small = [(r["x"], r["value"]) for r in by_step if r["run"] == "small" and r["series"] == "loss"]
    assert small == [(1.0, 4.0), (2.0, 2.0), (3.0, 1.3333), (4.0, 1.0)]
    evals = [(r["x"], r["value"]) for r in by_step if r["run"] == "small" and r["series"] == "eval_loss"]
    assert evals == [(2.0, 2.3), (4.0, 1.3)]
    resumed = [r["value"] for r in by_step if r["run"] == "large" and r["series"] == "loss" and r["x"] == 4.0]
    assert resumed == [0.5], "a step logged twice keeps its last value"

    # Epochs put runs of different sizes on one axis: both end at epoch 2.
    by_epoch = loss_curves_frame(three_runs, "epoch")
    assert list(by_epoch.columns) == ["run", "x", "series", "value"]
    ends = by_epoch[by_epoch.series == "loss"].groupby("run")["x"].max().to_dict()
    assert ends == {"small": 2.0, "large": 2.0, "unfinished": 2.0}
    with pytest.raises(UserError) as axis:
        loss_curves(three_runs, "time")
    assert axis.value.key == "error.examgen_x_axis"


def test_runs_compare_on_the_command_line(three_runs, capsys, tmp_path):
    root = str(global_var.workdir().root)
    assert main.main(["--workdir", root, "--lang", "en", "runs", "compare", *three_runs, "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run,state,dataset,dataset_version,") and out.count("\n") == 4
    target = tmp_path / "cmp.md"
    assert main.main(["--workdir", root, "--lang", "en", "runs", "compare", "small", "large", "--curves", "epoch",
                      "--output", str(target)]) == 0
    written = target.read_text(encoding="utf-8")
    assert "| large |" in written and "Loss curves (x: epoch)" in written and "small,0.5,loss,4" in written
    assert main.main(["--workdir", root, "--lang", "en", "runs", "compare", "small", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(UserError) as repeated:
        compare_runs(["small", "small"])
    assert repeated.value.key == "error.examgen_compare_repeated"


# ---------------------------------------------------------------- issue 23: kept reports, scoring, intervals, groups


def add_report(run: str, base: float, tuned: float, created_at: str, exam: str = "facts", forgetting: ForgettingFigure | None = None,
               analysis: dict | None = None, **scoring) -> ExamReport:
    """A report as `exam run` keeps it now: the next numbered file of the run's exam, with its scoring options."""
    report = ExamReport(exam=exam, exam_version=2, run=run, created_at=created_at,
                        scoring={"normalise": "mean", "list_options": True, **scoring},
                        results={variant: ModelExamScore(model=variant, overall=GroupScore(n=8, accuracy=value),
                                                         by_kind={"mc": GroupScore(n=8, accuracy=value)})
                                 for variant, value in (("base", base), ("tuned", tuned))},
                        forgetting=forgetting, analysis=analysis or {})
    save_exam_report(report)
    return report


def _analysis(base: float, tuned: float, low: float, high: float, p_value: float) -> dict:
    return {"overall": GroupAnalysis(n=8, closed={"base": Estimate(value=base, low=base - 0.1, high=base + 0.1, n=8),
                                                  "tuned": Estimate(value=tuned, low=low, high=high, n=8)},
                                     test=PairedTest(n=8, gain=tuned - base, p_value=p_value, significant=p_value < 0.05))}


def test_a_later_exam_run_is_kept_beside_the_earlier_and_a_mixed_scoring_is_named(three_runs, capsys):
    # `large` sits the exam again, scored with summed log-likelihoods: a second report, the first one kept.
    add_report("large", 0.3, 0.5, "2026-12-02T10:00:00+00:00", normalise="sum")
    assert [r.number for r in exam_reports("large", "facts")] == [0, 1]
    assert (global_var.workdir().child("training", "large") / "exams" / "facts.json").exists()
    assert exam_report_path("large", "facts").name == "1.json"

    small, large = compare_runs(["small", "large"])
    assert large.exams["facts"]["tuned"] == 0.5 and large.exams["facts"]["number"] == 1, "the latest report is shown"
    markdown = format_comparison(["small", "large"], "md", "en")
    table = markdown.split("\n\n")[0].splitlines()
    assert "75.0% (base 25.0%) [v2 · mean · listed]" in table[2] and "≠" not in table[2]
    assert "50.0% (base 30.0%) ≠ [v2 · sum · listed]" in table[3]
    note = comparison_notes([small, large], "en")[0]
    assert note == ("Note: exam facts was scored in different ways (differing: normalise), so the cells marked ≠ do not compare "
                    "with the others. How each run was scored: small: v2 · mean · listed; large: v2 · sum · listed.")
    assert f"- {note}" in markdown
    assert "试卷 facts 的评分方式不同(normalise 不一致)" in comparison_notes([small, large], "zh")[0]
    # The older figures of `large` still sit beside it in the per-group table of its latest report.
    assert "| overall | 25.0% | 75.0% | 30.0% | 50.0% |" in markdown

    rows = list(csv.reader(io.StringIO(format_comparison(["small", "large"], "csv"))))
    column = {name: index for index, name in enumerate(rows[0])}
    assert rows[2][column["exam:facts"]] == "50.0% (base 30.0%) ≠" and rows[2][column["exam:facts:scoring"]] == "v2 · sum · listed"

    root = str(global_var.workdir().root)
    assert main.main(["--workdir", root, "--lang", "en", "runs", "compare", "small", "large", "--same-scoring"]) == 2
    error = capsys.readouterr().err
    assert "Exam facts was scored in different ways on these runs (differing: normalise)" in error
    assert "small: v2 · mean · listed; large: v2 · sum · listed" in error
    # Runs scored alike pass --same-scoring.
    assert main.main(["--workdir", root, "--lang", "en", "runs", "compare", "small", "unfinished", "--same-scoring"]) == 0


def test_a_forgetting_figure_stays_when_a_later_report_has_none_and_shows_its_band(three_runs):
    add_report("small", 0.25, 0.8, "2026-12-02T10:00:00+00:00")  # `exam run --no-forgetting`
    small = compare_runs(["small"])[0]
    assert small.exams["facts"]["tuned"] == 0.8 and small.forgetting["rise"] == pytest.approx(0.05)

    banded = ForgettingFigure(sample="stdlib-docstrings-en+zh", base_perplexity=10.0, tuned_perplexity=11.81, rise=0.181,
                              rise_low=0.12, rise_high=0.243, margin=0.1, warning=True)
    add_report("small", 0.25, 0.8, "2026-12-03T10:00:00+00:00", forgetting=banded)
    add_report("small", 0.25, 0.8, "2026-12-04T10:00:00+00:00")
    small = compare_runs(["small"])[0]
    assert small.forgetting["rise"] == 0.181 and small.forgetting["rise_high"] == 0.243
    headers, rows = comparison_table([small])
    assert rows[0][headers.index("forgetting_rise")] == "+18.1% [+12.0, +24.3] !"
    assert any("[low, high] after the perplexity change" in note for note in comparison_notes([small], "en"))


def test_a_report_with_an_analysis_shows_the_interval_and_a_gain_that_is_not_significant(three_runs):
    add_report("small", 0.4, 0.625, "2026-12-02T10:00:00+00:00", analysis=_analysis(0.4, 0.625, 0.55, 0.70, 0.2))
    add_report("large", 0.25, 0.9, "2026-12-02T10:00:00+00:00", analysis=_analysis(0.25, 0.9, 0.8, 1.0, 0.001))
    summaries = compare_runs(three_runs)
    headers, rows = comparison_table(summaries, "md", "en")
    cell = headers.index("exam:facts")
    assert rows[0][cell] == "62.5% [55.0–70.0] (base 40.0%) n.s. [v2 · mean · listed]"
    assert rows[1][cell] == "90.0% [80.0–100.0] (base 25.0%) [v2 · mean · listed]"
    assert comparison_table(summaries, "md", "zh")[1][0][cell] == "62.5% [55.0–70.0](基座 40.0%) 不显著 [v2 · mean · listed]"
    notes = comparison_notes(summaries, "en")
    assert any(note.startswith("[low–high] after an exam figure") for note in notes)
    assert any(note.startswith("n.s.: the tuned model's gain") and "p ≥ 0.05" in note for note in notes)
    # A run whose only report has no analysis compares beside them; the per-group table takes both kinds.
    make_run("old", "facts", 1, 2e-4, 4, 2, 4.0, exam={"base": 0.5, "tuned": 0.5, "ppl": 10.0})
    markdown = format_comparison(["small", "old"], "md", "en")
    assert "| old |" in markdown and "50.0% (base 50.0%) [v2 · mean · listed]" in markdown
    assert "| kind: mc | 40.0% | 62.5% | 50.0% | 50.0% |" in markdown


def test_spread_is_the_mean_sample_sd_and_range_of_the_figures_present():
    figure = spread([1.0, 2.0, 3.0, None])
    assert (figure.n, figure.mean, figure.sd, figure.low, figure.high) == (3, 2.0, 1.0, 1.0, 3.0)
    assert spread([0.269, 0.181]).sd == pytest.approx(0.0622254, rel=1e-5)
    single = spread([None, 0.5])
    assert single.n == 1 and single.sd is None and spread([None]) is None and spread([]) is None


@pytest.fixture()
def seed_group(workdir):
    """Three runs of group g1 (seeds 42-44) with known figures, and one run outside it."""
    for seed, start_loss, tuned, ppl in ((42, 4.0, 0.6, 10.5), (43, 8.0, 0.7, 11.0), (44, 12.0, 0.8, 11.5)):
        make_run(f"g1-s{seed}", "facts", 1, 2e-4, 4, 2, start_loss, exam={"base": 0.25, "tuned": tuned, "ppl": ppl},
                 seed=seed, group="g1")
    make_run("solo", "facts", 1, 2e-4, 4, 2, 4.0, exam={"base": 0.25, "tuned": 0.5, "ppl": 10.0}, seed=7, group="g2")
    return ["g1-s42", "g1-s43", "g1-s44", "solo"]


def test_a_group_of_seeds_gets_a_row_with_mean_and_spread(seed_group):
    summaries = compare_runs(seed_group)
    assert [(name, [s.run for s in members]) for name, members in run_groups(summaries)] == [("g1", seed_group[:3])]
    headers, rows = comparison_table(summaries, "md", "en")
    assert len(rows) == 5, "one row per run and one for g1 (g2 has a single run here)"
    group = dict(zip(headers, rows[-1]))
    assert group["run"] == "group g1 (3 runs: seeds 42, 43, 44)"
    # Final losses 1, 2, 3; tuned 60/70/80 %; perplexity rise +5/+10/+15 %.
    assert group["final_loss"] == "2.0000 ± 1.0000 (1.0000–3.0000)"
    assert group["exam:facts"] == "70.0% ± 10.0 (60.0–80.0%)"
    assert group["forgetting_rise"] == "+10.0% ± 5.0 (+5.0…+15.0%)"
    assert group["dataset"] == "facts" and group["learning_rate"] == "0.0002" and group["seed"] == ""
    markdown = format_comparison(seed_group, "md", "zh")
    assert "| 分组 g1(3 个运行:种子 42, 43, 44) |" in markdown and "分组行:" in markdown

    # A member scored otherwise makes the group's figure a mixed one.
    add_report("g1-s44", 0.25, 0.8, "2026-12-02T10:00:00+00:00", normalise="sum")
    headers, rows = comparison_table(compare_runs(seed_group), "csv")
    group = dict(zip(headers, rows[-1]))
    assert group["exam:facts"] == "70.0% ± 10.0 (60.0–80.0%) ≠" and group["exam:facts:scoring"] == "v2 · mean · listed | v2 · sum · listed"


def test_runs_compare_group_takes_every_run_of_the_group(seed_group, capsys):
    assert group_runs("g1") == seed_group[:3]
    with pytest.raises(UserError) as none:
        group_runs("nope")
    assert none.value.key == "error.examgen_group_none"
    root = str(global_var.workdir().root)
    assert main.main(["--workdir", root, "--lang", "en", "runs", "compare", "--group", "g1", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [row[0] for row in rows[1:]] == [*seed_group[:3], "group g1 (3 runs: seeds 42, 43, 44)"]
    assert main.main(["--workdir", root, "--lang", "en", "runs", "compare", "solo", "--group", "g1"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("| solo |")


# ---------------------------------------------------------------- `train --seeds N`: one group of runs


class _FakeJob:
    """What train_series reads of a started run, for a series that does not train for real."""

    def __init__(self, name: str, state: str, error: str | None = None):
        self.run_name, self.run_dir, self._state, self._error = name, global_var.workdir().child("training", name), state, error

    def wait(self, timeout=None) -> bool:
        return True

    def request_stop(self) -> None:
        pass

    def status(self) -> dict:
        return {"state": self._state, "step": 4, "total_steps": 4, "error": self._error}


def test_a_series_names_its_runs_by_seed_records_the_group_and_stops_at_a_failed_run(workdir, capsys):
    from frontend.cli.train import train_series
    from train.config import TrainConfig

    started = []

    def start(config, on_progress=None, group=None, group_seeds=None):
        started.append((config.run_name, config.seed, group, group_seeds))
        make_run(config.run_name, "facts", 1, 2e-4, 4, 2, 4.0, seed=config.seed, group=group)
        return _FakeJob(config.run_name, "failed" if config.seed == 43 else "completed", "CUDA out of memory")

    config = TrainConfig(model="tiny", dataset="facts", run_name="exp", seed=42)
    assert train_series(config, 3, start=start) == 1
    assert started == [("exp-s42", 42, "exp", [42, 43, 44]), ("exp-s43", 43, "exp", [42, 43, 44])]
    assert config.run_name == "exp" and config.seed == 42, "the caller's config is left as it was"
    out, err = capsys.readouterr()
    assert "Run 1/3 of group exp: exp-s42 (seed 42)" in out and "Run 2/3 of group exp: exp-s43 (seed 43)" in out
    assert ("Run exp-s43 (seed 43) ended failed, so the series stops here: CUDA out of memory. "
            "The finished runs are kept: exp-s42.") in err
    assert group_runs("exp") == ["exp-s42", "exp-s43"]
    # The name of a group that has runs is not taken again.
    with pytest.raises(UserError) as taken:
        train_series(config, 2, start=start)
    assert taken.value.key == "error.examgen_group_exists" and "exp-s42" in taken.value.render("en")

    # Without --run-name the group is '<dataset>-<stamp>'; the end names the runs and how to compare them.
    started.clear()
    assert train_series(TrainConfig(model="tiny", dataset="facts", seed=7), 2, start=start) == 0
    group = started[0][2]
    assert group.startswith("facts-2") and [name for name, *_ in started] == [f"{group}-s7", f"{group}-s8"]
    out = capsys.readouterr().out
    assert f"Group {group}, 2 runs: {group}-s7, {group}-s8" in out
    assert f"python main.py runs compare {group}-s7 {group}-s8" in out and f"runs compare --group {group}" in out


def test_seeds_flag_is_checked_before_anything_starts(workdir, capsys):
    root = str(global_var.workdir().root)
    for flags, message in ((["--seeds", "0"], "--seeds must be at least 1 (got 0)"),
                           (["--seeds", "2", "--detach"], "cannot --detach"),
                           (["--seeds", "2", "--resume", "r1"], "does not go with --resume")):
        assert main.main(["--workdir", root, "--lang", "en", "train", "--model", "tiny", "--dataset", "facts", *flags]) == 2
        assert message in capsys.readouterr().err
    assert not global_var.workdir().training.exists() or not any(global_var.workdir().training.iterdir())
