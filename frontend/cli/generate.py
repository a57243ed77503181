"""`python main.py docs ...` and `python main.py generate ...`: the generation tab, headless; and
`python main.py datasets show NAME`, a dataset's counts with its phrasings and renderings.

Imports stay light at module level (main.py builds every parser at start); the LLM client, the stores
and the quality checks are imported when a command runs.
"""

from __future__ import annotations

import atexit
import gc
import json
import sys
from typing import TYPE_CHECKING

from frontend.cli.running import throttled, wait_for_job
from tools.core.errors import UserError
from tools.core.i18n import default_language, status_word, t
from tools.core.workdir import validate_name
from tools.docs.docsets import slice_docset
from tools.docs.reading import list_docsets, scan_docset
from tools.docs.slicing import DEFAULT_MAX_TOKENS
from tools.generation.tool_calls import MAX_TOOL_CALLS, check_tool_calls_setting, tool_calls_line
from tools.generation.variants import (RENDERING_NAMES, check_question_variants, checked_renderings, phrasing_unit_key,
                                       planned_variant_calls, rendering_label, rendering_unit_key, variant_counts,
                                       variant_summary)

if TYPE_CHECKING:
    from tools.llm.runner import UnitProgress


def progress_line(progress: UnitProgress, lang: str | None = None, what: str = "items") -> str:
    """One progress line for the terminal, in `lang` (default: the CLI's --lang); `what` the run makes
    ("items", or "questions" for an exam)."""
    from tools.llm.runner import failure_reasons, format_duration

    failures = failure_reasons(progress.failures, lang)
    line = t("gcli.progress", lang, counted=t(f"gcli.what.{what}", lang), done=progress.skipped_units + progress.processed_units, total=progress.total_units,
             items=progress.items, failed=progress.failed_units, failures=f" ({failures})" if failures else "",
             duplicates=progress.duplicates, retries=progress.retries, tokens_in=progress.tokens_in,
             tokens_out=progress.tokens_out, elapsed=format_duration(progress.elapsed_s), eta=format_duration(progress.eta_s))
    if progress.cost is not None:
        line += t("gcli.progress_cost", lang, cost=f"{progress.cost:.4f}")
    return line


# ---------------------------------------------------------------- docs


def _docset_folder(name: str):
    import global_var

    return global_var.workspace().docs_folder(name)


def cmd_docs_list(args) -> int:
    import global_var

    names = list_docsets(global_var.workdir().docs)
    if not names:
        print(t("generate.no_docs"))
        return 0
    for name in names:
        files = scan_docset(global_var.workdir().docs / name)
        usable = sum(1 for f in files if f.error is None and f.kind is not None)
        print(t("gcli.docset", name=name, usable=usable, total=len(files)))
    return 0


def cmd_docs_files(args) -> int:
    files = scan_docset(_docset_folder(args.name))
    width = max((len(f.path) for f in files), default=4)
    for f in files:
        problem = f.error or ""
        print(f"{f.path:<{width}}  {f.kind or '-':<8}  {f.size:>9}  {problem}".rstrip())
    return 0


