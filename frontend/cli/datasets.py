"""`python main.py datasets list|export|import|versions|diff|restore`."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from db.dataset_export import export_line, export_note
from db.dataset_formats import (FORMATS, IMPORT_FORMATS, MAX_ITEM_CHARS, PREFERENCE_FORMATS, export_dataset, import_meta, import_note,
                                open_import)
from frontend.cli.generate import add_show_action
from frontend.cli.quality import add_quality_actions
from frontend.cli.score import add_score_actions
from schema.dataset import first_exchange, preference_kind
from tools.core.errors import UserError
from tools.core.i18n import t


def kind_label(items, lang: str | None = None) -> str:
    """What a dataset holds, in words: "conversations", "preference (pairs)" or "preference (labels)"."""
    return t(f"prefformats.kind.{preference_kind(list(items)) or 'plain'}", lang)


def cmd_datasets_list(args) -> int:
    import global_var  # imported when the command runs; main.py builds every parser at start

    store = global_var.datasets()
    summaries = store.list()
    if not summaries:
        print("no datasets yet")
        return 0
    width = max(len(s.name) for s in summaries)
    kinds = [kind_label(store.load(s.name).items.values()) for s in summaries]
    kind_width = max(_width(kind) for kind in kinds)
    print(f"{'name':<{width}}  {'items':>7}  {'train':>7}  {'eval':>6}  {'kind':<{kind_width}}  modified")
    for s, kind in zip(summaries, kinds):
        print(f"{s.name:<{width}}  {s.items:>7}  {s.train:>7}  {s.eval:>6}  {kind}{' ' * (kind_width - _width(kind))}  {s.modified}")
    return 0


def cmd_datasets_export(args) -> int:
    import global_var

    store = global_var.datasets()
    version = store.resolve_version(args.name, args.version) if args.version else None
    if args.split == "all":
        items = store.items_at(args.name, version)
    else:
        train, evaluation = store.train_eval(args.name, version)
        items = train if args.split == "train" else evaluation
    result = export_dataset(items, args.format, Path(args.out), args.name)
    line = export_line(result)
    if version is not None:
        line += " " + t("versions.export_of", name=args.name, version=version)
    print(line)
    if note := export_note(result):
        print(note)
    return 0


def cmd_datasets_import(args) -> int:
    import global_var

    store = global_var.datasets()
    if store.exists(args.name):
        raise UserError("error.already_exists", what="dataset", name=args.name)
    fmt, conversations = open_import(Path(args.path), args.format, args.max_item_chars)
    # Streamed into a hidden temp journal; all or nothing: the dataset appears only once every item
    # is written (a bad record half way or a kill leaves none).
    count = store.import_items(args.name, conversations, meta=import_meta(str(args.path), fmt),
                               provenance={"origin": f"imported:{Path(args.path).name}"})
    print(t("datasets.imported", count=count, name=args.name, format=fmt))
    if fmt in PREFERENCE_FORMATS:
        print(t("prefformats.imported_kind", kind=kind_label(store.load(args.name).items.values())))
    if note := import_note(conversations.notes):  # the fields the file had that no item keeps
        print(note)
    from tools.quality.checks import check_after_change, check_summary_line

    print(check_summary_line(check_after_change(args.name, store, global_var.workdir().docs), args.name))
    return 0


# ---------------------------------------------------------------- versions


def format_versions(rows: list[list]) -> list[str]:
    """The versions table as terminal lines (rows from DatasetStore.version_rows)."""
    head = [t(f"versions.col.{column}") for column in ("version", "time", "kind", "details", "items", "train", "eval")]
    texts = [[str(cell) for cell in row] for row in rows]
    texts = [[*row[:3], _clip(row[3], 60), *row[4:]] for row in texts]
    widths = [max(_width(head[i]), *(_width(row[i]) for row in texts)) for i in range(len(head))]
    right = {0, 4, 5, 6}

    def line(cells):
        padded = [" " * (w - _width(c)) + c if i in right else c + " " * (w - _width(c))
                  for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(padded).rstrip()

    return [line(head), *(line(row) for row in texts)]


def cmd_datasets_versions(args) -> int:
    import global_var

    store = global_var.datasets()
    versions = store.versions(args.name)
    if args.json:
        print(json.dumps(versions, ensure_ascii=False, indent=2))
        return 0
    for text in format_versions(store.version_rows(args.name)):
        print(text)
    if versions and versions[-1].get("pending"):
        print(t("versions.pending_note"))
    return 0


def _width(text: str) -> int:
    """Columns a text takes in a terminal: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _side_by_side(label: str, old: str, new: str, width: int, max_lines: int) -> list[str]:
    """`old | new` in two columns of `width`, each cut to `max_lines` wrapped lines."""
    def wrap(text: str) -> list[str]:
        lines = textwrap.wrap(" ".join(text.split()), width) or [""]
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] = lines[-1][: width - 1] + "…"
        return lines

    left, right = wrap(old), wrap(new)
    rows = []
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else ""
        b = right[index] if index < len(right) else ""
        rows.append(f"    {label if index == 0 else ' ' * len(label)} {a:<{width}} | {b}".rstrip())
    return rows


