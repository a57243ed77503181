"""`python main.py exam run EXAM --run RUN [--base]`: score an exam on a run's base model and its adapter
(closed book, question removed, open book), print per kind the scores with their baselines, intervals and
the paired test, the trained/untrained split and the open-book ceiling, per doc section, and the forgetting
figure; keep the report with the run (`--json` prints it whole).

`add_exam_run(actions)` adds the `run` subcommand to the `exam` command family (frontend/cli/exam.py).
Importing this module must not import torch: the parser is built at every start of the app.
"""

from __future__ import annotations

import sys
import unicodedata

from tools.core.i18n import t


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Aligned plain-text columns (CJK characters count two)."""
    table = [headers] + rows
    widths = [max(_width(row[i]) for row in table) for i in range(len(headers))]
    return "\n".join("  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip() for row in table)


def format_report(report, lang: str | None = None) -> str:
    """The saved report as terminal text: title, how it was scored, the tables, the forgetting figure."""
    from train.exam_reports import analysed, report_notes, report_rows, scoring_summary, score_rows, section_rows, split_rows
    from train.forgetting import forgetting_lines

    report = analysed(report)
    judge = report.scoring.get("judge")
    lines = [t("exam.run.title", lang, exam=report.exam, version=report.exam_version, run=report.run)
             + (f" · {t('exam.run.report_number', lang, number=report.number)}" if report.number else ""),
             t("exam.run.scoring", lang, normalise=report.scoring.get("normalise", "mean"),
               judge=t("exam.run.judged", lang, judge=judge) if judge else "") + f" [{scoring_summary(report)}]", ""]
    if report.analysis:
        lines += [t("exam.run.scores_title", lang), format_table(*score_rows(report, lang)), "",
                  t("exam.run.splits_title", lang), format_table(*split_rows(report, lang)), ""]
        headers = [t("exam.run.group", lang), t("exam.run.count", lang), t("exam.run.base", lang), t("exam.run.tuned", lang)]
        lines += [t("exam.run.sections_title", lang), format_table(headers, section_rows(report, lang))]
        lines += [f"- {note}" for note in report_notes(report, lang)]
    else:
        headers = [t("exam.run.group", lang), t("exam.run.count", lang), t("exam.run.base", lang), t("exam.run.tuned", lang)]
        lines.append(format_table(headers, report_rows(report, lang)))
    seconds = {variant: f"{result.seconds:.1f}" for variant, result in report.results.items()}
    lines += ["", t("exam.run.seconds", lang, base=seconds.get("base", "-"), tuned=seconds.get("tuned", "-"))]
    forgetting = forgetting_lines(report.forgetting, lang)
    if forgetting:
        lines += ["", t("exam.forget.title", lang)] + forgetting
    return "\n".join(lines)


def progress_line(update: dict, lang: str | None = None) -> str:
    phase = update.get("phase")
    if phase == "load":
        return t("exam.run.phase.load", lang)
    if phase == "questions":
        return t("exam.run.phase.questions", lang, model=t(f"exam.run.{update.get('model', 'tuned')}", lang),
                 condition=t(f"exam.condition.{update.get('condition', 'closed')}", lang), done=update["done"], total=update["total"])
    if phase == "forgetting":
        return t("exam.run.phase.forgetting", lang)
    return ""


def cmd_exam_run(args) -> int:
    from train.exam import ExamOptions, resolve_exam, run_exam
    from train.exam_reports import exam_report_path, report_json

    exam = resolve_exam(args.exam)
    options = ExamOptions(normalise=args.normalise, judge_provider=args.judge, max_new_tokens=args.max_new_tokens,
                          drop_leaked=args.drop_leaked, forgetting=not args.no_forgetting, margin=args.margin,
                          list_options=not args.no_list_options, conditions=args.conditions, python=args.python,
                          run_code=not args.no_run_code).checked()
    last = {"line": ""}

    def show(update: dict) -> None:
        line = progress_line(update)
        if line and line != last["line"] and (update.get("phase") != "questions" or update["done"] in (update["total"], 0)
                                              or update["done"] % max(1, update["total"] // 10) == 0):
            print(line, file=sys.stderr)
            last["line"] = line

    report = run_exam(exam, args.run, base_only=args.base, batch_size=args.batch_size, seed=args.seed, progress=show,
                      **options.run_kwargs())
    if args.json:
        print(report_json(report))
        return 0
    print(format_report(report))
    print()
    print(t("exam.run.saved", path=exam_report_path(args.run, report.exam, report.number)))
    return 0


def add_exam_run(actions) -> None:
    """Add `run` to the `exam` subcommands."""
    parser = actions.add_parser("run", help="score an exam on a run: base (adapter off) and tuned (adapter on); saved with the run")
    parser.add_argument("exam", help="exam name (see `exam list`) or the path of an exam JSON file")
    parser.add_argument("--run", required=True, help="training run whose base model and adapter are scored")
    parser.add_argument("--base", action="store_true",
                        help="score the base model only (adapter off; the run need not have finished training)")
    parser.add_argument("--normalise", default="mean", choices=("mean", "sum"),
                        help="multiple-choice score of an option: mean log-probability per token (default; fair to options "
                             "of different lengths) or the sum")
    parser.add_argument("--no-list-options", action="store_true",
                        help="do not list the options in the question prompt (each option is still scored as the answer)")
    parser.add_argument("--judge", metavar="PROVIDER", default=None, help="provider that judges short answers and code tasks (optional)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="tokens per short answer (code tasks get at least 256)")
    parser.add_argument("--batch-size", type=int, default=8, help="questions per forward pass (default: 8)")
    parser.add_argument("--drop-leaked", action="store_true", help="leave out the questions flagged as leaked into the training data")
    parser.add_argument("--no-forgetting", action="store_true", help="skip the general-text perplexity (forgetting guard)")
    parser.add_argument("--margin", type=float, default=None,
                        help="warn when the tuned model's general perplexity rises by more than this fraction (default: 0.1)")
    parser.add_argument("--conditions", default="closed,blind,open",
                        help="what to score besides the questions as written: blind (question removed: what the options "
                             "give away) and open (the source slice in the prompt: the open-book ceiling); default all")
    parser.add_argument("--python", default=None, metavar="PATH",
                        help="an interpreter that has the library installed, to run code answers (default: the doc set's "
                             ".package folder when it has one)")
    parser.add_argument("--no-run-code", action="store_true", help="do not run code answers (they are still parsed and checked)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals (default 0)")
    parser.add_argument("--json", action="store_true", help="print the whole report (with its analysis) as JSON")
    parser.set_defaults(func=cmd_exam_run)