def cmd_docs_slice(args) -> int:
    slices, files = slice_docset(_docset_folder(args.docset), args.max_tokens)
    if args.json:
        payload = {
            "slices": [{**s.model_dump(), "heading_label": s.heading_label} for s in slices],
            "files": [f.model_dump() for f in files],
        }
        json.dump(payload, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    for index, s in enumerate(slices, 1):
        print(t("gcli.slice_head", index=index, count=len(slices), where=f"{s.source}:{s.start_line + 1}-{s.end_line}",
                heading=s.heading_label or t("gcli.no_heading"), tokens=s.tokens, id=s.slice_id))
        print(s.text.rstrip("\n"))
    for f in files:
        if f.error:
            print(t("gcli.skipped_file", path=f.path, error=f.error), file=sys.stderr)
    return 0


def register_docs(subparsers) -> None:
    docs = subparsers.add_parser("docs", help="list document sets, their files and slices")
    actions = docs.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="list the document sets under workdir/docs").set_defaults(func=cmd_docs_list)
    files = actions.add_parser("files", help="list the files of a document set, with the reason a file cannot be used")
    files.add_argument("name", help="document set (a folder under workdir/docs)")
    files.set_defaults(func=cmd_docs_files)
    slicing = actions.add_parser("slice", help="print the slices generation would send to the model")
    slicing.add_argument("docset", help="document set (a folder under workdir/docs)")
    slicing.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help=f"token budget per slice (default {DEFAULT_MAX_TOKENS})")
    slicing.add_argument("--json", action="store_true", help="print JSON instead of text")
    slicing.set_defaults(func=cmd_docs_slice)


# ---------------------------------------------------------------- a saved provider, or one given by its URL


def add_adhoc_provider_args(parser, saved_flag: str = "--provider") -> None:
    """The flags that give a provider by its URL instead of `saved_flag` (a saved one's name); the two ways
    do not mix (provider_from_args)."""
    from schema.provider_limits import DEFAULT_CONTEXT_TOKENS

    parser.add_argument("--base-url", help=f"OpenAI-compatible base URL (instead of {saved_flag}; not with it)")
    parser.add_argument("--model", help="model id (with --base-url)")
    parser.add_argument("--api-key", help="API key (with --base-url)")
    parser.add_argument("--timeout", type=float, default=None, help="per-call timeout in seconds (with --base-url; default 60)")
    parser.add_argument("--context-tokens", type=int, default=None,
                        help="the model's context length in tokens: a longer prompt is not sent (with --base-url; "
                             f"default {DEFAULT_CONTEXT_TOKENS}; a saved provider has its own in Settings)")


def refuse_saved_with_adhoc(args, saved: str | None, saved_flag: str) -> None:
    """UserError when a saved provider (`saved_flag`) and the URL flags are both given: a --base-url beside
    --provider was once ignored without a word."""
    given = [flag for flag, value in (("--base-url", args.base_url), ("--model", args.model), ("--api-key", args.api_key),
                                      ("--timeout", args.timeout), ("--context-tokens", args.context_tokens))
             if value is not None]
    if saved and given:
        raise UserError("error.bounded_saved_and_adhoc", saved=f"{saved_flag} {saved}", flags=", ".join(given),
                        saved_flag=saved_flag)


def provider_from_args(args, saved: str | None, saved_flag: str, missing_key: str):
    """The saved provider's name, or the provider the URL flags give; UserError when both ways are given
    (refuse_saved_with_adhoc) or neither is (`missing_key`)."""
    from tools.llm.client import adhoc_provider

    refuse_saved_with_adhoc(args, saved, saved_flag)
    if saved:
        return saved
    if args.base_url and args.model:
        return adhoc_provider(args.base_url, args.model, args.api_key, concurrency=args.concurrency,
                              timeout_s=60.0 if args.timeout is None else args.timeout, context_tokens=args.context_tokens)
    raise UserError(missing_key)


# ---------------------------------------------------------------- generate


def parse_variables(pairs: list[str] | None) -> dict[str, str]:
    variables = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserError("error.generate_bad_var", value=pair)
        variables[name.strip()] = value
    return variables


def print_doc_changes(changes, limit: int = 40) -> None:
    """The docs-sync summary line, the slices that are not unchanged, and the edited items kept."""
    from tools.generation.docsync import changes_rows, changes_summary

    print(changes_summary(changes))
    rows = changes_rows(changes)
    for status, source, heading, items in rows[:limit]:
        print(f"  {status:<10} {source} | {heading} | {items}")
    if len(rows) > limit:
        print(f"  ... {len(rows) - limit} more")
    if changes.kept_edited:
        print(t("docsync.kept_header"))
        for entry in changes.kept_edited:
            print(f"  {entry['id']}  {entry['source']} | {entry['heading']} | {entry['question'][:80]}")


