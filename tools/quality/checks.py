"""All checks without an LLM over one dataset, their result document, and where it is kept.

A finding is {item_id, kind, severity, where: {message, field, span}, detail: {...}}; `KINDS` is the
table of kinds (severity, what they mean) that the page, the CLI and `datasets filter --drop-flag`
read. `run_checks` is pure (items in, result out); `check_dataset` loads a dataset and its doc set,
runs the checks and saves the result beside the journal as `.<name>.checks.json`, keyed by a hash
of the journal's bytes so that a stale result is recognised (`load_result`).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import atomic_write_text, validate_name
from tools.quality.answers import answer_findings, message_order_findings
from tools.quality.duplicates import duplicate_findings
from tools.quality.grounding import grounding_findings_all
from tools.quality.kinds import FLAG_KINDS, KINDS, SEVERITIES
from tools.quality.language import detect_language, item_languages, language_findings, majority_language
from tools.quality.names import invented_name_findings
from tools.quality.pair_checks import pair_findings
from tools.quality.secrets import secret_findings, warm_up
from tools.quality.sources import DocContext, load_doc_context
from tools.quality.stats import dataset_stats
from tools.quality.text import cjk_table
from tools.quality.tool_calls import tool_call_findings

RESULT_VERSION = 1


# A dataset this large is checked in two processes when the machine has two CPUs: the checks are
# independent, so one forked child runs grounding, names and language while this process runs
# duplicates, answers, pairs, tool calls, secrets and the statistics (at 50,000 items about 3.3 and 3.0
# CPU seconds of 6.3 on a busy machine, bench/quality.py). Below it the fork costs more than it saves.
PARALLEL_MIN_ITEMS = 20_000
# The order of the findings in a result, whichever process ran which check.
CHECK_ORDER = ("duplicates", "answers", "grounding", "pairs", "tool_calls", "names", "language", "secrets")
CHILD_CHECKS = ("grounding", "names", "language")
# "stats": the statistics (no findings), timed like a check.
_MAIN_CHECKS = tuple(check for check in CHECK_ORDER if check not in CHILD_CHECKS) + ("stats",)


def run_checks(items: list[dict], eval_ids: set[str], context: DocContext | None = None,
               parallel: bool | None = None) -> dict:
    """Every check over `items` (dicts with id, messages, provenance); `context` is the doc set they came
    from (None: grounding and invented names are skipped). `parallel`: run part of the checks in a
    forked child process (default: for PARALLEL_MIN_ITEMS items and more on a machine with 2+ CPUs).
    Returns the JSON-serialisable result, the same either way."""
    wall = time.perf_counter()
    if parallel is None:
        parallel = len(items) >= PARALLEL_MIN_ITEMS and (os.cpu_count() or 1) > 1
    skipped = [] if context is not None else [{"check": "grounding", "reason": "no_docs"}, {"check": "names", "reason": "no_docs"}]
    grounding: dict[str, float] = {}
    child = _start_child(items, eval_ids, context) if parallel else None
    found, timings = _run_group(_MAIN_CHECKS, items, eval_ids, context, grounding)
    child_part = _child_result(child, max(60.0, 10 * sum(timings.values()))) if child is not None else None
    if child_part is None:  # one process, or the child failed: its share is done here, nothing is lost
        child_part = _run_group(CHILD_CHECKS, items, eval_ids, context, grounding) + ({},)
    found.update(child_part[0])
    timings.update(child_part[1])
    grounding.update(child_part[2])
    stats = found.pop("stats")
    findings = [finding for check in CHECK_ORDER for finding in found.get(check, ())]
    for finding in findings:
        finding["severity"] = KINDS[finding["kind"]].severity
    return {
        "version": RESULT_VERSION,
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "docs": context.docs if context is not None else None,
        "items": len(items),
        "summary": summarize(findings),
        "skipped": skipped,
        "timings_s": timings,  # per check (in two processes their sum exceeds the wall time)
        "seconds": round(time.perf_counter() - wall, 3),
        "parallel": child is not None,
        "stats": stats,
        "grounding": grounding,
        "findings": findings,
    }


def _run_group(checks: tuple[str, ...], items: list[dict], eval_ids: set[str], context: DocContext | None,
               grounding: dict[str, float]) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """The findings of each of `checks` (for "stats": the statistics) and the seconds each took; grounding
    scores go into `grounding`."""
    shared: dict[str, list] = {}

    def sources() -> list | None:
        """Each item's source slice, looked up once for the checks that need it (timed in the first)."""
        if context is None:
            return None
        if "sources" not in shared:
            shared["sources"] = [context.source_of(item) for item in items]
        return shared["sources"]

    work = {
        "duplicates": lambda: duplicate_findings(items, eval_ids),
        "answers": lambda: [f for item in items for f in message_order_findings(item) + answer_findings(item)],
        "grounding": lambda: grounding_findings_all(items, context, grounding, sources()),
        "names": lambda: [f for item in items for f in invented_name_findings(item, context)],
        "language": lambda: _language_findings(items, context, sources()),
        "secrets": lambda: secret_findings(items),
        "pairs": lambda: pair_findings(items),
        "tool_calls": lambda: [f for item in items for f in tool_call_findings(item, context)],
        "stats": lambda: dataset_stats(items, eval_ids, context),
    }
    found: dict[str, list[dict]] = {}
    timings: dict[str, float] = {}
    for check in checks:
        if check in ("grounding", "names") and context is None:
            continue
        started = time.perf_counter()
        found[check] = work[check]()
        timings[check] = round(time.perf_counter() - started, 4)
    return found, timings


