"""The real `python main.py generate` against a jittered provider: process start to exit vs the ideal schedule.

    python -m bench.generation_cli                                   # this checkout, 2 runs
    python -m bench.generation_cli --code-root /tmp/old --code-root . --runs 3   # side by side, alternating
    python -m bench.generation_cli --fault-rate 0.2                  # nothing lost under faults
    python -m bench.generation_cli --client-cost 760                 # CPU of the call itself: openai vs plain aiohttp

Setting (issue 28's sceptic): the project's OpenAI test server (tests/openai_test_server.py) in this process on
its own thread, each call's latency lognormal (median 0.4 s, sigma 0.5, drawn from a digest of the call's prompt
and attempt, so every run and every code root gets the same latency for the same call); the CLI as a child
process, `main.py --workdir W --lang en generate --docs bench --dataset D --base-url URL --model M --concurrency 32`,
timed from its start to its exit (os.wait4, which also gives its user+sys CPU). The doc set is generated here,
deterministically: 155 Markdown files of 4-5 sections of about 300 tokens each, one slice (one call) per section,
760 calls. A fresh work directory per run.

Ideal schedule: the server logs every call (arrival, latency); the ideal is those latencies list-scheduled onto
c slots in arrival order (each call starts on the slot that frees first; the makespan), which is what a client
with no overhead of its own and the same dispatch order would take. The lower bound max(sum/c, max) is printed
too. Split: start-up (process start to the first call's arrival), calls (first arrival to last reply), tail (last
reply to exit). The ratio wall / ideal counts the start-up and the tail: they are part of what a person waits.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.openai_test_server import FAULT_KINDS, OpenAITestServer, lognormal_latency

REPO = Path(__file__).resolve().parent.parent

_WORDS = ("buffer", "channel", "codec", "cursor", "daemon", "digest", "driver", "endpoint", "frame", "handler",
          "index", "journal", "kernel", "ledger", "manifest", "mirror", "node", "offset", "packet", "parser",
          "queue", "replica", "router", "schema", "segment", "shard", "socket", "stream", "tensor", "token",
          "vector", "window", "writer", "archive", "batch", "cache", "cluster", "commit", "config", "gateway")


def write_corpus(folder: Path, files: int = 155, sections: int = 760, seed: int = 28) -> None:
    """`files` Markdown files holding `sections` sections of about 300 tokens (each its own slice), deterministic."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    per_file, extra = divmod(sections, files)
    for index in range(files):
        lines = [f"# Module {index}: the {_WORDS[index % len(_WORDS)]} layer", ""]
        for section in range(per_file + (index < extra)):
            lines += [f"## {_WORDS[(index + section) % len(_WORDS)].title()} option {index}.{section}", ""]
            for _ in range(3):
                sentence_words = [rng.choice(_WORDS) for _ in range(60)]
                lines.append(f"The option `opt_{index}_{section}` sets the {' '.join(sentence_words)} "
                             f"and defaults to {rng.randint(1, 9999)}.")
                lines.append("")
        (folder / f"module_{index:03d}.md").write_text("\n".join(lines), encoding="utf-8")


def dataset_journal(workdir: Path, name: str) -> Path:
    """Where a work directory keeps dataset `name`'s journal (tools.core.workdir: the "dataset" area)."""
    return workdir / "dataset" / f"{name}.jsonl"


def journal_checks(workdir: Path, name: str) -> Path:
    """Where the checks' result of dataset `name` is saved (tools.quality.checks.result_path)."""
    return workdir / "dataset" / f".{name}.checks.json"


def ideal_schedule(latencies: list[float], concurrency: int) -> float:
    """The makespan of `latencies` list-scheduled onto `concurrency` slots in their order."""
    slots = [0.0] * max(1, concurrency)
    for latency in latencies:
        heapq.heappush(slots, heapq.heappop(slots) + latency)
    return max(slots)