def variant_options(args) -> tuple[int, tuple[str, ...]]:
    """--variants and --renderings, checked (UserError saying what to fix)."""
    check_question_variants(args.variants)
    return args.variants, checked_renderings(args.renderings)


def print_variant_plan(slices, rounds: int, variants: int, renderings: tuple[str, ...], done: set | None = None) -> None:
    """The calls phrasings and renderings add to a run over `slices` (nothing when neither is asked for); with
    `done` (the unit keys a dataset has finished), also those not done yet."""
    calls = planned_variant_calls(len(slices), rounds, variants, renderings)
    if not calls["phrasings"] and not calls["renderings"]:
        return
    names = t("variants.separator").join(rendering_label(name) for name in renderings) or t("variants.none")
    print(t("variants.plan", calls=calls["phrasings"] + calls["renderings"], phrasings=calls["phrasings"],
            extra=max(variants - 1, 0), renderings=calls["renderings"], names=names))
    if done is not None:
        phrasing_keys = [phrasing_unit_key(f"{s.slice_id}:{r}") for r in range(1, rounds + 1) for s in slices] if variants > 1 else []
        rendering_keys = [rendering_unit_key(s.slice_id, name) for name in renderings for s in slices]
        print(t("variants.plan_left", phrasings=sum(key not in done for key in phrasing_keys),
                renderings=sum(key not in done for key in rendering_keys)))


def print_tool_call_plan(slices, count: int, docs: str, done: set | None = None) -> None:
    """The calls tool-call conversations add to a run over `slices` (nothing when none are asked for); with `done`
    (the unit keys a dataset has finished), also those not done yet."""
    if not count:
        return
    from tools.generation.engine import tool_call_units

    units = tool_call_units(slices)
    if not units:
        print(t("toolgen.no_functions", docs=docs))
        return
    print(t("toolgen.plan", calls=len(units), count=count))
    if done is not None:
        print(t("toolgen.plan_left", left=sum(unit.key not in done for unit in units)))


def cmd_generate_dry_run(args) -> int:
    """Slices and units the run would send, and the dataset's doc changes; no call is made."""
    import global_var
    from tools.generation.docsync import doc_changes
    from tools.generation.controls import without_control_sections
    from tools.generation.engine import UNIT_DONE

    workspace = global_var.workspace()
    dataset = validate_name(args.dataset, "dataset name")
    variants, renderings = variant_options(args)
    check_tool_calls_setting(args.tool_calls)
    budget = args.max_slice_tokens
    if workspace.datasets.exists(dataset):
        changes = doc_changes(workspace, dataset)
        if changes.docs != args.docs:
            raise UserError("error.generate_other_docs", name=dataset, docs=changes.docs, requested=args.docs)
        print_doc_changes(changes)
        if variants > 1 or renderings or args.tool_calls:
            view = workspace.datasets.load(dataset)
            budget = (view.meta.get("generated_from") or {}).get("max_slice_tokens") or budget
            slices, _ = slice_docset(workspace.docs_folder(validate_name(args.docs, "docs")), budget)
            if not args.include_control_sections:
                slices = without_control_sections(slices, args.docs, [], workspace.exams)
            done = {event.get("unit") for event in view.events if event.get("type") == UNIT_DONE}
            print_variant_plan(slices, args.rounds, variants, renderings, done)
            print_tool_call_plan(slices, args.tool_calls, args.docs, done)
        return 0
    slices, files = slice_docset(workspace.docs_folder(validate_name(args.docs, "docs")), budget)
    if not args.include_control_sections:
        notes: list[tuple[str, dict]] = []
        slices = without_control_sections(slices, args.docs, notes, workspace.exams)
        for key, params in notes:
            print(t(key, **params))
    print(t("docsync.not_generated_yet", name=dataset))
    print(t("gcli.plan", slices=len(slices), files=len(files), calls=len(slices) * args.rounds, pairs=args.pairs))
    print_variant_plan(slices, args.rounds, variants, renderings)
    print_tool_call_plan(slices, args.tool_calls, args.docs)
    return 0