def _start_child(items, eval_ids, context):
    """A forked process running CHILD_CHECKS (the data is inherited, not copied through a pipe), or None
    when a process cannot be started. What the child needs is imported here first: a child forked
    while another thread holds the import lock would wait for it forever."""
    import multiprocessing

    warm_up()
    cjk_table()
    try:
        forking = multiprocessing.get_context("fork")
        receiver, sender = forking.Pipe(duplex=False)
        process = forking.Process(
            target=_child_main, args=(sender, items, eval_ids, context), daemon=True, name="quality-checks")
        # The objects that exist now (the items) left out of the child's garbage collections: a collection
        # writes to every object it visits, which would copy their memory pages into the child.
        gc.freeze()
        try:
            process.start()
        finally:
            gc.unfreeze()
    except (OSError, ValueError) as exc:
        logging.getLogger(__name__).warning("checks run in one process: no child process (%s)", exc)
        return None
    sender.close()
    return process, receiver


def _child_main(sender, items, eval_ids, context) -> None:
    try:
        grounding: dict[str, float] = {}
        sender.send(_run_group(CHILD_CHECKS, items, eval_ids, context, grounding) + (grounding,))
    finally:
        sender.close()


def _child_result(child, timeout: float):
    """The child's (findings per check, timings, grounding scores), or None when it failed or did not answer
    within `timeout` s."""
    process, receiver = child
    try:
        if receiver.poll(timeout):
            return receiver.recv()
        logging.getLogger(__name__).warning("the checks' child process gave no result in %.0f s: stopped", timeout)
    except (EOFError, OSError) as exc:
        logging.getLogger(__name__).warning("the checks' child process failed (%s): its checks run here", type(exc).__name__)
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(5)
    return None


def _language_findings(items: list[dict], context: DocContext | None, sources: list | None = None) -> list[dict]:
    languages = [item_languages(item) for item in items]
    if context is not None and sources is None:
        sources = [context.source_of(item) for item in items]
    majority = majority_language([answer for _, answer, _, _ in languages])
    slice_language: dict[tuple[str, ...], str] = {}
    findings = []
    for index, (item, item_langs) in enumerate(zip(items, languages)):
        source_language = None
        if context is not None:
            source = sources[index]
            if source.text:
                source_language = slice_language.get(source.slice_ids)
                if source_language is None:
                    source_language = slice_language[source.slice_ids] = detect_language(source.text)
        findings.extend(language_findings(item, item_langs, source_language, majority))
    return findings


def summarize(findings: list[dict]) -> dict:
    by_kind = Counter(f["kind"] for f in findings)
    by_severity = Counter(KINDS[f["kind"]].severity for f in findings)
    flagged = {f["item_id"] for f in findings if f["kind"] in FLAG_KINDS}
    return {"by_kind": {kind: by_kind[kind] for kind in KINDS if by_kind[kind]},
            "by_severity": {severity: by_severity[severity] for severity in SEVERITIES},
            "flagged_items": len(flagged)}


def findings_by_item(result: dict) -> dict[str, list[dict]]:
    """The result's findings grouped per item id, in item order of first finding."""
    grouped: dict[str, list[dict]] = {}
    for finding in result["findings"]:
        grouped.setdefault(finding["item_id"], []).append(finding)
    return grouped


# ---------------------------------------------------------------- a dataset on disk


