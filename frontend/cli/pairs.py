"""`python main.py pairs`: doc-grounded preference pairs from a dataset and a model's own wrong answers
(train/pairs.py), the data of a dpo, orpo or kto run.

Imports stay light at module level and in the registrar (its defaults come from train.pair_defaults).
"""

from __future__ import annotations

from frontend.cli.running import changed_lines, ended_badly, follow_model_job
from tools.core.i18n import t


def progress_line(update: dict, lang: str | None = None) -> str:
    phase = update.get("phase")
    if phase in ("load", "done"):
        return t(f"pairs.phase.{phase}", lang)
    if phase in ("answers", "judge"):
        return t(f"pairs.phase.{phase}", lang, done=update["done"], total=update["total"])
    return ""


def result_line(result: dict, lang: str | None = None) -> str:
    stats = result["stats"]
    reasons = stats["rejected_for"]
    return t("pairs.result", lang, dataset=result["dataset"], pairs=stats["pairs"], items=stats["items"],
             right=stats["already_right"], ungrounded=stats["chosen_not_grounded"], empty=reasons["empty"],
             invented=reasons["invented_names"], differs=reasons["differs"], seconds=result["seconds"])


def cmd_pairs(args) -> int:
    from train.launcher import attach_running_runs
    from train.pairs import PairsRequest, start_pair_building

    attach_running_runs()  # a worker of the page or another terminal holds the device too
    request = PairsRequest(source=args.source, name=args.name, run=args.run or "", model=args.model or "",
                           samples=args.samples, temperature=args.temperature, max_items=args.max_items,
                           max_new_tokens=args.max_new_tokens, judge_provider=args.judge or "", seed=args.seed)
    job = start_pair_building(request, on_progress=changed_lines(progress_line))
    follow_model_job(job)
    problem = ended_badly(job)
    if problem:
        print(problem, flush=True)
        return 1
    print(result_line(job.result), flush=True)
    return 0


def register_pairs(subparsers) -> None:
    from train.pair_defaults import DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLES, DEFAULT_TEMPERATURE, MAX_SAMPLES

    parser = subparsers.add_parser(
        "pairs", help="build a preference dataset: a model's own wrong answers to a dataset's questions, rejected against "
                      "the dataset's grounded answers (the data of train --stage dpo|orpo|kto)",
        description="Answer the training questions of --from with a run's tuned model (--run) or a base model (--model): "
                    "greedily and --samples - 1 more times at --temperature. An answer that is empty, names identifiers "
                    "the doc set never mentions, or is far from the dataset's answer (ROUGE-L below 0.5; with --judge, only "
                    "when the judge also scores it below 5) is wrong; the worst wrong answer of each question becomes its "
                    "rejected answer, the dataset's answer the chosen one. Questions the model already answers right get no pair.")
    parser.add_argument("--from", dest="source", required=True, help="dataset whose training items are asked")
    parser.add_argument("--name", required=True, help="the preference dataset to create")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--run", help="a finished run: its tuned model answers")
    who.add_argument("--model", help="a base model (a folder under workdir/models, a path or a hub id) answers")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                        help=f"answers per question: one greedy, the rest sampled (1..{MAX_SAMPLES}; default {DEFAULT_SAMPLES})")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, help=f"sampling temperature (default {DEFAULT_TEMPERATURE})")
    parser.add_argument("--max-items", type=int, default=None, help="ask at most N questions (default: all)")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS,
                        help=f"answer length limit in tokens (default {DEFAULT_MAX_NEW_TOKENS})")
    parser.add_argument("--judge", metavar="PROVIDER", default=None,
                        help="a saved provider that judges answers far from the reference, shown the source slice")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.set_defaults(func=cmd_pairs)