def cmd_generate(args) -> int:
    from tools.generation.engine import GenerationSettings

    refuse_saved_with_adhoc(args, args.provider, "--provider")
    if args.dry_run:
        return cmd_generate_dry_run(args)
    variants, renderings = variant_options(args)
    provider = provider_from_args(args, args.provider, "--provider", "error.generate_provider_args")
    settings = GenerationSettings(rounds=args.rounds, pairs_per_call=args.pairs, concurrency=args.concurrency,
                                  temperature=args.temperature, max_tokens=args.max_tokens,
                                  max_slice_tokens=args.max_slice_tokens, max_attempts=args.max_attempts,
                                  question_variants=variants, renderings=renderings, tool_calls=args.tool_calls)
    if args.backoff is not None:
        settings.backoff_base_s = args.backoff
    import global_var
    from frontend.jobs import launch_generation

    # Without --template: the built-in template of the command's language (--lang).
    workspace = global_var.workspace()
    template = args.template or workspace.prompts.default_name(default_language()) or "default"
    launch = launch_generation(workspace, args.docs, args.dataset, provider, template, parse_variables(args.var), settings,
                               score_with=args.score_with, score_template=args.score_template, update=args.update,
                               include_control=args.include_control_sections)
    prepared = launch.prepared
    # The checks after the run go to the background once the summary is out (unless asked to wait for them).
    prepared.defer_checks = not getattr(args, "wait_for_checks", False)
    for key, params in prepared.notes:
        print(t(key, **params))
    if launch.retired is not None:
        print_doc_changes(launch.retired)
        print(t("docsync.retired", name=prepared.dataset, count=len(launch.retired.retire), version=launch.retired_version["n"])
              if launch.retired_version else t("docsync.nothing_retired"))
    elif launch.changes is not None and launch.changes.has_changes:
        print_doc_changes(launch.changes)
    print(t("generate.started", name=prepared.dataset, units=len(prepared.units), concurrency=prepared.settings.concurrency), flush=True)
    job = launch.start(throttled(progress_line))
    progress = wait_for_job(job, "gcli.cancelling")
    checker = checks_after_summary(progress, prepared, workspace, run_ended=job.join(1.0))
    print_summary(progress, checker=checker)
    # What the run left in memory (the dataset's items, the openai client's modules) is freed as the interpreter
    # exits; frozen at exit, it is not also walked by the collections the exit runs: about 0.35 s less between the
    # summary and the exit at 760 calls (bench/generation_cli.py). At exit, not now: a process that goes on (a
    # test session) keeps collecting what it frees later.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    if progress.status == "cancelled":
        return 130
    return 0 if progress.status == "finished" else 1


def checks_after_summary(progress, prepared, workspace, run_ended: bool = True) -> int | None:
    """The pid of the process running the checks the run left to us (progress.checks_deferred), or None: then
    they ran here (no process could be started, or the run's thread had not ended: a fork copies only this
    thread, and a lock the run's thread held would stay held in the copy), their finding in `progress.checks`."""
    if not getattr(progress, "checks_deferred", False):
        return None
    if not run_ended:
        from tools.quality.checks import check_after_change

        progress.checks, progress.checks_deferred = check_after_change(prepared.dataset, workspace.datasets, prepared.docs_root), False
        return None
    from tools.generation.background_checks import start_background_checks
    from tools.quality.checks import check_after_change

    checker = start_background_checks(prepared.dataset, workspace.datasets, prepared.docs_root)
    if checker is None:
        progress.checks, progress.checks_deferred = check_after_change(prepared.dataset, workspace.datasets, prepared.docs_root), False
    return checker


