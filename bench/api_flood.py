"""A flood of streaming /v1 requests against a workbench with the tiny model loaded: do they all
complete or get refused promptly, and does the server keep answering GET meanwhile? (issue 11)

    python -m bench.api_flood                          # both variants, 200 streams, max_tokens 16
    python -m bench.api_flood --variant ui --requests 300 --retry
    python -m bench.api_flood --workdir DIR            # reuse DIR/models/tiny instead of building it
    python -m bench.api_flood --hostile --variant serve  # hostile bodies, one at a time (issue 29)

Variants: `serve` runs `main.py serve --model tiny --api-key K` and polls `GET /v1/models`; `ui`
runs a child process that loads the model and starts the web UI (page and /v1 on one port), as
`python main.py` does after "Load model", and polls `GET /`. The GET is polled every 100 ms, by a
process of its own (so the flood client's busy event loop does not delay it), from a second before
the flood until its last request has ended. With --retry, a refused client waits out
Retry-After and asks again (as the openai client does), until the time bound.

With --hostile, instead of the flood: one hostile request at a time (many tiny messages, a body over
the API's size limit, a lone surrogate), each with a 2-token chat sent half a second after it, which
shows whether the hostile one holds the one generation slot; time and outcome of both are printed.
Everything is on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-bench-flood"
START_TIMEOUT_S = 300
PROBE_EVERY_S = 0.1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(queue_limit: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_API_KEY"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    if queue_limit is not None:
        env["WORKBENCH_API_QUEUE_LIMIT"] = str(queue_limit)
    return env


def ensure_tiny_model(workdir: Path) -> None:
    if (workdir / "models" / "tiny" / "config.json").exists():
        return
    print(f"building the tiny model in {workdir} ...", flush=True)
    subprocess.run([sys.executable, "main.py", "--workdir", str(workdir), "make-tiny-model", "tiny"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL, timeout=900)


def start(variant: str, workdir: Path, port: int, queue_limit: int | None) -> subprocess.Popen:
    if variant == "serve":
        command = [sys.executable, "main.py", "--workdir", str(workdir), "--lang", "en", "serve", "--model", "tiny",
                   "--port", str(port), "--api-key", KEY]
    else:
        command = [sys.executable, "-m", "bench.api_flood", "--ui-child", str(workdir), str(port)]
    return subprocess.Popen(command, cwd=REPO, env=child_env(queue_limit), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_ui_child(workdir: str, port: int) -> None:
    """The web UI with the tiny model loaded, as `python main.py` after loading a model; blocks."""
    import global_var
    from frontend.web.app import start_server
    from tools.core.i18n import set_default_language
    from train.loading import load_model

    set_default_language("en")
    global_var.init(workdir)
    load_model("tiny")
    global_var.set_api_key(KEY)
    app = start_server("en", "127.0.0.1", port, None)
    app.block_thread()


def wait_until_ready(process: subprocess.Popen, base_url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited before answering:\n{process.stderr.read()[-3000:]}")
        try:
            models = httpx.get(base_url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2).json()
            if models.get("data"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"no model served at {base_url} after {START_TIMEOUT_S} s")


async def one_request(client: httpx.AsyncClient, url: str, body: dict, retry: bool, deadline: float) -> dict:
    """One client: 'completed', 'refused' or 'error', and how long the server took to answer."""
    result = {"attempts": 0, "refusal_s": []}
    while True:
        result["attempts"] += 1
        sent = time.monotonic()
        try:
            async with client.stream("POST", url, json=body) as response:
                text = (await response.aread()).decode(errors="replace")
        except httpx.HTTPError as exc:
            return {**result, "outcome": "error", "detail": repr(exc)}
        if response.status_code == 200:
            complete = text.rstrip().endswith("data: [DONE]") and '"error"' not in text
            return {**result, "outcome": "completed" if complete else "error", "detail": text[-200:]}
        if response.status_code not in (429, 503):
            return {**result, "outcome": "error", "detail": f"{response.status_code} {text[:200]}"}
        result["refusal_s"].append(time.monotonic() - sent)
        wait = float(response.headers.get("retry-after") or 1)
        if not retry or time.monotonic() + wait >= deadline:
            return {**result, "outcome": "refused", "detail": f"{response.status_code} {text[:200]}"}
        await asyncio.sleep(wait)


def run_probe_child(url: str) -> None:
    """GET `url` every PROBE_EVERY_S until stdin closes; prints "<monotonic start> <seconds> <ok>" per GET."""
    import threading

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=httpx.Timeout(30.0)) as client:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                ok = client.get(url).status_code == 200
            except httpx.HTTPError:
                ok = False
            print(f"{sent:.6f} {time.monotonic() - sent:.6f} {int(ok)}", flush=True)
            stop.wait(PROBE_EVERY_S)


def start_probe(url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.api_flood", "--probe-child", url], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def stop_probe(prober: subprocess.Popen) -> list[tuple[float, float, bool]]:
    """(sent at, seconds, answered 200) of every probe; the last one may still be waiting for its answer."""
    output = prober.communicate(input="", timeout=60)[0]
    return [(float(a), float(b), c == "1") for a, b, c in (line.split() for line in output.splitlines())]


async def flood(base_url: str, requests: int, max_tokens: int, seconds: float, retry: bool) -> dict:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "What is TW-1203?"}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True}
    limits = httpx.Limits(max_connections=requests + 8, max_keepalive_connections=requests + 8)
    # A connection per attempt, as separate clients would have: a retry on a kept-alive connection
    # can race the server closing it after 5 idle seconds when the client itself lags.
    headers = {"Authorization": f"Bearer {KEY}", "Connection": "close"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=httpx.Timeout(seconds)) as client:
        started = time.monotonic()
        deadline = started + seconds
        tasks = [asyncio.create_task(one_request(client, base_url + "/v1/chat/completions", body, retry, deadline))
                 for _ in range(requests)]
        done, pending = await asyncio.wait(tasks, timeout=seconds + 5)
        ended = time.monotonic()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    results = [task.result() for task in done]
    refusals = [s for r in results for s in r["refusal_s"]]
    errors = [r for r in results if r["outcome"] == "error"]
    return {
        "requests": requests,
        "completed": sum(r["outcome"] == "completed" for r in results),
        "refused": sum(r["outcome"] == "refused" for r in results),
        "errors": len(errors) + len(pending),
        "unfinished": len(pending),
        "first_error": errors[0]["detail"] if errors else None,
        "attempts": sum(r["attempts"] for r in results),
        "started": started,
        "ended": ended,
        "seconds": ended - started,
        "refusal_worst_s": max(refusals) if refusals else None,
    }


HOSTILE_CASES = ("lone surrogate", "oversized body (16 MiB)", "1,000 tiny messages", "2,047 tiny messages",
                 "3,000 tiny messages", "10,000 tiny messages")


def hostile_body(case: str) -> bytes:
    """The request body of one hostile case, as a client would send it."""
    if case == "lone surrogate":
        # json.dumps writes the lone surrogate as the escape \ud800, which is what a client sends.
        messages = [{"role": "user", "content": "What is TW-1203? \ud800"}]
    elif case.startswith("oversized"):
        messages = [{"role": "user", "content": "x" * (16 * 1024 * 1024)}]
    else:
        count = int(case.split()[0].replace(",", ""))
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(count)]
        messages[-1] = {"role": "user", "content": "last?"}
    return json.dumps({"model": "tiny", "messages": messages, "max_tokens": 2, "temperature": 0}).encode()


async def timed_post(client: httpx.AsyncClient, url: str, body: bytes, seconds: float) -> dict:
    """One POST: its status, its error code if any, and its seconds (None: no answer within `seconds`)."""
    sent = time.monotonic()
    try:
        response = await asyncio.wait_for(client.post(url, content=body), seconds)
    except asyncio.TimeoutError:
        return {"status": None, "code": None, "seconds": None}
    except httpx.HTTPError as exc:
        return {"status": type(exc).__name__, "code": None, "seconds": time.monotonic() - sent}
    try:
        code = (response.json().get("error") or {}).get("code")
    except ValueError:
        code = None
    return {"status": response.status_code, "code": code, "seconds": time.monotonic() - sent}


async def hostile(base_url: str, seconds: float) -> list[dict]:
    """Each hostile case, with a 2-token chat sent 0.5 s after it: (case, bytes, its outcome, the chat's)."""
    url = base_url + "/v1/chat/completions"
    small = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0}).encode()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", "Connection": "close"}
    rows = []
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(seconds + 5)) as client:
        for case in HOSTILE_CASES:
            body = hostile_body(case)
            attack = asyncio.create_task(timed_post(client, url, body, seconds))
            await asyncio.sleep(0.5)
            beside = await timed_post(client, url, small, seconds)
            rows.append({"case": case, "bytes": len(body), "hostile": await attack, "beside": beside})
            print(f"  {case}: {rows[-1]['hostile']} / 2-token chat: {beside}", flush=True)
    return rows


