"""Headless commands: `make-tiny-model`, `train`, `export`, `eval`. Registrars for main.COMMAND_REGISTRARS.

Importing this module must not import torch: the parser is built at every start of the app.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from frontend.cli.running import changed_lines, ended_badly, follow_model_job
from schema.run_state import FINISHED_STATES, RunState
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import validate_name
from train.config import ALWAYS_LOGGED, TrainConfig
from train.tiny_model import DEFAULT_TINY_NAME

# Flags that are spelled differently from the TrainConfig field (or positional/required).
_FLAG_NAMES = {"grad_accum": "--grad-accum", "eval_ratio": "--eval-ratio", "dataset_version": "--version"}
_SPECIAL = {"model", "dataset"}


# ---------------------------------------------------------------- train


def format_progress(record: dict) -> str:
    """One human line for a log record (CLI output)."""
    head = f"step {record['step']}/{record['total_steps']} ({record.get('percent', 0):.0f}%)"
    if "loss" in record:
        parts = [head, f"loss {record['loss']:.4f}"]
        if record.get("reward_margin") is not None:  # dpo / orpo / kto (train.preference.REWARD_FIELDS)
            parts.append(f"margin {record['reward_margin']:+.4f}")
        if record.get("reward_accuracy") is not None:
            parts.append(f"acc {record['reward_accuracy']:.0%}")
        if record.get("learning_rate") is not None:
            parts.append(f"lr {record['learning_rate']:.2e}")
        if record.get("tokens_per_s") is not None:
            parts.append(f"{record['tokens_per_s']:.0f} tok/s")
        if record.get("eta_s") is not None:
            parts.append(f"ETA {record['eta_s']:.0f}s")
        return "  ".join(parts)
    if "eval_loss" in record:
        line = f"{head}  eval_loss {record['eval_loss']:.4f}  perplexity {record.get('eval_perplexity') or float('nan'):.2f}"
        if record.get("eval_reward_margin") is not None:
            line += f"  eval margin {record['eval_reward_margin']:+.4f}"
        return line
    return f"{head}  done: train_loss {record.get('train_loss') or float('nan'):.4f} in {record.get('train_runtime', 0):.1f}s"


# ---------------------------------------------------------------- make-tiny-model


def cmd_make_tiny_model(args) -> int:
    import global_var
    from train.tiny_model import build_tiny_model  # looked up per call: tests replace it on train.tiny_model

    out = global_var.workdir().child("models", args.name, what="model")
    build_tiny_model(out, seed=args.seed)
    print(t("models.tiny_built", path=out))
    return 0


def register_make_tiny_model(subparsers) -> None:
    parser = subparsers.add_parser("make-tiny-model", help="build a tiny offline Qwen2-architecture model for tests and demos")
    parser.add_argument("name", nargs="?", default=DEFAULT_TINY_NAME, help=f"folder name under workdir/models (default: {DEFAULT_TINY_NAME})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.set_defaults(func=cmd_make_tiny_model)


# ---------------------------------------------------------------- train


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def config_from_args(args) -> TrainConfig:
    """A TrainConfig from parsed flags; flags left out keep the dataclass defaults."""
    values = {}
    for spec in fields(TrainConfig):
        value = getattr(args, spec.name, None)
        if value is not None:
            values[spec.name] = value
    return TrainConfig(**values)


def version_notice(dataset: str, version: int) -> str:
    """Which dataset version a run trains on, and the latest one when the dataset changed since."""
    import global_var

    store = global_var.datasets()
    if not version:
        return t("versions.train_uses_unknown", name=dataset)
    if not store.exists(dataset):
        return t("versions.train_uses_saved", name=dataset, version=version)
    latest = store.latest_version(dataset)
    key = "versions.train_uses" if latest != version else "versions.train_uses_latest"
    return t(key, name=dataset, version=version, latest=latest)


def cmd_train(args) -> int:
    from train.launcher import plan_training, resume_training, start_training
    from train.runs import CONFIG_FILE, read_json, require_run

    def show(record: dict) -> None:
        print(format_progress(record), flush=True)

    seeds = 1 if args.seeds is None else args.seeds
    if seeds < 1:
        raise UserError("error.examgen_seeds_count", value=seeds)
    if seeds > 1 and args.resume:
        raise UserError("error.examgen_seeds_resume")
    if seeds > 1 and args.detach:
        raise UserError("error.examgen_seeds_detach")
    follow = None if args.detach else show
    if args.resume:
        saved = TrainConfig.from_dict(read_json(require_run(args.resume) / CONFIG_FILE))
        print(version_notice(saved.dataset, saved.dataset_version), flush=True)
        job = resume_training(args.resume, on_progress=follow)
    else:
        if not args.model or not (args.dataset or args.stage == "cpt"):
            raise SystemExit("train: --model and --dataset (--docs for --stage cpt) are required (or --resume RUN)")
        config = config_from_args(args)
        print(t("train.plan", **plan_training(config)), flush=True)
        if config.dataset:
            print(version_notice(config.dataset, config.dataset_version), flush=True)
        if seeds > 1:
            return train_series(config, seeds, follow)
        job = start_training(config, on_progress=follow)
    print(t("train.run_folder", path=job.run_dir), flush=True)
    if args.detach:
        # The worker runs in its own session: it goes on after this command, and the page follows it.
        print(t("train.detached", run=job.run_name), flush=True)
        return 0
    interrupted = _follow_to_the_end(job)
    if interrupted:
        return interrupted
    job.raise_if_failed()
    _print_outcome(job)
    return 0


def _follow_to_the_end(job) -> int | None:
    """Wait for the run; the first Ctrl-C stops it cleanly after this optimizer step (a checkpoint is saved),
    the second one leaves the worker running on its own (returns 130)."""
    try:
        job.wait()
    except KeyboardInterrupt:
        job.request_stop()
        print(t("train.stop_requested"), flush=True)
        try:
            job.wait()
        except KeyboardInterrupt:
            print(t("train.detached", run=job.run_name), flush=True)
            return 130
    return None


def _print_outcome(job) -> None:
    from train.runs import CONFIG_FILE, read_json

    status = job.status()
    if status.get("early_stopped"):
        config = TrainConfig.from_dict(read_json(job.run_dir / CONFIG_FILE))
        print(t("train.early_stopped", patience=config.early_stopping_patience, best=status.get("best_checkpoint")), flush=True)
    print(t("train.finished", state=status.get("state"), step=status.get("step", 0), total_steps=status.get("total_steps", 0)), flush=True)
    print(t("train.run_folder", path=job.run_dir), flush=True)


def series_names(config: TrainConfig, seeds: int) -> tuple[str, list[tuple[int, str]]]:
    """The group name (--run-name, else '<dataset>-<stamp>') and its runs' (seed, name): '<group>-s<seed>' for
    seeds --seed, --seed+1, ...; UserError when the group or one of the names is taken."""
    from datetime import datetime

    from train.compare import group_runs
    from train.runs import run_dir

    def members(group: str) -> list[tuple[int, str]]:
        return [(seed, validate_name(f"{group}-s{seed}", "run name")) for seed in range(config.seed, config.seed + seeds)]

    def taken(group: str) -> list[str]:
        try:
            return group_runs(group)
        except UserError:  # no run of that group yet
            return []

    if config.run_name:
        group = validate_name(config.run_name, "run name")
        if taken(group):
            raise UserError("error.examgen_group_exists", group=group, runs=", ".join(taken(group)))
        for _seed, name in members(group):
            if run_dir(name).exists():
                raise UserError("error.already_exists", what="run", name=name)
        return group, members(group)
    base = validate_name(f"{config.dataset or config.docs}-{datetime.now().strftime('%Y%m%d-%H%M%S')}", "run name")
    group, counter = base, 1
    while taken(group) or any(run_dir(name).exists() for _seed, name in members(group)):
        counter += 1
        group = f"{base}-{counter}"
    return group, members(group)


def train_series(config: TrainConfig, seeds: int, follow=None, start=None) -> int:
    """Train `config` `seeds` times, one run after the other, with seeds --seed, --seed+1, ... as one group;
    a run that does not finish stops the series (the finished runs are kept). `start` is
    train.launcher.start_training (a test hands in its own)."""
    from dataclasses import replace

    if start is None:
        from train.launcher import start_training as start
    group, members = series_names(config, seeds)
    seed_list = [seed for seed, _name in members]
    done: list[str] = []
    for index, (seed, name) in enumerate(members, 1):
        print(t("examgen.seeds_start", group=group, index=index, count=len(members), run=name, seed=seed), flush=True)
        try:
            job = start(replace(config, seed=seed, run_name=name), on_progress=follow, group=group, group_seeds=seed_list)
        except UserError as error:
            print(t("examgen.seeds_stopped", run=name, seed=seed, state=t("examgen.seeds_not_started"),
                    detail=f": {error}", done=", ".join(done) or "-"), file=sys.stderr, flush=True)
            _print_compare_hint(group, done)
            return 1
        print(t("train.run_folder", path=job.run_dir), flush=True)
        interrupted = _follow_to_the_end(job)
        status = job.status()
        state = status.get("state")
        if interrupted or state not in FINISHED_STATES:
            detail = f": {status.get('error')}" if state == RunState.FAILED and status.get("error") else ""
            print(t("examgen.seeds_stopped", run=name, seed=seed, state=state, detail=detail, done=", ".join(done) or "-"),
                  file=sys.stderr, flush=True)
            _print_compare_hint(group, done)
            return interrupted or 1
        _print_outcome(job)
        done.append(name)
    print(t("examgen.seeds_done", group=group, count=len(done), runs=", ".join(done)), flush=True)
    _print_compare_hint(group, done)
    return 0


def _print_compare_hint(group: str, runs: list[str]) -> None:
    if len(runs) > 1:
        print(t("examgen.seeds_compare_hint", runs=" ".join(runs), group=group), flush=True)


def register_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a model with LoRA on a dataset in a worker process (prints progress and the run folder; "
             "--nproc N trains with N processes through torchrun); `train sweep ...` is the `sweep` command",
    )
    parser.add_argument("--model", help=TrainConfig.field_help()["model"]["help"])
    parser.add_argument("--dataset", help=TrainConfig.field_help()["dataset"]["help"])
    parser.add_argument("--resume", metavar="RUN", help="continue RUN from its latest checkpoint (other flags are ignored)")
    parser.add_argument("--detach", action="store_true",
                        help="start the run's worker and return at once; follow it in the page (Fine-tuning tab)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="train the same configuration N times, one run after the other, with seeds --seed, --seed+1, "
                             "...: runs '<run-name>-s<seed>' recorded as one group (compare with `runs compare --group`) "
                             "(default: 1)")
    length = parser.add_mutually_exclusive_group()
    for name, spec in TrainConfig.field_help().items():
        if name in _SPECIAL:
            continue
        kwargs = {"dest": name, "default": None, "help": f"{spec['help']} (default: {spec['default']!r})"}
        if spec["type"] == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = {"int": int, "float": float}.get(spec["type"], str)
            if spec.get("choices"):
                # --report-to tensorboard (or none) as transformers users write it: the default, TensorBoard only
                kwargs["choices"] = (*spec["choices"], *ALWAYS_LOGGED) if name == "report_to" else spec["choices"]
        target = length if name in ("epochs", "max_steps") else parser
        target.add_argument(_flag(name), **kwargs)
    parser.set_defaults(func=cmd_train)


# ---------------------------------------------------------------- export


def cmd_export(args) -> int:
    from train.export import export_run
    from train.launcher import attach_running_runs

    attach_running_runs()  # a worker of the page or another terminal holds the device too
    # The GGUF tools' output lines go to stderr as progress; the result line to stdout.
    result = export_run(args.run, args.format, args.out, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(t("models.exported", format=result["format"], path=result["path"]))
    if result.get("warning"):  # e.g. a chat template the Modelfile could not translate
        print(t(result["warning"]), file=sys.stderr)
    return 0


def register_export(subparsers) -> None:
    from train.export import FORMATS

    parser = subparsers.add_parser("export", help="export a training run (LoRA adapter, merged model, GGUF)")
    parser.add_argument("--run", required=True, help="run name under workdir/training")
    parser.add_argument("--format", required=True, choices=FORMATS, help="lora and merged_16bit everywhere; gguf_f16, gguf_q8_0 and gguf_lora after `make gguf-tools`, gguf_q4_k_m also "
                        "after `make gguf-quantize`; merged_4bit and gguf_unsloth_* need CUDA + Unsloth")
    parser.add_argument("--out", help="output folder (default: workdir/models/<run>-<format>)")
    parser.set_defaults(func=cmd_export)


# ---------------------------------------------------------------- eval


def cmd_eval(args) -> int:
    from train.evaluation import check_evaluable, progress_text, start_evaluation, summary_text
    from train.launcher import attach_running_runs

    attach_running_runs()  # a worker of the page or another terminal holds the device too
    _folder, _config, items = check_evaluable(args.run)
    count = min(len(items), args.max_items) if args.max_items else len(items)
    print(t("eval.cli_started", run=args.run, items=count), flush=True)
    job = start_evaluation(args.run, args.max_items, args.judge, args.max_new_tokens, on_progress=changed_lines(progress_text))
    follow_model_job(job)
    problem = ended_badly(job)
    if problem:
        print(problem, flush=True)
        return 1
    print(summary_text(job.report), flush=True)
    print(t("eval.cli_report", json=job.report["paths"]["json"], md=job.report["paths"]["md"]), flush=True)
    return 0


def register_eval(subparsers) -> None:
    from train.eval_defaults import DEFAULT_MAX_NEW_TOKENS

    parser = subparsers.add_parser(
        "eval",
        help="evaluate a finished run on its held-out items: base vs tuned eval loss, perplexity, ROUGE-L, exact match, optional LLM judge",
    )
    parser.add_argument("run", help="run name under workdir/training")
    parser.add_argument("--max-items", type=int, default=None, help="evaluate at most N held-out items (default: all)")
    parser.add_argument("--judge", metavar="PROVIDER", default=None, help="score the answers 0-10 with this configured provider (default: no judge)")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS,
                        help=f"greedy answer length limit (default: {DEFAULT_MAX_NEW_TOKENS})")
    parser.set_defaults(func=cmd_eval)