def print_summary(progress, lang: str | None = None, checker: int | None = None) -> None:
    """The end of a run for the terminal, in `lang` (default: the CLI's --lang); `checker`: the pid of the
    process running the automatic checks in the background (checks_after_summary)."""
    from tools.llm.runner import failure_reasons
    from tools.quality.checks import check_summary_line
    from tools.quality.judge import generation_scoring_line

    status = status_word(progress.status, "generate.status", lang)
    print(t("gcli.status_message", lang, status=status, message=progress.message) if progress.message else t("gcli.status", lang, status=status))
    print(t("gcli.units", lang, total=progress.total_units, skipped=progress.skipped_units, done=progress.done_units,
            failed=progress.failed_units))
    print(t("gcli.items", lang, items=progress.items, duplicates=progress.duplicates, retries=progress.retries))
    if progress.failures:
        print(t("gcli.failures", lang, reasons=failure_reasons(progress.failures, lang)))
        for failure in progress.recent_failures[-5:]:
            print(f"  {failure['unit']} ({failure['source']}): {failure['reason']}: {failure['detail']}")
    print(t("gcli.tokens_cost", lang, tokens_in=progress.tokens_in, tokens_out=progress.tokens_out, cost=f"{progress.cost:.4f}")
          if progress.cost is not None else t("gcli.tokens", lang, tokens_in=progress.tokens_in, tokens_out=progress.tokens_out))
    print(t("gcli.duration_json" if progress.json_mode else "gcli.duration_no_json", lang, elapsed=f"{progress.elapsed_s:.1f}"))
    if progress.scoring:
        print(generation_scoring_line(progress.scoring, lang))
    if progress.variants:
        print(variant_summary(progress.variants, lang))
    if progress.tool_calls:
        print(tool_calls_line(progress.tool_calls, lang))
    if checker is not None:
        print(t("genspeed.checks_background", lang, name=progress.dataset, pid=checker))
    elif progress.items:
        print(check_summary_line(progress.checks, progress.dataset, lang))
    if progress.status == "cancelled":
        print(t("gcli.resume", lang))


