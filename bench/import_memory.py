"""Peak memory of importing a dataset file: the records streamed (iter_conversations), parsed whole
(import_file), written as a dataset (store: what `datasets import` and the page do before their checks), or
the whole command (command: store, then the checks that run after every import). REPO only labels the
output; to measure an older checkout, run this file from it:
`cd /tmp/old && PYTHONPATH=. /work/main/.venv/bin/python /work/main/bench/import_memory.py old store FILE`.

    .venv/bin/python -m bench.import_memory . gen /tmp/big.jsonl [BYTES]  # ~200 MB of long records, once
    .venv/bin/python -m bench.import_memory . rows /tmp/rows.jsonl 1000000 # a million short rows
    .venv/bin/python -m bench.import_memory . huge /tmp/huge.jsonl 300     # one answer of 300 MB
    .venv/bin/python -m bench.import_memory . iter /tmp/big.jsonl          # then each way in a fresh process
    .venv/bin/python -m bench.import_memory . import_file /tmp/big.jsonl
    .venv/bin/python -m bench.import_memory . store /tmp/rows.jsonl
    .venv/bin/python -m bench.import_memory . command /tmp/rows.jsonl

A file that is refused prints the refusal and the peak up to it.
"""
import json, os, resource, shutil, sys, tempfile, time

repo, mode, path = sys.argv[1], sys.argv[2], sys.argv[3]
if mode in ("gen", "rows"):
    target = int(sys.argv[4]) if len(sys.argv) > 4 else (200 << 20 if mode == "gen" else 1_000_000)
    as_list = path.endswith(".json")
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n" if as_list else "")
        size, i = 0, 0
        while (size if mode == "gen" else i) < target:
            if mode == "gen":
                rec = {"messages": [{"role": "user", "content": f"问题 {i}: " + "What does Tide.run do with max_workers? " * 10},
                                    {"role": "assistant", "content": f"回答 {i}: " + "It runs the pipeline on that many workers. " * 20}]}
            else:
                rec = {"messages": [{"role": "user", "content": f"question {i}?"}, {"role": "assistant", "content": f"answer {i}."}]}
            line = json.dumps(rec, ensure_ascii=False) + ("" if as_list else "\n")
            if as_list and i:
                line = ",\n" + line
            out.write(line)
            size += len(line.encode())
            i += 1
        out.write("\n]\n" if as_list else "")
    print(f"wrote {path}: {os.path.getsize(path) / 2**20:.0f} MB, {i} records")
    sys.exit()
if mode == "huge":
    megabytes = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n")
        out.write('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "')
        for _ in range(megabytes):
            out.write("x" * (1 << 20))
        out.write('"}]}\n')
    print(f"wrote {path}: {os.path.getsize(path) / 2**20:.0f} MB, one answer of {megabytes} MB")
    sys.exit()

from pathlib import Path  # noqa: E402

import db.dataset_formats as formats  # noqa: E402
from tools.core.errors import UserError  # noqa: E402
from tools.core.i18n import set_default_language  # noqa: E402

set_default_language("en")


def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) / 1024


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


base = rss_mb()
started = time.monotonic()
stages, outcome = [], ""
scratch = Path(tempfile.mkdtemp(prefix="bench-import-"))  # the work directory of store and command
try:
    if mode == "import_file":
        fmt, conversations = formats.import_file(path)
        count = len(conversations)
    elif mode in ("store", "command"):
        from tools.workspace import open_workspace

        workspace = open_workspace(scratch)
        fmt, conversations = formats.open_import(Path(path))
        count = workspace.datasets.import_items("bench", conversations, meta=formats.import_meta(Path(path).name, fmt))
        stages.append(f"import {peak_mb():.0f} MB")
        if mode == "command":
            from tools.quality.checks import check_after_change

            check_after_change("bench", workspace.datasets, workspace.workdir.docs)
            stages.append(f"checks {peak_mb():.0f} MB")
    else:
        count = sum(1 for _ in formats.iter_conversations(path))
    outcome = f"{count} records"
except UserError as refusal:
    outcome = f"refused ({str(refusal)[:120]})"
finally:
    shutil.rmtree(scratch, ignore_errors=True)
peak = peak_mb()
print(f"{mode:12s} {os.path.basename(repo) or repo}: {outcome}, RSS before {base:.0f} MB, peak {peak:.0f} MB "
      f"(+{peak - base:.0f} MB){' [' + ', '.join(stages) + ']' if stages else ''}, {time.monotonic() - started:.1f} s")
