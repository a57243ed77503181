"""`python main.py sweep run|resume|show|list`: a sweep of training settings scored by an exam (train/sweep.py).

Imports stay light at module level (main.py builds every parser at start).
"""

from __future__ import annotations

from frontend.cli.running import changed_lines, ended_badly, follow_model_job
from schema.run_state import JobState
from tools.core.errors import UserError
from tools.core.i18n import t


def base_config(args):
    """The settings every trial shares: --model, --dataset and each --set field=value (cast by TrainConfig)."""
    from train.config import TrainConfig

    specs = TrainConfig.field_help()
    values: dict = {"model": args.model, "dataset": args.dataset or ""}
    for pair in args.set or []:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in specs:
            raise UserError("error.sweep_set_format", value=pair)
        kind = specs[name]["type"]
        try:
            values[name] = (value.strip().lower() in ("1", "true", "yes") if kind == "bool" else
                            {"int": int, "float": float}.get(kind, str)(value.strip()))
        except ValueError:
            raise UserError("error.not_a_number", field=name, value=value) from None
    return TrainConfig(**values)


def progress_line(update: dict, lang: str | None = None) -> str:
    phase = update.get("phase")
    if phase == "train":
        params = ", ".join(f"{k}={v}" for k, v in update["params"].items())
        return t("sweep.phase.train_gpu" if "gpu" in update else "sweep.phase.train", lang, trial=update["trial"],
                 trials=update["trials"], rung=update["rung"] + 1, steps=update["steps"], params=params, gpu=update.get("gpu"))
    if phase == "score":
        return t("sweep.phase.score", lang, trial=update["trial"], trials=update["trials"], run=update["run"])
    if phase == "done":
        return t("sweep.phase.done", lang, best=update.get("best") or "—")
    return ""


def _follow(name: str) -> int:
    from train.compare import to_markdown
    from train.launcher import attach_running_runs
    from train.sweep import leaderboard_rows, start_sweep

    attach_running_runs()
    job = start_sweep(name, on_progress=changed_lines(progress_line))
    follow_model_job(job)
    if job.state == JobState.STOPPED:
        print(t("sweep.stopped", name=name), flush=True)
        return 130
    problem = ended_badly(job)
    if problem:
        print(problem, flush=True)
        return 1
    headers, rows = leaderboard_rows(job.sweep)
    print(to_markdown(headers, rows))
    print(t("sweep.score_note", weight=job.sweep.forgetting_weight))
    return 0


def cmd_sweep_run(args) -> int:
    from train.sweep import new_sweep, parse_space

    rungs = [int(part) for part in args.rungs.split(",") if part.strip()] if args.rungs else []
    sweep = new_sweep(args.name, base_config(args), parse_space(args.space or []), args.exam, rungs, args.eta,
                      args.forgetting_weight, args.max_trials, args.seed, gpus=args.gpus)
    print(t("sweep.created", name=sweep.name, trials=len(sweep.trials), rungs=",".join(map(str, sweep.rungs)), eta=sweep.eta), flush=True)
    return _follow(sweep.name)


def cmd_sweep_resume(args) -> int:
    return _follow(args.name)


def cmd_sweep_show(args) -> int:
    from train.compare import to_csv, to_markdown
    from train.sweep import Sweep, leaderboard_rows

    sweep = Sweep.load(args.name)
    headers, rows = leaderboard_rows(sweep)
    print(to_csv(headers, rows) if args.format == "csv" else to_markdown(headers, rows), end="" if args.format == "csv" else "\n")
    if args.format != "csv":
        print(t("sweep.score_note", weight=sweep.forgetting_weight))
    return 0


def cmd_sweep_list(args) -> int:
    from train.sweep import Sweep, list_sweeps

    for name in list_sweeps():
        sweep = Sweep.load(name)
        print(f"{name}\t{sweep.state}\t{len(sweep.trials)} trials\tbest: {sweep.best or '—'}")
    return 0


def register_sweep(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="a sweep of training settings, each trial scored by an exam (successive halving)",
        description="Train trials that differ in the --space settings, score each on --exam (the tuned model on the "
                    "questions the training data does not hold word for word, less a forgetting penalty), keep the best "
                    "1/--eta after each rung and train them on to the next. A stopped or killed sweep resumes with "
                    "`sweep resume NAME`; `runs compare --sweep NAME` puts the leaderboard beside the runs.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="create a sweep and run it")
    run.add_argument("name", help="sweep name (also the prefix of its trials' runs)")
    run.add_argument("--exam", required=True, help="the exam that scores each trial (a name in the exam store, or a file)")
    run.add_argument("--model", required=True, help="base model of every trial")
    run.add_argument("--dataset", default="", help="dataset of every trial (not for --set stage=cpt)")
    run.add_argument("--space", action="append", metavar="FIELD=V1,V2",
                     help="a setting to vary and its values, e.g. learning_rate=1e-4,2e-4; repeat for each")
    run.add_argument("--set", action="append", metavar="FIELD=VALUE", help="a setting every trial shares; repeat for each")
    run.add_argument("--rungs", required=True, help="optimizer-step budgets of the rungs, e.g. 20,40,80")
    run.add_argument("--eta", type=int, default=2, help="keep the best 1/ETA of the trials after each rung (default 2)")
    run.add_argument("--forgetting-weight", type=float, default=0.5,
                     help="objective = score - WEIGHT x forgetting rise (default 0.5)")
    run.add_argument("--max-trials", type=int, default=None, help="draw at most N of the grid's combinations (seeded)")
    run.add_argument("--seed", type=int, default=0, help="seed of the draw and the intervals (default 0)")
    run.add_argument("--gpus", default="", metavar="0,1,...",
                     help="train one trial per GPU at a time on these CUDA devices (each trial one process); a rung's "
                          "trials are scored after they have all trained (default: one trial after another)")
    run.set_defaults(func=cmd_sweep_run)
    resume = actions.add_parser("resume", help="continue a stopped or killed sweep where it stopped")
    resume.add_argument("name")
    resume.set_defaults(func=cmd_sweep_resume)
    show = actions.add_parser("show", help="a sweep's leaderboard")
    show.add_argument("name")
    show.add_argument("--format", choices=("md", "csv"), default="md")
    show.set_defaults(func=cmd_sweep_show)
    actions.add_parser("list", help="the sweeps of this work directory").set_defaults(func=cmd_sweep_list)
