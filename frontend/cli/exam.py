"""`python main.py exam ...`: create exams from a doc set, list and show them, check them for leakage into a
training dataset, find a run's weak sections and generate more data for them. `exam run` (scoring) comes
from frontend/cli/exam_run.py.

Imports stay light at module level (main.py builds every parser at start).
"""

from __future__ import annotations

from frontend.cli.exam_run import format_table
from frontend.cli.generate import add_adhoc_provider_args, parse_variables, print_summary, progress_line, provider_from_args
from frontend.cli.running import throttled, wait_for_job
from frontend.cli.runs import confirmed
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.docs.slicing import DEFAULT_MAX_TOKENS


def _provider_from_args(args):
    return provider_from_args(args, args.provider, "--provider", "error.examgen_provider_args")


def _printer():
    return throttled(lambda progress: progress_line(progress, what="questions"))


def cmd_exam_create(args) -> int:
    import global_var
    from frontend.jobs import start_exam_creation_job
    from tools.generation.exams import ExamSettings, prepare_exam

    settings = ExamSettings(per_slice=args.per_slice, concurrency=args.concurrency, temperature=args.temperature,
                            max_tokens=args.max_tokens, max_slice_tokens=args.max_slice_tokens, max_attempts=args.max_attempts)
    if args.backoff is not None:
        settings.backoff_base_s = args.backoff
    slices = [part for value in (args.slices or []) for part in value.split(",")]
    prepared = prepare_exam(global_var.workspace(), args.name, args.docs, _provider_from_args(args), args.kinds, settings,
                            slices or None, args.question_lang, restart=args.restart, control_sections=args.control_section)
    for key, params in prepared.notes:
        print(t(key, **params))
    print(t("examgen.started", name=prepared.name, units=len(prepared.units), slices=len(prepared.slices),
            kinds=", ".join(prepared.kinds), language=prepared.lang), flush=True)
    job = start_exam_creation_job(prepared, _printer())
    progress, exam = wait_for_job(job, "examgen.cancelling"), job.exam
    print(t("examgen.summary", status=progress.status, done=progress.done_units, failed=progress.failed_units,
            skipped=progress.skipped_units, questions=progress.items, duplicates=progress.duplicates,
            retries=progress.retries, tokens_in=progress.tokens_in, tokens_out=progress.tokens_out,
            seconds=f"{progress.elapsed_s:.1f}"))
    if progress.message:
        print(progress.message)
    for failure in progress.recent_failures[-5:]:
        print(f"  {failure['unit']} ({failure['source']}): {failure['reason']}: {failure['detail']}")
    if exam is not None:
        print(t("examgen.frozen", name=exam.name, version=exam.version, questions=len(exam.questions)))
        return 0
    if progress.status == "cancelled":
        print(t("examgen.resume_hint"))
        return 130
    return 1


def cmd_exam_list(args) -> int:
    import global_var

    store = global_var.workspace().exams
    rows = store.summaries()
    drafts = store.drafts()
    if not rows and not drafts:
        print(t("examgen.none"))
        return 0
    for row in rows:
        kinds = ", ".join(f"{kind} {count}" for kind, count in row["kinds"].items())
        checked = t("examgen.list_checked", dataset=row["leakage_checked"], leaked=row["leaked"]) if row["leakage_checked"] else ""
        print(t("examgen.list_row", name=row["name"], version=row["version"], versions=len(row["versions"]),
                docset=row["docset"], questions=row["questions"], kinds=kinds, language=row["lang"], created=row["created_at"])
              + (f"  {checked}" if checked else ""))
    for name in drafts:
        print(t("examgen.list_draft", name=name))
    return 0


def cmd_exam_show(args) -> int:
    import global_var

    exam = global_var.workspace().exams.load(args.exam, args.version)
    if args.json:
        print(exam.model_dump_json(indent=2))
        return 0
    print(t("examgen.show_title", name=exam.name, version=exam.version, docset=exam.docset, language=exam.lang,
            questions=len(exam.questions), created=exam.created_at))
    for number, question in enumerate(exam.questions, 1):
        flag = t("examgen.show_leaked", similarity=f"{question.leakage.similarity or 0:.2f}",
                 item=question.leakage.item_id or "?") if question.leakage.flagged else ""
        print(f"\n[{number}] ({question.kind}) {question.source.section}{flag}")
        print(f"  {question.question}")
        for index, option in enumerate(question.options):
            mark = "*" if index == question.answer else " "
            print(f"  {mark} {chr(ord('A') + index)}. {option}")
        if not question.options:
            print("  -> " + str(question.answer).replace("\n", "\n     "))
    return 0


