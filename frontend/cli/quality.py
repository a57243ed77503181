"""`python main.py datasets check|filter|redact NAME`: the checks without an LLM, acting on them, redaction.

Imports stay light at module level (main.py builds every parser at start); the checks and redaction
are imported when a command runs.
"""

from __future__ import annotations

import json
import time

from tools.core.errors import UserError
from tools.core.i18n import t
from tools.quality.kinds import KIND_NAMES, KINDS

SHOWN_FINDINGS = 20


def describe_finding(finding: dict, lang: str | None = None) -> str:
    """One line for a finding: item, kind, where, detail."""
    where = finding.get("where") or {}
    place = []
    if where.get("message") is not None:
        place.append(f"messages[{where['message']}]")
    if where.get("span"):
        place.append(f"{where['span'][0]}-{where['span'][1]}")
    detail = t(f"quality.detail.{finding['kind']}", lang, **(finding.get("detail") or {}))
    return f"{finding['item_id']}  {t('quality.kind.' + finding['kind'], lang)}  {' '.join(place) or where.get('field', '')}  {detail}"


def summary_lines(name: str, result: dict) -> list[str]:
    """The readable report of a check result: header, kinds table, flagged count, lengths, sources, first findings."""
    stats = result["stats"]
    skipped = {entry["reason"] for entry in result.get("skipped") or []}
    docs = result.get("docs") or (t("quality.docs_missing", docs="?") if "docs_missing" in skipped else t("quality.no_docs"))
    lines = [t("quality.check_header", name=name, items=stats["items"], train=stats["train"], eval=stats["eval"], docs=docs), ""]
    by_kind = result["summary"]["by_kind"]
    if by_kind:
        headers = t("quality.table_header").split("|")
        rows = [(t(f"quality.kind.{kind}"), t(f"quality.severity.{KINDS[kind].severity}"), str(count))
                for kind, count in by_kind.items()]
        widths = [max(_width(cell) for cell in column) for column in zip(headers, *rows)]
        for row in [headers, *rows]:
            lines.append("  ".join(_pad(cell, width) for cell, width in zip(row, widths)).rstrip())
    else:
        lines.append(t("quality.no_findings"))
    lines += ["", t("quality.flagged_items", count=result["summary"]["flagged_items"], items=stats["items"])]
    for part in ("question", "answer"):
        for split in ("train", "eval"):
            numbers = stats["tokens"][part][split]
            if numbers["count"]:
                lines.append(t("quality.tokens_line", part=t(f"quality.part.{part}"), split=split, **numbers))
    lines.append(t("quality.turns_line", turns=", ".join(f"{k}: {v}" for k, v in stats["turns"].items())))
    sources = stats.get("sources")
    if sources:
        lines.append(t("quality.sources_line", with_items=sources["slices_with_items"], slices=sources["slices"]))
        lines += [t("quality.slice_without_items", source=s["source"], heading=s["heading"]) for s in sources["slices_without_items"]]
    findings = [f for f in result["findings"] if f["severity"] != "info"][:SHOWN_FINDINGS]
    if findings:
        lines += ["", t("quality.findings_header", count=len(findings))]
        lines += ["  " + describe_finding(f) for f in findings]
    return lines


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def cmd_datasets_check(args) -> int:
    import global_var
    from tools.quality.checks import check_dataset, findings_by_item, result_path

    started = time.perf_counter()
    store = global_var.datasets()
    result = check_dataset(args.name, store, global_var.workdir().docs, docs=args.docs)
    if args.json:
        document = {key: value for key, value in result.items() if key != "findings"}
        document["findings_by_item"] = findings_by_item(result)
        print(json.dumps(document, ensure_ascii=False, indent=1))
    else:
        for line in summary_lines(args.name, result):
            print(line)
        if result.get("reused_items"):
            print(t("quality.reused", reused=result["reused_items"], checked=result["items"] - result["reused_items"]))
        print(t("quality.saved", path=result_path(store, args.name), seconds=f"{time.perf_counter() - started:.2f}"))
    return 0  # findings are the command's output, not a failure