def journal_fingerprint(path: Path) -> str:
    """A hash of the journal's bytes: any change to the dataset (an append, an edit, a compaction) changes it."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def result_path(store, name: str) -> Path:
    journal = store.path(name)
    return journal.parent / f".{journal.name[: -len('.jsonl')]}.checks.json"


def doc_context_for(meta: dict, docs_root: Path, docs: str | None = None) -> tuple[DocContext | None, str | None]:
    """The doc set to check against: `docs` if given, else the one the dataset was generated from.
    Returns (context, None) or (None, reason) with reason 'no_docs' or 'docs_missing'."""
    generated = meta.get("generated_from") or {}
    name = docs or generated.get("docs")
    if not name:
        return None, "no_docs"

    folder = Path(docs_root) / validate_name(name, "docs")
    if not folder.is_dir():
        return None, "docs_missing"
    budget = generated.get("max_slice_tokens") if generated.get("docs") == name else None
    return load_doc_context(folder, name, budget), None


def check_dataset(name: str, store, docs_root: Path | None, docs: str | None = None, save: bool = True) -> dict:
    """Run every check on dataset `name` of `store` (against doc set `docs` in `docs_root`, default: the one it
    was generated from; None: no docs to check against) and save the result beside the journal; returns it."""
    journal = store.path(name)
    if not journal.exists():
        raise UserError("error.not_found", what="dataset", name=name)
    fingerprint = journal_fingerprint(journal)  # before reading: a change meanwhile makes the result stale
    view = store.load(name)
    context, reason = doc_context_for(view.meta, docs_root, docs) if docs_root is not None else (None, "no_docs")
    if docs and reason == "docs_missing":
        raise UserError("error.not_found", what="docs", name=docs)
    result = run_checks(list(view.items.values()), view.eval_ids, context)
    if reason and reason != "no_docs":
        result["skipped"] = [{**entry, "reason": reason} for entry in result["skipped"]]
    result.update(dataset=name, fingerprint=fingerprint)
    if save:
        atomic_write_text(result_path(store, name), json.dumps(result, ensure_ascii=False, separators=(",", ":")))
    return result


def load_result(store, name: str, allow_stale: bool = False) -> dict | None:
    """The saved result of dataset `name`, or None when there is none or the dataset changed since
    (with `allow_stale`, a stale one too, marked {"stale": true})."""
    path = result_path(store, name)
    journal = store.path(name)
    if not path.exists() or not journal.exists():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if result.get("version") != RESULT_VERSION:
        return None
    stale = result.get("fingerprint") != journal_fingerprint(journal) or result.get("dataset") != name
    if stale and not allow_stale:
        return None
    result["stale"] = stale
    return result


# A dataset whose journal is larger than this is not checked by itself after an import or a generation run:
# the checks hold every item in memory (a 1,000,000-row import took 4.1 GB there, the import itself 62 MB).
AUTO_CHECK_MAX_BYTES = 128 * 2**20


def check_after_change(name: str, store, docs_root: Path | None) -> dict | None:
    """The checks run by themselves after a generation run or an import: the dataset checked and the
    result saved (so the page and `datasets check` show it at once); returns a short summary
    {items, flagged_items, by_kind, seconds}, or None when the checks could not run. Never raises: a
    failed check must not turn a finished generation or import into a failure; the reason is logged."""
    import logging
    import time

    started = time.monotonic()
    try:
        size = store.path(name).stat().st_size
    except OSError:
        size = 0
    if size > AUTO_CHECK_MAX_BYTES:  # the checks hold the whole dataset (about 16x its journal): not unasked
        return {"skipped": True, "megabytes": round(size / 2**20)}
    try:
        result = check_dataset(name, store, docs_root)
    except Exception as exc:  # noqa: BLE001 - logged and reported as "not checked"
        logging.getLogger(__name__).warning("checks of dataset %s did not run: %s: %s", name, type(exc).__name__, exc)
        return None
    summary = summarize(result["findings"])
    return {"items": result["stats"]["items"], "flagged_items": summary["flagged_items"], "by_kind": summary["by_kind"],
            "seconds": round(time.monotonic() - started, 2)}


def check_summary_line(summary: dict | None, name: str, lang: str | None = None) -> str:
    """One line saying what the automatic checks found (the kinds most often first), in `lang`."""
    if summary is None:
        return t("quality.auto_failed", lang, name=name)
    if summary.get("skipped"):
        return t("quality.auto_skipped", lang, name=name, megabytes=summary["megabytes"],
                 limit=AUTO_CHECK_MAX_BYTES // 2**20)
    if not summary["flagged_items"] and not summary["by_kind"]:
        return t("quality.auto_clean", lang, name=name, seconds=summary["seconds"])
    kinds = ", ".join(f"{t('quality.kind.' + kind, lang)} {count}"
                      for kind, count in sorted(summary["by_kind"].items(), key=lambda pair: -pair[1]))
    return t("quality.auto_found", lang, name=name, flagged=summary["flagged_items"], kinds=kinds, seconds=summary["seconds"])