def cmd_exam_delete(args) -> int:
    import global_var
    from frontend.jobs import delete_exam

    workspace = global_var.workspace()
    versions = workspace.exams.versions(args.exam)
    if not versions:
        raise UserError("error.not_found", what="exam", name=args.exam)
    if not confirmed(t("cli.delete_exam_ask", exam=args.exam, versions=len(versions)), args.yes):
        return 1
    print(t("runs.exam_deleted", exam=args.exam, versions=delete_exam(workspace, args.exam)))
    return 0


def cmd_exam_check(args) -> int:
    import global_var
    from tools.generation.exam_leakage import check_exam_leakage

    result = check_exam_leakage(global_var.workspace(), args.exam, args.dataset, args.version, drop=args.drop, threshold=args.threshold)
    print(t("examgen.check_result", name=result.exam, version=result.version, dataset=result.dataset,
            checked=result.checked, flagged=len(result.flagged)))
    for entry in result.flagged:
        print(f"  {entry['id']}  {entry['similarity']:.2f}  {entry['question']}")
        print(f"    ~ {entry['item_id']}: {entry['item_question']}")
    if result.new_version is not None:
        print(t("examgen.check_dropped", name=result.exam, version=result.new_version, dropped=len(result.flagged)))
    elif result.flagged and not args.drop:
        print(t("examgen.check_drop_hint", name=result.exam, dataset=result.dataset))
    return 0


def cmd_exam_weak(args) -> int:
    from train.weak_sections import (DEFAULT_ALPHA, prepare_weak_generation, validate_alpha, weak_row, weak_section_results,
                                     weak_summary)

    alpha = DEFAULT_ALPHA if args.alpha is None else validate_alpha(args.alpha)
    exam, rows = weak_section_results(args.exam, args.run, alpha)
    headers = [t(key) for key in ("examgen.weak_section", "examgen.weak_questions", "exam.run.base", "exam.run.tuned",
                                  "examgen.weak_used", "examgen.weak_score", "examgen.weak_rest", "examgen.weak_p",
                                  "examgen.weak_train_items", "examgen.weak_flag")]
    print(format_table(headers, [weak_row(row) for row in rows]))
    weak = [row for row in rows if row.weak]
    print()
    print(weak_summary(exam, args.run, rows, alpha))
    if not args.generate:
        if weak:
            print(t("examgen.weak_generate_hint", exam=args.exam, run=args.run, dataset=args.dataset))
        return 0
    if not weak:
        return 0
    from frontend.jobs import start_generation_job
    from tools.generation.engine import GenerationSettings

    settings = GenerationSettings(pairs_per_call=args.pairs, concurrency=args.concurrency)
    prepared = prepare_weak_generation(exam, rows, args.dataset, _provider_from_args(args), args.template,
                                       parse_variables(args.var), settings)
    for key, params in prepared.notes:
        print(t(key, **params))
    print(t("examgen.weak_started", dataset=prepared.dataset, slices=len(prepared.slices), units=len(prepared.units),
            rounds=prepared.settings.rounds), flush=True)
    progress = wait_for_job(start_generation_job(prepared, _printer()), "gcli.cancelling")
    print_summary(progress)
    return 0 if progress.status == "finished" else (130 if progress.status == "cancelled" else 1)


def _add_provider_args(parser, required_hint: str) -> None:
    from schema.provider_limits import DEFAULT_CONCURRENCY

    parser.add_argument("--provider", help=f"name of a saved API provider {required_hint}")
    add_adhoc_provider_args(parser)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help=f"calls in flight (default {DEFAULT_CONCURRENCY}; at most the provider's limit)")