def cmd_datasets_filter(args) -> int:
    import global_var
    from tools.quality.checks import check_dataset, load_result

    if args.min_score is None and not args.drop_flag:
        raise UserError("error.quality_filter_nothing")
    store = global_var.datasets()
    view = store.load(args.name)
    drop: set[str] = set()
    unscored = 0
    if args.min_score is not None:
        if not 0 <= args.min_score <= 10:
            raise UserError("error.quality_min_score", value=args.min_score)
        statuses = global_var.scores().statuses(args.name, view.items)
        scored = {item_id: record for item_id, (status, _reason, record) in statuses.items() if status == "scored"}
        if not scored:
            raise UserError("error.quality_no_scores", name=args.name)
        drop |= {item_id for item_id, record in scored.items() if float(record.get("overall") or 0) < args.min_score}
        unscored = len(view.items) - len(scored)
    if args.drop_flag:
        result = load_result(store, args.name) or check_dataset(args.name, store, global_var.workdir().docs)
        kinds = set(args.drop_flag)
        drop |= {finding["item_id"] for finding in result["findings"] if finding["kind"] in kinds}
    if unscored:
        print(t("quality.filter_unscored", count=unscored))
    drop &= view.items.keys()
    if not drop:
        print(t("quality.filtered_none", name=args.name))
        return 0
    details = {"drop_flags": sorted(args.drop_flag or [])}
    if args.min_score is not None:
        details["min_score"] = args.min_score
    version = store.delete_items(args.name, sorted(drop), kind="filter", **details)
    print(t("quality.filtered", name=args.name, count=len(drop), version=(version or {}).get("n", "?"),
            left=store.count(args.name)))
    return 0


def cmd_datasets_redact(args) -> int:
    import global_var
    from tools.quality.redact import redact_dataset

    store = global_var.datasets()
    store.path(args.name)
    if not store.exists(args.name):
        raise UserError("error.not_found", what="dataset", name=args.name)
    summary = redact_dataset(args.name, store, scores=global_var.scores(), training_root=global_var.workdir().training)
    if summary["version"] is None and not summary["score_lines"] and not summary["run_files"]:
        print(t("quality.redacted_none", name=args.name))
        return 0
    if summary["version"] is not None:
        print(t("quality.redacted", items=summary["items"], spans=summary["spans"], version=summary["version"]["n"],
                records=summary["history_records"]))
    if summary["score_lines"]:
        print(t("quality.redacted_scores", count=summary["score_lines"]))
    if summary["run_files"]:
        print(t("quality.redacted_runs", count=len(summary["run_files"])))
        for path in summary["run_files"]:
            print(f"  {path}")
        print(t("quality.redact_model_note"))
    return 0


def add_quality_actions(actions) -> None:
    """Add `check`, `filter` and `redact` to the `datasets` subcommand's actions."""
    check = actions.add_parser("check", help="check a dataset without an LLM: duplicates and eval leakage, truncated or "
                                             "empty answers, grounding in the source, invented names, language, "
                                             "secrets; exit code 0 even with findings")
    check.add_argument("name", help="dataset name")
    check.add_argument("--json", action="store_true", help="print one JSON document with the findings per item")
    check.add_argument("--docs", default=None, metavar="DOCSET",
                       help="doc set to check grounding and names against (default: the one the dataset was generated from)")
    check.set_defaults(func=cmd_datasets_check)
    filt = actions.add_parser("filter", help="delete the items below a judge score and/or with a check's flag, as one new version")
    filt.add_argument("name", help="dataset name")
    filt.add_argument("--min-score", type=float, default=None, metavar="X",
                      help="drop scored items whose overall judge score is below X (run `datasets score` first)")
    filt.add_argument("--drop-flag", action="append", choices=KIND_NAMES, metavar="KIND",
                      help=f"drop items with a finding of this kind (repeatable): {', '.join(KIND_NAMES)}")
    filt.set_defaults(func=cmd_datasets_filter)
    redact = actions.add_parser("redact", help="replace secrets and personal data with placeholders in the dataset, its "
                                               "whole history and its training runs' copies")
    redact.add_argument("name", help="dataset name")
    redact.set_defaults(func=cmd_datasets_redact)