def run_once(code_root: Path, corpus: Path, args, label: str) -> dict:
    faults = None
    if args.fault_rate:
        faulty = [k for k in FAULT_KINDS if k not in ("ok", "hang")]
        faults = {kind: args.fault_rate / len(faulty) for kind in faulty}
    with tempfile.TemporaryDirectory(prefix="bench-gencli-") as folder, \
            OpenAITestServer(latency=lognormal_latency(args.median, args.sigma, args.seed), faults=faults,
                             seed=args.seed, retry_after=0.2) as server:
        workdir = Path(folder) / "wd"
        shutil.copytree(corpus, workdir / "docs" / "bench")
        command = [sys.executable, "main.py", "--workdir", str(workdir), "--lang", "en", "generate", "--docs", "bench",
                   "--dataset", "bench", "--base-url", server.base_url, "--model", "bench-model", "--api-key", "k",
                   "--concurrency", str(args.concurrency), "--backoff", "0.2", "--var", "project_name=Bench", *args.extra]
        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(Path(folder) / "out.txt", "wb") as out:
            started = time.monotonic()
            process = subprocess.Popen(command, cwd=code_root, stdout=out, stderr=subprocess.STDOUT, env=environment)
            _, status, usage = os.wait4(process.pid, 0)
            ended = time.monotonic()
        process.returncode = os.waitstatus_to_exitcode(status)
        # The checks' result: saved before the exit (--wait-for-checks, older code) or by the background checker.
        checks_file = journal_checks(workdir, "bench")
        deadline = ended + 120
        while not checks_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        checks_saved = time.monotonic() - ended if checks_file.exists() else None
        flagged = json.loads(checks_file.read_text(encoding="utf-8"))["summary"] if checks_file.exists() else None
        output = (Path(folder) / "out.txt").read_text(encoding="utf-8", errors="replace")
        log = list(server.call_log)
        journal = dataset_journal(workdir, "bench")
        lines = journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []
    if process.returncode not in (0, 1) or not log:
        raise RuntimeError(f"{label}: exit {process.returncode}\n{output[-3000:]}")
    records = [json.loads(line) for line in lines if line.strip()]
    items = len({r["id"] for r in records if "messages" in r})
    events = [r["event"] for r in records if isinstance(r.get("event"), dict)]
    done = {e.get("unit") for e in events if e.get("type") == "unit_done"}
    failed = {e.get("unit") for e in events if e.get("type") == "unit_failed"}
    first, last = min(e["arrived"] for e in log), max(e["replied"] or e["arrived"] for e in log)
    ideal = ideal_schedule([e["latency"] for e in sorted(log, key=lambda e: e["arrived"])], args.concurrency)
    latencies = [e["latency"] for e in log]
    wall = ended - started
    cpu = usage.ru_utime + usage.ru_stime
    return {"label": label, "wall": wall, "ideal": ideal, "bound": max(sum(latencies) / args.concurrency, max(latencies)),
            "startup": first - started, "calls": last - first, "tail": ended - last, "requests": len(log),
            "items": items, "done": len(done), "failed": len(failed - done), "lost": args.calls - len(done | failed), "cpu": cpu, "exit": process.returncode,
            "checks_after_exit": checks_saved, "checks_summary": flagged,
            "summary": [line for line in output.splitlines() if line.strip()][-8:]}


