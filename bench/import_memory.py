"""Peak memory of importing a generated ~200 MB dataset file, streaming (iter_conversations) or whole
(import_file). REPO only labels the output; to measure an older checkout, run this file from it:
`cd /tmp/old && PYTHONPATH=. /work/main/.venv/bin/python /work/main/bench/import_memory.py old iter FILE`.

    .venv/bin/python -m bench.import_memory . gen /tmp/big.jsonl      # write the file once
    .venv/bin/python -m bench.import_memory . iter /tmp/big.jsonl     # then measure each way in a fresh process
    .venv/bin/python -m bench.import_memory . import_file /tmp/big.jsonl
"""
import json, os, resource, sys, time

repo, mode, path = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "gen":
    target = int(sys.argv[4]) if len(sys.argv) > 4 else 200 << 20
    as_list = path.endswith(".json")
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n" if as_list else "")
        size, i = 0, 0
        while size < target:
            rec = {"messages": [{"role": "user", "content": f"问题 {i}: " + "What does Tide.run do with max_workers? " * 10},
                                {"role": "assistant", "content": f"回答 {i}: " + "It runs the pipeline on that many workers. " * 20}]}
            line = json.dumps(rec, ensure_ascii=False) + ("" if as_list else "\n")
            if as_list and i:
                line = ",\n" + line
            out.write(line)
            size += len(line.encode())
            i += 1
        out.write("\n]\n" if as_list else "")
    print(f"wrote {path}: {os.path.getsize(path) / 2**20:.0f} MB, {i} records")
    sys.exit()

import db.dataset_formats as formats  # noqa: E402

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) / 1024

base = rss_mb()
started = time.monotonic()
if mode == "import_file":
    fmt, conversations = formats.import_file(path)
    count = len(conversations)
else:
    count = sum(1 for _ in formats.iter_conversations(path))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{mode:12s} {os.path.basename(repo) or repo}: {count} records, RSS before {base:.0f} MB, peak {peak:.0f} MB "
      f"(+{peak - base:.0f} MB), {time.monotonic() - started:.1f} s")