def register_generate(subparsers) -> None:
    from schema.provider_limits import DEFAULT_CONCURRENCY

    generate = subparsers.add_parser(
        "generate", help="generate a question/answer dataset from a document set",
        description="Generate question/answer pairs from a document set. Running it again with the same "
                    "--dataset resumes: finished units are skipped, failed ones are tried again.",
    )
    generate.add_argument("--docs", required=True, help="document set (a folder under workdir/docs)")
    generate.add_argument("--dataset", required=True, help="dataset to create, or a generated one to resume")
    generate.add_argument("--provider", help="name of a saved API provider")
    add_adhoc_provider_args(generate)
    generate.add_argument("--template", default=None, help="prompt template name (default: default-en with --lang en, default with --lang zh)")
    generate.add_argument("--var", action="append", metavar="NAME=VALUE", help="a template variable; repeat for each")
    generate.add_argument("--rounds", type=int, default=1, help="calls per slice (default 1)")
    generate.add_argument("--pairs", type=int, default=3, help="question/answer pairs per call (default 3)")
    generate.add_argument("--variants", type=int, default=1, metavar="N",
                          help="phrasings of each generated question, each its own item with the same answer (default 1: "
                               "off); adds one call per slice and round")
    generate.add_argument("--renderings", default="", metavar="NAMES",
                          help=f"renderings of each slice's facts, each its own item, comma-separated from "
                               f"{','.join(RENDERING_NAMES)} (default: none); adds one call per slice and rendering")
    generate.add_argument("--tool-calls", type=int, default=0, metavar="N",
                          help="conversations calling the functions the docs show a signature of, per slice that shows "
                               f"any (default 0: off; at most {MAX_TOOL_CALLS}); adds one call per such slice. Calls of a "
                               "function not offered or with arguments that do not fit its signature are dropped and counted")
    generate.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                          help=f"calls in flight (default {DEFAULT_CONCURRENCY}; at most the provider's limit)")
    generate.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    generate.add_argument("--max-tokens", type=int, default=2048, help="completion token limit per call (default 2048)")
    generate.add_argument("--max-slice-tokens", type=int, default=DEFAULT_MAX_TOKENS, help=f"token budget per slice (default {DEFAULT_MAX_TOKENS})")
    generate.add_argument("--max-attempts", type=int, default=5, help="attempts per call on rate limits, 5xx, timeouts (default 5)")
    generate.add_argument("--backoff", type=float, default=None, help="first retry delay in seconds (default 1; doubles per attempt)")
    generate.add_argument("--score-with", metavar="PROVIDER", help="score each unit's new items with this saved provider "
                          "as the LLM judge, right after they are written (see `datasets score`)")
    generate.add_argument("--score-template", default=None, help="judge template with --score-with (default: by --lang)")
    generate.add_argument("--include-control-sections", action="store_true",
                          help="also generate from the sections an exam holds out as its control (skipped by default)")
    generate.add_argument("--wait-for-checks", action="store_true",
                          help="run the automatic checks before exiting and print what they found (default: they start "
                               "in the background once the summary is printed and save their result for Dataset "
                               "management and `datasets check`)")
    generate.add_argument("--dry-run", action="store_true",
                          help="call nothing: print the plan and, for a dataset generated before, which slices are "
                               "unchanged, changed, new or gone since (no provider needed)")
    generate.add_argument("--update", action="store_true",
                          help="for a dataset generated before: first retire the items of changed and gone slices (one "
                               "version; items a person edited are kept when their slice changed), then generate for "
                               "changed and new slices only")
    generate.set_defaults(func=cmd_generate)


# ---------------------------------------------------------------- datasets show


def cmd_datasets_show(args) -> int:
    """A dataset's counts, where it came from, and its phrasings and renderings (tools.generation.variants)."""
    import global_var

    store = global_var.datasets()
    view = store.load(validate_name(args.name, "dataset name"))
    counts = variant_counts(view.items.values())
    if args.json:
        from schema.dataset import preference_kind

        json.dump({"name": args.name, **view.counts(), "preference": preference_kind(list(view.items.values())), "generated_from": view.meta.get("generated_from"),
                   "variants": counts}, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    from datetime import datetime

    modified = datetime.fromtimestamp(store.path(args.name).stat().st_mtime).isoformat(sep=" ", timespec="seconds")
    print(t("variants.show_head", name=args.name, modified=modified, **view.counts()))
    from schema.dataset import preference_kind

    print(t("prefformats.show_kind", kind=t(f"prefformats.kind.{preference_kind(list(view.items.values())) or 'plain'}")))
    source, run = view.meta.get("generated_from"), view.meta.get("generation") or {}
    if source:
        print(t("variants.show_generated", docs=source.get("docs"), status=status_word(run["status"], "generate.status") if run.get("status") else "-",
                template=run.get("template") or "-", model=run.get("model") or "-"))
    else:
        print(t("variants.show_not_generated"))
    print(variant_summary(counts))
    per_slice = [entry["questions"] for slice_id, entry in counts["slices"].items() if slice_id]
    if per_slice:
        print(t("variants.show_slices", slices=len(per_slice), low=min(per_slice), high=max(per_slice)))
    return 0


def add_show_action(actions) -> None:
    """Add `show` to the `datasets` subcommand's actions."""
    show = actions.add_parser("show", help="summarise a dataset: its counts, where it came from, how many phrasings "
                                           "each question has and the renderings of each slice's facts")
    show.add_argument("name", help="dataset name")
    show.add_argument("--json", action="store_true", help="print the counts as JSON, per question group and per slice too")
    show.set_defaults(func=cmd_datasets_show)
