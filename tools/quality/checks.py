"""All checks without an LLM over one dataset, their result document, and where it is kept.

A finding is {item_id, kind, severity, where: {message, field, span}, detail: {...}}; `KINDS` is the
table of kinds (severity, what they mean) that the page, the CLI and `datasets filter --drop-flag`
read. `run_checks` is pure (items in, result out); `check_dataset` loads a dataset and its doc set,
runs the checks and saves the result beside the journal as `.<name>.checks.json`, keyed by a hash
of the journal's bytes so that a stale result is recognised (`load_result`); the next check reuses
what it found for the items that did not change since (tools.quality.reuse).
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
from tools.quality.pair_checks import length_bias_findings, near_same_findings, pairs_of
from tools.quality.reuse import PER_ITEM_CHECKS, cache_key, cached_items, encode_facts, merged, plan_reuse
from tools.quality.secrets import secret_findings, warm_up
from tools.quality.sources import DocContext, load_doc_context
from tools.quality.stats import dataset_stats
from tools.quality.text import cjk_table
from tools.quality.tool_calls import tool_call_findings

RESULT_VERSION = 1


# A dataset this large is checked in two processes when the machine has two CPUs: the checks are
# independent, so one forked child runs grounding, names, language and the statistics while this process
# runs duplicates, answers, pairs, tool calls and secrets (at 50,000 items about 4.1 and 4.3 CPU seconds of
# 8.4, bench/quality.py). Below it the fork costs more than it saves.
PARALLEL_MIN_ITEMS = 20_000
# The order of the findings in a result, whichever process ran which check.
CHECK_ORDER = ("duplicates", "answers", "grounding", "pairs", "tool_calls", "names", "language", "secrets")
# "stats": the statistics (no findings), timed like a check.
ALL_CHECKS = CHECK_ORDER + ("stats",)
CHILD_CHECKS = ("grounding", "names", "language", "stats")
# A re-check with a cache: the child runs the duplicates of all items (the longest check left: at 50,000 items
# with 1,000 new, about 0.8 of 1.7 CPU seconds), started before this process has the items' digests, which tell
# what else there is to do: the statistics and the per-item checks of the new or changed items. When those are
# many (PARALLEL_MIN_ITEMS // 2: their per-item work alone about outweighs the duplicates), a second child
# takes their grounding, names and language.
RECHECK_CHILD_CHECKS = ("duplicates",)
RECHECK_SECOND_CHILD_CHECKS = ("grounding", "names", "language")


def run_checks(items: list[dict], eval_ids: set[str], context: DocContext | None = None,
               parallel: bool | None = None, previous: dict | None = None, keep_cache: bool = False) -> dict:
    """Every check over `items` (dicts with id, messages, provenance); `context` is the doc set they came
    from (None: grounding and invented names are skipped). `parallel`: run part of the checks in a
    forked child process (default: for PARALLEL_MIN_ITEMS items and more on a machine with 2+ CPUs).
    `previous`: an earlier result made with `keep_cache`, whose per-item outputs are reused for the items
    that did not change (tools.quality.reuse). With either, the result holds what a later check reuses
    ("cache") and how many items this one reused ("reused_items").
    Returns the JSON-serialisable result, the same findings either way."""
    wall = time.perf_counter()
    if parallel is None:
        parallel = len(items) >= PARALLEL_MIN_ITEMS and (os.cpu_count() or 1) > 1
    key = f"{RESULT_VERSION}:{cache_key(context)}" if keep_cache or previous is not None else None
    cached = cached_items(previous, key) if previous is not None else None
    children = []
    if parallel:
        children.append(_start_child(RECHECK_CHILD_CHECKS if cached else CHILD_CHECKS, items, items, eval_ids, context))
    reuse = None
    fresh = items
    reuse_seconds = 0.0
    if cached:
        started = time.perf_counter()
        reuse = plan_reuse(items, previous, cached)
        if reuse.reused:
            fresh = [items[index] for index in reuse.fresh]
        reuse_seconds = time.perf_counter() - started
        if parallel and len(fresh) >= PARALLEL_MIN_ITEMS // 2:
            children.append(_start_child(RECHECK_SECOND_CHILD_CHECKS, items, fresh, eval_ids, context))
    children = [child for child in children if child is not None]
    in_children = {check for child in children for check in child[0]}
    skipped = [] if context is not None else [{"check": "grounding", "reason": "no_docs"}, {"check": "names", "reason": "no_docs"}]
    grounding: dict[str, float] = {}
    found, timings = _run_group(tuple(check for check in ALL_CHECKS if check not in in_children),
                                items, fresh, eval_ids, context, grounding)
    for checks, *child in children:
        part = _child_result(child, max(60.0, 10 * sum(timings.values())))
        if part is None:  # the child failed: its share is done here, nothing is lost
            part = _run_group(checks, items, fresh, eval_ids, context, grounding) + ({},)
        found.update(part[0])
        timings.update(part[1])
        grounding.update(part[2])
    stats = found.pop("stats")
    facts = fresh_facts = found.pop("language")
    if reuse is not None and reuse.reused:
        started = time.perf_counter()
        position = {item["id"]: index for index, item in enumerate(items)}
        for check in PER_ITEM_CHECKS:
            if check in found:
                found[check] = merged(check, reuse.findings[check], found[check], position)
        reuse.facts.update(zip(reuse.fresh, fresh_facts))
        facts = [reuse.facts[index] for index in range(len(items))]
        scores = {**reuse.grounding, **grounding}
        grounding = {item["id"]: scores[item["id"]] for item in items if item["id"] in scores}
        reuse_seconds += time.perf_counter() - started
    started = time.perf_counter()
    majority = majority_language([fact[1] for fact in facts])
    if fresh is not items and majority == reuse.majority:  # the reused items' language findings stand
        found["language"] = merged("language", reuse.findings["language"],
                                   _language_findings(fresh, fresh_facts, majority), position)
    else:
        found["language"] = _language_findings(items, facts, majority)
    timings["language"] = round(timings["language"] + time.perf_counter() - started, 4)
    findings = [finding for check in CHECK_ORDER for finding in found.get(check, ())]
    for finding in findings:
        finding["severity"] = KINDS[finding["kind"]].severity
    result = {
        "version": RESULT_VERSION,
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "docs": context.docs if context is not None else None,
        "items": len(items),
        "summary": summarize(findings),
        "skipped": skipped,
        "timings_s": timings,  # per check (in two processes their sum exceeds the wall time)
        "seconds": 0.0,
        "parallel": bool(children),
        "stats": stats,
        "grounding": grounding,
        "findings": findings,
    }
    if key is not None:
        started = time.perf_counter()
        if reuse is None:  # nothing to reuse: the digests only for the cache of this result
            reuse = plan_reuse(items, previous, None)
        codes: dict[tuple, str] = {}
        result["reused_items"] = reuse.reused
        result["cache"] = {"key": key, "majority": majority, "items": {
            digest: codes.get(fact) or codes.setdefault(fact, encode_facts(fact)) for digest, fact in zip(reuse.digests, facts)}}
        timings["reuse"] = round(reuse_seconds + time.perf_counter() - started, 4)  # digests, lookups, merging
    result["seconds"] = round(time.perf_counter() - wall, 3)
    return result


def _run_group(checks: tuple[str, ...], items: list[dict], fresh: list[dict], eval_ids: set[str],
               context: DocContext | None, grounding: dict[str, float]) -> tuple[dict[str, list], dict[str, float]]:
    """The findings of each of `checks` (for "stats": the statistics; for "language": the language facts of
    each fresh item, see _language_findings) and the seconds each took; grounding scores go into `grounding`.
    The per-item checks look at the `fresh` items (those whose outputs are not reused: all in a first check),
    the dataset-wide ones (duplicates, the pairs' length bias, the statistics) at all `items`."""
    shared: dict[str, list] = {}

    def sources() -> list | None:
        """Each fresh item's source slice, looked up once for the checks that need it (timed in the first)."""
        if context is None:
            return None
        if "sources" not in shared:
            shared["sources"] = [context.source_of(item) for item in fresh]
        return shared["sources"]

    work = {
        "duplicates": lambda: duplicate_findings(items, eval_ids),
        "answers": lambda: [f for item in fresh for f in message_order_findings(item) + answer_findings(item)],
        "grounding": lambda: grounding_findings_all(fresh, context, grounding, sources()),
        "names": lambda: [f for item in fresh for f in invented_name_findings(item, context)],
        "language": lambda: _language_facts(fresh, context, sources()),
        "secrets": lambda: secret_findings(fresh),
        "pairs": lambda: _pair_findings(items, fresh),
        "tool_calls": lambda: [f for item in fresh for f in tool_call_findings(item, context)],
        "stats": lambda: dataset_stats(items, eval_ids, context),
    }
    found: dict[str, list] = {}
    timings: dict[str, float] = {}
    for check in checks:
        if check in ("grounding", "names") and context is None:
            continue
        started = time.perf_counter()
        found[check] = work[check]()
        timings[check] = round(time.perf_counter() - started, 4)
    return found, timings


def _pair_findings(items: list[dict], fresh: list[dict]) -> list[dict]:
    """Near-same pairs among the fresh items, then the length bias of all pairs (pair_findings when all are fresh)."""
    pairs = pairs_of(items)
    return near_same_findings(pairs if fresh is items else pairs_of(fresh)) + length_bias_findings(pairs)


def _start_child(checks: tuple[str, ...], items, fresh, eval_ids, context):
    """(checks, process, receiver): a forked process running `checks` (the data is inherited, not copied
    through a pipe), or None when a process cannot be started. What the child needs is imported here
    first: a child forked while another thread holds the import lock would wait for it forever."""
    import multiprocessing

    warm_up()
    cjk_table()
    try:
        forking = multiprocessing.get_context("fork")
        receiver, sender = forking.Pipe(duplex=False)
        process = forking.Process(target=_child_main, args=(sender, checks, items, fresh, eval_ids, context),
                                  daemon=True, name="quality-checks")
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
    return checks, process, receiver


def _child_main(sender, checks, items, fresh, eval_ids, context) -> None:
    try:
        grounding: dict[str, float] = {}
        sender.send(_run_group(checks, items, fresh, eval_ids, context, grounding) + (grounding,))
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


def _language_facts(items: list[dict], context: DocContext | None, sources: list | None = None) -> list[tuple]:
    """Per item: item_languages (question and answer language, their message indexes) and its source
    slice's language (None without one), what its language findings are made of."""
    if context is not None and sources is None:
        sources = [context.source_of(item) for item in items]
    slice_language: dict[tuple[str, ...], str] = {}
    facts = []
    for index, item in enumerate(items):
        source_language = None
        if context is not None:
            source = sources[index]
            if source.text:
                source_language = slice_language.get(source.slice_ids)
                if source_language is None:
                    source_language = slice_language[source.slice_ids] = detect_language(source.text)
        facts.append(item_languages(item) + (source_language,))
    return facts


def _language_findings(items: list[dict], facts: list[tuple], majority: str | None) -> list[dict]:
    """The language findings of `items` from their _language_facts and the dataset's majority language."""
    return [finding for item, fact in zip(items, facts) for finding in language_findings(item, fact[:4], fact[4], majority)]


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
    path = result_path(store, name)
    # The previous result, stale or not: the outputs of the items that did not change since are reused.
    result = run_checks(list(view.items.values()), view.eval_ids, context, previous=_read_result(path), keep_cache=True)
    if reason and reason != "no_docs":
        result["skipped"] = [{**entry, "reason": reason} for entry in result["skipped"]]
    result.update(dataset=name, fingerprint=fingerprint)
    if save:
        atomic_write_text(path, json.dumps(result, ensure_ascii=False, separators=(",", ":")))
    del result["cache"]  # for the next check only
    return result


def _read_result(path: Path) -> dict | None:
    """The result saved at `path` as it is (any version), or None when there is none or it cannot be read."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return result if isinstance(result, dict) else None


def load_result(store, name: str, allow_stale: bool = False) -> dict | None:
    """The saved result of dataset `name`, or None when there is none or the dataset changed since
    (with `allow_stale`, a stale one too, marked {"stale": true})."""
    path = result_path(store, name)
    journal = store.path(name)
    if not path.exists() or not journal.exists():
        return None
    result = _read_result(path)
    if result is None or result.get("version") != RESULT_VERSION:
        return None
    stale = result.get("fingerprint") != journal_fingerprint(journal) or result.get("dataset") != name
    if stale and not allow_stale:
        return None
    result.pop("cache", None)  # what the next check reuses: nothing to show
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
