"""`python main.py runs compare RUN [RUN ...] [--format md|csv] [--curves step|epoch]`: training runs side by side.

The comparison itself is train.compare (library code returns data); this module only prints it.
"""

from __future__ import annotations

from tools.core.i18n import t


def cmd_runs_compare(args) -> int:
    from train.compare import format_comparison, loss_curves, to_csv

    text = format_comparison(args.runs, args.format)
    if args.curves:
        rows = loss_curves(args.runs, args.curves)
        curves = to_csv(["run", args.curves, "series", "value"], [[r["run"], f"{r['x']:g}", r["series"], f"{r['value']:.6g}"] for r in rows])
        text += ("\n" if args.format == "csv" else f"\n### {t('examgen.curves_title', x=args.curves)}\n\n```csv\n") + curves
        if args.format != "csv":
            text += "```\n"
    if args.output:
        from pathlib import Path

        from tools.core.workdir import SHARED_FILE_MODE, atomic_write_text

        atomic_write_text(Path(args.output).expanduser(), text, mode=SHARED_FILE_MODE)
        print(t("examgen.compare_saved", path=args.output))
        return 0
    print(text, end="")
    return 0


def register_runs(subparsers) -> None:
    runs = subparsers.add_parser("runs", help="compare training runs")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    compare = actions.add_parser(
        "compare", help="runs side by side: dataset and version, hyper-parameters, duration, eval loss, exam scores, forgetting",
        description="Compare training runs. Markdown adds each exam per kind and section, base and tuned per run.")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run names (folders under workdir/training)")
    compare.add_argument("--format", choices=("md", "csv"), default="md", help="output format (default md)")
    compare.add_argument("--curves", choices=("step", "epoch"), default=None,
                         help="also print the loss curves (train and eval loss) against step or epoch")
    compare.add_argument("--output", default=None, help="write to this file instead of printing")
    compare.set_defaults(func=cmd_runs_compare)