def client_cost(calls: int, concurrency: int) -> None:
    """This process's CPU per call for the request the runner sends (tools.llm.runner.UnitRunner._call), through
    the openai client the runner uses and through a plain aiohttp session, against the test server in a process
    of its own (latency 0.05 s); and the CPU of importing each, in a fresh interpreter."""
    import asyncio
    import socket
    import urllib.request

    from schema.provider import APIProvider
    from tools.llm.client import make_async_client

    for module in ("openai", "aiohttp"):
        code = f"import time; t = time.process_time(); import {module}; print(time.process_time() - t)"
        cpu = min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
                  for _ in range(3))
        print(f"import {module}: {cpu:.2f} s CPU (best of 3, fresh interpreter)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tests.openai_test_server", "--port", str(port), "--latency", "0.05"],
                              cwd=REPO, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        provider = APIProvider(name="bench", base_url=base_url, model_id="m", api_key="k", max_concurrency=512, timeout_s=30)

        def body(index: int) -> dict:
            return {"model": "m", "messages": [{"role": "system", "content": "Write 3 question/answer pairs."},
                                               {"role": "user", "content": f"Source: bench.md\n\nText {index} " * 40}],
                    "temperature": 0.7, "max_tokens": 2048, "response_format": {"type": "json_object"}}

        async def drive(send, count: int) -> None:
            queue = list(range(count))

            async def worker():
                while queue:
                    await send(body(queue.pop()))

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        async def with_openai(count: int) -> float:
            client = make_async_client(provider, timeout=30)
            try:
                async def send(request):
                    return (await client.post("/chat/completions", cast_to=dict, body=request))["choices"][0]
                await drive(send, concurrency)
                started = time.process_time()
                await drive(send, count)
                return time.process_time() - started
            finally:
                await client.close()

        async def with_aiohttp(count: int) -> float:
            import aiohttp

            async with aiohttp.ClientSession(headers={"Authorization": "Bearer k"},
                                             timeout=aiohttp.ClientTimeout(total=30)) as session:
                async def send(request):
                    async with session.post(f"{base_url}/chat/completions", json=request) as response:
                        return (await response.json())["choices"][0]
                await drive(send, concurrency)
                started = time.process_time()
                await drive(send, count)
                return time.process_time() - started

        results = {"openai": [], "aiohttp": []}
        for _ in range(3):  # alternating, best of 3
            results["openai"].append(asyncio.run(with_openai(calls)))
            results["aiohttp"].append(asyncio.run(with_aiohttp(calls)))
        for name, cpus in results.items():
            print(f"{name}: {1000 * min(cpus) / calls:.2f} ms CPU per call (best of 3; {calls} calls at c = {concurrency})")
    finally:
        server.terminate()
        server.wait(10)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-root", action="append", type=Path, default=None,
                        help="checkout whose main.py runs (repeat for side by side, alternating; default: this one)")
    parser.add_argument("--runs", type=int, default=2, help="runs per code root (default 2)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--files", type=int, default=155)
    parser.add_argument("--calls", type=int, default=760, help="sections in the corpus: one call each")
    parser.add_argument("--median", type=float, default=0.4, help="median latency per call, seconds (default 0.4)")
    parser.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma (default 0.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of faulty replies (default 0)")
    parser.add_argument("--verbose", action="store_true", help="print each run's summary lines")
    parser.add_argument("--extra", action="append", default=[], metavar="ARG",
                        help="one more argument for `generate` (repeat), e.g. --extra=--wait-for-checks")
    parser.add_argument("--client-cost", type=int, default=0, metavar="N",
                        help="instead: CPU per call of N calls through the openai client and through plain aiohttp")
    args = parser.parse_args(argv)
    if args.client_cost:
        client_cost(args.client_cost, args.concurrency)
        return
    roots = [root.resolve() for root in (args.code_root or [REPO])]

    results: dict[Path, list[dict]] = {root: [] for root in roots}
    for root in roots:  # byte code written before the clock runs, as in an installed checkout
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-x", r"[/\\]\.venv[/\\]|[/\\]workdir[/\\]", str(root)],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as folder:
        corpus = Path(folder) / "bench"
        write_corpus(corpus, args.files, args.calls)
        for run in range(args.runs):
            for root in roots:
                result = run_once(root, corpus, args, f"{root.name or root}#{run + 1}")
                results[root].append(result)
                print(f"{result['label']}: wall {result['wall']:.2f} s, ideal {result['ideal']:.2f} s "
                      f"({result['wall'] / result['ideal']:.3f}x), start-up {result['startup']:.2f} s, calls "
                      f"{result['calls']:.2f} s, tail {result['tail']:.2f} s, CPU {result['cpu']:.2f} s", file=sys.stderr, flush=True)
                if args.verbose:
                    print("    " + "\n    ".join(result["summary"]), file=sys.stderr)
        # The same command with few calls: its CPU is the fixed part (start-up, slicing, exit), so the difference
        # per extra call is the CPU each call costs.
        small_args = argparse.Namespace(**{**vars(args), "files": 8, "calls": args.concurrency})
        small_corpus = Path(folder) / "small"
        write_corpus(small_corpus, small_args.files, small_args.calls)
        small = {}
        for root in roots:
            small[root] = run_once(root, small_corpus, small_args, f"{root.name or root}#small")
            print(f"{small[root]['label']}: {small[root]['requests']} calls, CPU {small[root]['cpu']:.2f} s", file=sys.stderr)

    print(f"\nc = {args.concurrency}, {args.files} Markdown files, {args.calls} sections, latency lognormal median "
          f"{args.median} s sigma {args.sigma} seed {args.seed}, faults {args.fault_rate:.0%}; load average "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print("| code | run | wall (s) | ideal list-sched. (s) | wall / ideal | calls / ideal | bound max(sum/c,max) (s) | "
          "start-up (s) | calls (s) | tail (s) | requests | done | failed | lost | pairs | pairs/s | CPU (s) | CPU ms/call | "
          "checks saved, s after exit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for root, rows in results.items():
        for index, r in enumerate(rows, 1):
            print(f"| {root} | {index} | {r['wall']:.2f} | {r['ideal']:.2f} | {r['wall'] / r['ideal']:.3f} | "
                  f"{r['calls'] / r['ideal']:.3f} | {r['bound']:.2f} | {r['startup']:.2f} | {r['calls']:.2f} | "
                  f"{r['tail']:.2f} | {r['requests']} | {r['done']} | {r['failed']} | {r['lost']} | {r['items']} | "
                  f"{r['items'] / r['wall']:.1f} | {r['cpu']:.2f} | {1000 * r['cpu'] / r['requests']:.2f} | "
                  f"{_seconds(r['checks_after_exit'])} |")
    print()
    for root, rows in results.items():
        best = min(rows, key=lambda r: r["wall"] / r["ideal"])
        cheapest = min(rows, key=lambda r: r["cpu"])
        marginal = 1000 * (cheapest["cpu"] - small[root]["cpu"]) / (cheapest["requests"] - small[root]["requests"])
        print(f"{root}: best wall/ideal {best['wall'] / best['ideal']:.3f}, median "
              f"{statistics.median(r['wall'] / r['ideal'] for r in rows):.3f}; CPU per call (whole process) best "
              f"{1000 * cheapest['cpu'] / cheapest['requests']:.2f} ms; fixed CPU ({small[root]['requests']} calls) "
              f"{small[root]['cpu']:.2f} s; CPU per extra call {marginal:.2f} ms")


if __name__ == "__main__":
    main()
