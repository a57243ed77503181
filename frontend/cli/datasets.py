"""`python main.py datasets list|export|import`."""

from __future__ import annotations

from pathlib import Path

from tools.core.errors import UserError
from tools.core.i18n import t


def cmd_datasets_list(args) -> int:
    import global_var

    summaries = global_var.datasets().list()
    if not summaries:
        print("no datasets yet")
        return 0
    width = max(len(s.name) for s in summaries)
    print(f"{'name':<{width}}  {'items':>7}  {'train':>7}  {'eval':>6}  modified")
    for s in summaries:
        print(f"{s.name:<{width}}  {s.items:>7}  {s.train:>7}  {s.eval:>6}  {s.modified}")
    return 0


def cmd_datasets_export(args) -> int:
    import global_var
    from db.dataset_formats import export_dataset

    store = global_var.datasets()
    if args.split == "all":
        items = store.items(args.name)
    else:
        train, evaluation = store.train_eval(args.name)
        items = train if args.split == "train" else evaluation
    result = export_dataset(items, args.format, Path(args.out), args.name)
    print(t("datasets.exported", count=result["count"], format=args.format, path=result["path"]))
    if result["flattened"]:
        print(t("datasets.export_flattened", count=result["flattened"]))
    return 0


def cmd_datasets_import(args) -> int:
    import global_var
    from db.dataset_formats import open_import

    store = global_var.datasets()
    if store.exists(args.name):
        raise UserError("error.already_exists", what="dataset", name=args.name)
    fmt, conversations = open_import(Path(args.path), args.format)
    # Streamed into a hidden temp journal; all or nothing: the dataset appears only once every item
    # is written (a bad record half way or a kill leaves none).
    count = store.import_items(args.name, conversations, meta={"imported_from": str(args.path), "format": fmt},
                               provenance={"origin": f"imported:{Path(args.path).name}"})
    print(t("datasets.imported", count=count, name=args.name, format=fmt))
    return 0


def register_datasets(subparsers) -> None:
    from db.dataset_formats import FORMATS

    datasets = subparsers.add_parser("datasets", help="list, import and export datasets")
    actions = datasets.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list datasets with item counts")
    listing.set_defaults(func=cmd_datasets_list)
    export = actions.add_parser("export", help="export a dataset (also writes a LLaMA-Factory dataset_info.json entry)")
    export.add_argument("name", help="dataset name")
    export.add_argument("--format", required=True, choices=FORMATS, help="output format")
    export.add_argument("--out", required=True, help="output file path")
    export.add_argument("--split", default="all", choices=("all", "train", "eval"), help="which part to export (default: all)")
    export.set_defaults(func=cmd_datasets_export)
    imp = actions.add_parser("import", help="import a file as a new dataset")
    imp.add_argument("path", help="JSON or JSONL file")
    imp.add_argument("--name", required=True, help="name of the new dataset")
    imp.add_argument("--format", choices=FORMATS, help="input format (detected when left out)")
    imp.set_defaults(func=cmd_datasets_import)
