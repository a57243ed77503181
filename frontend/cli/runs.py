"""`python main.py runs compare [RUN ...] [--group NAME] [--same-scoring] [--format md|csv] [--curves step|epoch]`:
training runs side by side.

The comparison itself is train.compare (library code returns data); this module only prints it.
"""

from __future__ import annotations

from schema.run_state import RunState
from tools.core.i18n import t
from tools.core.workdir import SHARED_FILE_MODE, atomic_write_text


def cmd_runs_compare(args) -> int:
    # Imported when the command runs: main.py builds every parser at start.
    from train.compare import format_comparison, group_runs, loss_curves, to_csv

    runs = list(args.runs)
    if args.group:  # the group's runs after those named (a run named and in the group is shown once)
        runs += [run for run in group_runs(args.group) if run not in runs]
    board = ""
    if args.sweep:  # the sweep's leaderboard first, then its trials' runs, best first, side by side
        from train.compare import to_markdown
        from train.sweep import Sweep, leaderboard, leaderboard_rows

        sweep = Sweep.load(args.sweep)
        headers, rows = leaderboard_rows(sweep)
        board = (to_csv(headers, rows) if args.format == "csv" else
                 f"### {t('sweep.leaderboard', name=sweep.name)}\n\n{to_markdown(headers, rows)}\n"
                 f"{t('sweep.score_note', weight=sweep.forgetting_weight)}\n\n")
        runs += [trial.run for trial in leaderboard(sweep) if trial.run and trial.run not in runs]
    text = board + format_comparison(runs, args.format, same_scoring=args.same_scoring)
    if args.curves:
        rows = loss_curves(runs, args.curves)
        curves = to_csv(["run", args.curves, "series", "value"], [[r["run"], f"{r['x']:g}", r["series"], f"{r['value']:.6g}"] for r in rows])
        text += ("\n" if args.format == "csv" else f"\n### {t('examgen.curves_title', x=args.curves)}\n\n```csv\n") + curves
        if args.format != "csv":
            text += "```\n"
    if args.output:
        from pathlib import Path

        atomic_write_text(Path(args.output).expanduser(), text, mode=SHARED_FILE_MODE)
        print(t("examgen.compare_saved", path=args.output))
        return 0
    print(text, end="")
    return 0


def confirmed(question: str, yes: bool) -> bool:
    """--yes, or "y" typed at the terminal; without a terminal and --yes nothing is deleted."""
    import sys

    if yes:
        return True
    if not sys.stdin.isatty():
        print(t("cli.delete_needs_yes"))
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes", "是")


def cmd_runs_delete(args) -> int:
    from train.runs import delete_run, require_run, settled_status

    state = settled_status(require_run(args.run)).get("state", RunState.UNKNOWN)
    if not confirmed(t("cli.delete_run_ask", run=args.run, state=state), args.yes):
        return 1
    delete_run(args.run)
    print(t("runs.run_deleted", run=args.run))
    return 0


def register_runs(subparsers) -> None:
    runs = subparsers.add_parser("runs", help="compare or delete training runs")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    compare = actions.add_parser(
        "compare", help="runs side by side: dataset and version, hyper-parameters, duration, eval loss, exam scores, forgetting",
        description="Compare training runs. Each exam cell is the run's latest report of that exam and says how it was "
                    "scored; cells scored unlike the others are marked ≠ and named under the table. Runs trained with "
                    "`train --seeds N` get a group row (mean ± sd, min–max). Markdown adds each exam per kind and section.")
    compare.add_argument("runs", nargs="*", metavar="RUN", help="run names (folders under workdir/training)")
    compare.add_argument("--group", metavar="NAME", default=None,
                         help="compare every run of this group (the runs of one `train --seeds N`)")
    compare.add_argument("--sweep", metavar="NAME", default=None,
                         help="a sweep's leaderboard (`sweep run`), then its trials' runs side by side")
    compare.add_argument("--same-scoring", action="store_true",
                         help="refuse when an exam was scored in different ways on the runs, instead of marking the cells")
    compare.add_argument("--format", choices=("md", "csv"), default="md", help="output format (default md)")
    compare.add_argument("--curves", choices=("step", "epoch"), default=None,
                         help="also print the loss curves (train and eval loss) against step or epoch")
    compare.add_argument("--output", default=None, help="write to this file instead of printing")
    compare.set_defaults(func=cmd_runs_compare)

    delete = actions.add_parser("delete", help="delete a run with its checkpoints, adapter, logs and exam scores (asks first)")
    delete.add_argument("run", help="run name (a folder under workdir/training)")
    delete.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    delete.set_defaults(func=cmd_runs_delete)
