"""`python main.py datasets score NAME ...`: the LLM judge over a dataset, with progress lines and a summary.

Imports stay light at module level (main.py builds every parser at start); the judge and the openai
client are imported when the command runs.
"""

from __future__ import annotations

from frontend.cli.generate import add_adhoc_provider_args, provider_from_args
from frontend.cli.running import throttled, wait_for_job
from tools.core.i18n import LANGUAGES, t


def cmd_datasets_score(args) -> int:
    import global_var
    from tools.quality.judge import JudgeSettings, judge_progress_line, judge_summary_lines, prepare_judge

    provider = provider_from_args(args, args.judge, "--judge", "error.judge_provider_args")
    settings = JudgeSettings(concurrency=args.concurrency, max_attempts=args.max_attempts)
    if args.backoff is not None:
        settings.backoff_base_s = args.backoff
    prepared = prepare_judge(global_var.workspace(), args.name, provider, args.template, args.judge_lang, settings)
    for key, params in prepared.notes:
        print(t(key, **params))

    from frontend.jobs import start_judge_job

    print_progress = throttled(judge_progress_line)
    announced = []

    def show(progress) -> None:
        if progress.status == "running" and not announced:
            announced.append(True)
            print(t("judge.started", name=prepared.dataset, items=progress.total_items, skipped=progress.skipped_items,
                    model=prepared.provider.model_id, template=prepared.template.name,
                    concurrency=prepared.settings.concurrency), flush=True)
        if progress.pending_items:  # nothing to judge: the summary says so
            print_progress(progress)

    progress = wait_for_job(start_judge_job(prepared, show), "judge.cancelling")
    for line in judge_summary_lines(progress):
        print(line)
    if progress.status == "cancelled":
        return 130
    return 0 if progress.status == "finished" else 1


def add_score_actions(actions) -> None:
    """Add `score` to the `datasets` subcommands."""
    from schema.provider_limits import DEFAULT_CONCURRENCY

    score = actions.add_parser(
        "score", help="score every item with an LLM judge (rubric 1-10); resumable",
        description="Score each item of a dataset with an LLM judge: groundedness in its source slice, correctness, "
                    "relevance, completeness, clarity (1-10, each with a reason) and an overall score. Running it again "
                    "skips the items already scored as they are now, and judges edited and unscored ones.",
    )
    score.add_argument("name", help="dataset name")
    score.add_argument("--judge", metavar="PROVIDER", help="name of a saved API provider to judge with")
    add_adhoc_provider_args(score, "--judge")
    score.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                       help=f"judge calls in flight (default {DEFAULT_CONCURRENCY}; at most the provider's limit)")
    score.add_argument("--template", default=None, help="judge template: judge-default (zh), judge-default-en, or a saved "
                                                        "prompt template holding {question} and {answer} (default: by --lang)")
    score.add_argument("--lang", dest="judge_lang", choices=LANGUAGES, default=None,
                       help="language of the default template and of the reasons (default: the global --lang)")
    score.add_argument("--max-attempts", type=int, default=5, help="attempts per call on rate limits, 5xx, timeouts (default 5)")
    score.add_argument("--backoff", type=float, default=None, help="first retry delay in seconds (default 1; doubles per attempt)")
    score.set_defaults(func=cmd_datasets_score)