def run_hostile(variant: str, workdir: Path, args) -> list[dict]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = start(variant, workdir, port, args.queue_limit)
    try:
        wait_until_ready(process, base_url)
        return [{"variant": variant, **row} for row in asyncio.run(hostile(base_url, args.seconds))]
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    """End a server process: asked first, killed after 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def outcome_text(result: dict, bound: float) -> str:
    if result["seconds"] is None:
        return f"no answer in {bound:.0f} s"
    code = f" {result['code']}" if result["code"] else ""
    return f"{result['status']}{code}, {result['seconds']:.2f} s"


def print_hostile(rows: list[dict], bound: float) -> None:
    print(f"\nHostile requests, one at a time, each with a 2-token chat sent 0.5 s after it; bound {bound:.0f} s each\n")
    print("| variant | request | body | outcome | the 2-token chat beside it |")
    print("|---|---|---:|---|---|")
    for row in rows:
        size = f"{row['bytes']:,} B" if row["bytes"] < 10240 else f"{row['bytes'] / 1024:,.0f} KiB"
        print(f"| {row['variant']} | {row['case']} | {size} | {outcome_text(row['hostile'], bound)} "
              f"| {outcome_text(row['beside'], bound)} |")
    print(json.dumps(rows))


def probe_figures(probes: list[tuple[float, float, bool]], started: float, ended: float) -> dict:
    """GET latency before the flood and during it (a GET sent during the flood, or still waiting when it began)."""
    quiet = [seconds for sent, seconds, _ in probes if sent + seconds < started]
    during = [(seconds, ok) for sent, seconds, ok in probes if sent + seconds >= started and sent <= ended]
    latencies = [seconds for seconds, _ in during]
    return {
        "quiet_probe_median_s": statistics.median(quiet) if quiet else None,
        "probe_worst_s": max(latencies) if latencies else None,
        "probe_median_s": statistics.median(latencies) if latencies else None,
        "probes": len(during),
        "probe_failures": sum(not ok for _, ok in during),
    }


def run_variant(variant: str, workdir: Path, args) -> dict:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = start(variant, workdir, port, args.queue_limit)
    try:
        wait_until_ready(process, base_url)
        probe_path = "/" if variant == "ui" else "/v1/models"
        prober = start_probe(base_url + probe_path)
        try:
            time.sleep(2.0)  # the prober starts, then probes the quiet server for comparison
            figures = asyncio.run(flood(base_url, args.requests, args.max_tokens, args.seconds, args.retry))
            time.sleep(0.5)
        finally:
            probes = stop_probe(prober)
        return {"variant": variant, "probe": f"GET {probe_path}", **figures, **probe_figures(probes, figures["started"], figures["ended"])}
    finally:
        stop_process(process)


def fmt(seconds: float | None, unit: str = "ms") -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if unit == "ms" else f"{seconds:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=("serve", "ui", "both"), default="both")
    parser.add_argument("--requests", type=int, default=200, help="concurrent streaming requests (default: 200)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=120, help="bound on the whole flood (default: 120)")
    parser.add_argument("--retry", action="store_true", help="refused clients wait out Retry-After and ask again")
    parser.add_argument("--hostile", action="store_true",
                        help="instead of the flood: hostile requests one at a time, --seconds bounding each (issue 29)")
    parser.add_argument("--queue-limit", type=int, default=None, help="WORKBENCH_API_QUEUE_LIMIT for the server (default: its own)")
    parser.add_argument("--workdir", type=Path, default=None, help="work directory holding models/tiny (built when missing)")
    parser.add_argument("--ui-child", nargs=2, metavar=("WORKDIR", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--probe-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ui_child:
        run_ui_child(args.ui_child[0], int(args.ui_child[1]))
        return
    if args.probe_child:
        run_probe_child(args.probe_child)
        return
    variants = ("serve", "ui") if args.variant == "both" else (args.variant,)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = (args.workdir or Path(tmp) / "wd").resolve()
        ensure_tiny_model(workdir)
        if args.hostile:
            print_hostile([row for variant in variants for row in run_hostile(variant, workdir, args)], args.seconds)
            return
        rows = [run_variant(variant, workdir, args) for variant in variants]
    print(f"\n{args.requests} concurrent streams, max_tokens {args.max_tokens}, bound {args.seconds:.0f} s"
          f"{', refused clients retry after Retry-After' if args.retry else ''}\n")
    print("| variant | requests | completed (200) | refused (429/503) | errors | time to complete | worst refusal | probe | probe worst | probe median | probe median before |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['variant']} | {row['requests']} | {row['completed']} | {row['refused']} | {row['errors']} | {fmt(row['seconds'], 's')} "
              f"| {fmt(row['refusal_worst_s'])} | {row['probe']} ({row['probes']} probes, {row['probe_failures']} failed) "
              f"| {fmt(row['probe_worst_s'])} | {fmt(row['probe_median_s'])} | {fmt(row['quiet_probe_median_s'])} |")
    for row in rows:
        if row["first_error"]:
            print(f"{row['variant']}: first error: {row['first_error']}")
        if row["unfinished"]:
            print(f"{row['variant']}: {row['unfinished']} requests had not ended after {args.seconds:.0f} s")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
