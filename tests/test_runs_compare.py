"""Comparing training runs (issue 15): three run folders shaped like the trainer writes them (config.json,
status.json, metrics.json, trainer_log.jsonl, exams/<exam>.json), compared as rows, Markdown, CSV and curves."""

from __future__ import annotations

import csv
import io
import json

import pytest

import global_var
import main
from schema.exam import ExamReport, ForgettingFigure, GroupScore, ModelExamScore
from tools.core.errors import UserError
from train.compare import compare_runs, format_comparison, loss_curves, loss_curves_frame


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
             metrics: bool = True, exam: dict | None = None, resumed_at: int | None = None) -> None:
    folder = global_var.workdir().child("training", name)
    (folder / "data").mkdir(parents=True)
    config = {"model": "tiny-model", "dataset": dataset, "dataset_version": version, "run_name": name, "learning_rate": lr,
              "epochs": 3.0, "max_steps": 0, "batch_size": 2, "grad_accum": 4, "lora_r": 16, "lora_alpha": 16,
              "lora_dropout": 0.0, "max_length": 512, "seed": 42, "general_mix": 0.0, "scheduler": "cosine",
              "plan": {"total_steps": steps}, "created": "2026-12-01T10:00:00"}
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
        report = ExamReport(exam="facts", exam_version=2, run=name, results={
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
    assert small.exams == {"facts": {"version": 2, "base": 0.25, "tuned": 0.75}}
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
    assert "75.0% (base 25.0%)" in table[2] and "+5.0%" in table[2] and "+20.0% !" in table[3]
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