def format_diff(diff: dict, limit: int = 20, columns: int | None = None) -> list[str]:
    """A diff as terminal lines: the counts, then up to `limit` changed, added, removed and moved items,
    changed ones with the old and new text side by side."""
    columns = columns or shutil.get_terminal_size((160, 24)).columns
    width = max(30, (columns - 10) // 2)
    counts = diff["counts"]
    lines = [t("versions.diff_counts", a=diff["a"], b=diff["b"], items_a=counts["a"]["items"], items_b=counts["b"]["items"],
               train_a=counts["a"]["train"], train_b=counts["b"]["train"], eval_a=counts["a"]["eval"],
               eval_b=counts["b"]["eval"], added=len(diff["added"]), removed=len(diff["removed"]),
               changed=len(diff["changed"]), to_eval=len(diff["to_eval"]), to_train=len(diff["to_train"]))]
    entries = [("changed", c["id"], c["old"], c["new"]) for c in diff["changed"]]
    entries += [("added", i["id"], None, i) for i in diff["added"]]
    entries += [("removed", i["id"], i, None) for i in diff["removed"]]
    entries += [("to_eval", i["id"], i, i) for i in diff["to_eval"]] + [("to_train", i["id"], i, i) for i in diff["to_train"]]
    if not entries:
        lines.append(t("versions.diff_none"))
        return lines
    marks = {"changed": "~", "added": "+", "removed": "-", "to_eval": ">", "to_train": "<"}
    for kind, item_id, old, new in entries[:limit]:
        old_q, old_a = first_exchange(old["messages"]) if old else ("", "")
        new_q, new_a = first_exchange(new["messages"]) if new else ("", "")
        lines.append(f"{marks[kind]} {t('versions.change.' + kind)} {item_id}")
        lines += _side_by_side("Q:", old_q, new_q, width, 2)
        if kind not in ("to_eval", "to_train"):
            lines += _side_by_side("A:", old_a, new_a, width, 4)
    if len(entries) > limit:
        lines.append(t("versions.diff_more", count=len(entries) - limit))
    return lines


def cmd_datasets_diff(args) -> int:
    import global_var

    diff = global_var.datasets().diff(args.name, args.a, args.b)
    if args.json:
        print(json.dumps(diff, ensure_ascii=False))
        return 0
    for text in format_diff(diff, args.limit):
        print(text)
    return 0


def cmd_datasets_restore(args) -> int:
    import global_var

    version = global_var.datasets().restore(args.name, args.version)
    print(t("versions.restored", name=args.name, version=args.version, new=version["n"], items=version["items"],
            train=version["train"], eval=version["eval"]))
    return 0


def register_datasets(subparsers) -> None:
    datasets = subparsers.add_parser("datasets", help="list, import and export datasets")
    actions = datasets.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list datasets with item counts and their kind (conversations, or preference "
                                              "pairs or labels)")
    listing.set_defaults(func=cmd_datasets_list)
    export = actions.add_parser("export", help="export a dataset (also writes a LLaMA-Factory dataset_info.json entry, except "
                                               "for TRL's formats)")
    export.add_argument("name", help="dataset name")
    export.add_argument("--format", required=True, choices=FORMATS,
                        help=f"output format; for a preference dataset also {', '.join(PREFERENCE_FORMATS)} (a format of plain "
                             "conversations takes the chosen answers and leaves label-false items out, and says so)")
    export.add_argument("--out", required=True, help="output file path")
    export.add_argument("--split", default="all", choices=("all", "train", "eval"), help="which part to export (default: all)")
    export.add_argument("--version", type=int, default=None, metavar="N", help="export version N (default: the latest; see `datasets versions`)")
    export.set_defaults(func=cmd_datasets_export)
    imp = actions.add_parser("import", help="import a file as a new dataset")
    imp.add_argument("path", help="JSON, JSONL, CSV or Parquet file")
    imp.add_argument("--name", required=True, help="name of the new dataset")
    imp.add_argument("--format", choices=IMPORT_FORMATS, help=f"input format (detected when left out); preference data "
                                                               f"({', '.join(PREFERENCE_FORMATS)}) becomes a preference dataset")
    imp.add_argument("--max-item-chars", type=int, default=MAX_ITEM_CHARS, metavar="N",
                     help=f"refuse an item whose text (all its strings) passes N characters (default: {MAX_ITEM_CHARS:,})")
    imp.set_defaults(func=cmd_datasets_import)
    add_score_actions(actions)
    add_quality_actions(actions)
    add_show_action(actions)
    versions = actions.add_parser("versions", help="list a dataset's versions: what made each, when, and its counts")
    versions.add_argument("name", help="dataset name")
    versions.add_argument("--json", action="store_true", help="print the versions as JSON")
    versions.set_defaults(func=cmd_datasets_versions)
    diff = actions.add_parser("diff", help="show what changed between two versions of a dataset")
    diff.add_argument("name", help="dataset name")
    diff.add_argument("a", type=int, help="the older version")
    diff.add_argument("b", type=int, help="the newer version")
    diff.add_argument("--limit", type=int, default=20, help="items shown (default: 20; --json prints all)")
    diff.add_argument("--json", action="store_true", help="print the whole difference as one JSON document")
    diff.set_defaults(func=cmd_datasets_diff)
    restore = actions.add_parser("restore", help="bring a dataset back to an older version (as a new version; nothing is lost)")
    restore.add_argument("name", help="dataset name")
    restore.add_argument("version", type=int, help="the version to bring back")
    restore.set_defaults(func=cmd_datasets_restore)