def register_exam(subparsers) -> None:
    exam = subparsers.add_parser("exam", help="exams built from the docs: create, list, show, check for leakage, run, weak sections")
    actions = exam.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create", help="write a new exam version from a doc set through an LLM",
        description="Write exam questions from a document set (one call per slice and kind) and freeze them as the next "
                    "version of the exam. Running the same command again after an interruption resumes it.")
    create.add_argument("--docs", required=True, help="document set (a folder under workdir/docs)")
    create.add_argument("--name", required=True, help="exam name (a folder under workdir/exams)")
    _add_provider_args(create, "(or --base-url and --model)")
    create.add_argument("--kinds", default="mc,tf,short,code",
                        help="question kinds, comma-separated: mc, tf, short, code, tool_call (default: mc,tf,short,code; "
                             "tool_call: a task and the call of a documented function that does it, written from the "
                             "slices that show function signatures)")
    create.add_argument("--per-slice", type=int, default=2, help="questions of each kind per slice (default 2)")
    create.add_argument("--slices", action="append", metavar="ID[,ID...]", help="only these slice ids (see `docs slice`); repeatable")
    create.add_argument("--control-section", action="append", metavar="SECTION",
                        help="hold this document or section out of training data generation as a control ('guide/errors.md' "
                             "or 'guide/errors.md > Errors'); repeatable. Its questions then show what the model knows "
                             "without training on it")
    create.add_argument("--question-lang", choices=("zh", "en"), default=None, help="language of the questions (default: the docs')")
    create.add_argument("--temperature", type=float, default=0.3, help="sampling temperature (default 0.3)")
    create.add_argument("--max-tokens", type=int, default=2048, help="completion token limit per call (default 2048)")
    create.add_argument("--max-slice-tokens", type=int, default=DEFAULT_MAX_TOKENS, help=f"token budget per slice (default {DEFAULT_MAX_TOKENS})")
    create.add_argument("--max-attempts", type=int, default=5, help="attempts per call on rate limits, 5xx, timeouts (default 5)")
    create.add_argument("--backoff", type=float, default=None, help="first retry delay in seconds (default 1)")
    create.add_argument("--restart", action="store_true", help="discard an interrupted creation of this exam instead of resuming it")
    create.set_defaults(func=cmd_exam_create)

    actions.add_parser("list", help="list the exams (latest version) and unfinished creations").set_defaults(func=cmd_exam_list)

    show = actions.add_parser("show", help="print an exam's questions and answers")
    show.add_argument("exam", help="exam name")
    show.add_argument("--version", type=int, default=None, help="version number (default: the latest)")
    show.add_argument("--json", action="store_true", help="print the exam file as JSON")
    show.set_defaults(func=cmd_exam_show)

    delete = actions.add_parser("delete", help="delete an exam with every version (scores saved with runs stay; asks first)")
    delete.add_argument("exam", help="exam name")
    delete.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    delete.set_defaults(func=cmd_exam_delete)

    check = actions.add_parser("check", help="flag questions that are near-duplicates of a training dataset's questions")
    check.add_argument("exam", help="exam name")
    check.add_argument("--dataset", required=True, help="training dataset to compare with")
    check.add_argument("--version", type=int, default=None, help="version to check (default: the latest)")
    check.add_argument("--threshold", type=float, default=None, help="near-duplicate Jaccard threshold on character 3-grams (default 0.7)")
    check.add_argument("--drop", action="store_true", help="also freeze a new version without the flagged questions")
    check.set_defaults(func=cmd_exam_check)

    weak = actions.add_parser("weak", help="a run's weak doc sections on an exam; with --generate, more data for them",
                              description="Per doc section: questions, base and tuned accuracy, training items. With --generate, "
                                          "start a generation run on exactly the weak sections' slices into --dataset.")
    weak.add_argument("exam", help="exam name (scored on the run with `exam run`)")
    weak.add_argument("--run", required=True, help="training run whose exam report is read")
    weak.add_argument("--dataset", required=True, help="dataset that gets the new items (a new version of it)")
    weak.add_argument("--alpha", type=float, default=None,
                      help="significance level: a section is weak when the tuned model scores significantly below its score "
                           "on the other sections, on the kinds that tell knowledge from guessing (default 0.05)")
    weak.add_argument("--generate", action="store_true", help="generate items for the weak sections now")
    _add_provider_args(weak, "(with --generate)")
    weak.add_argument("--template", default="default", help="generation prompt template (default: default)")
    weak.add_argument("--var", action="append", metavar="NAME=VALUE", help="a template variable; repeat for each")
    weak.add_argument("--pairs", type=int, default=3, help="question/answer pairs per call (default 3)")
    weak.set_defaults(func=cmd_exam_weak)

    try:
        from frontend.cli.exam_run import add_exam_run
    except ImportError:  # scoring not installed in this checkout: the other commands still work
        return
    add_exam_run(actions)
