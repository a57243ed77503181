"""A flood of /v1 requests must not freeze the workbench (issue 11): more streaming requests than
the server's 40 worker threads either complete or get 429 at once, while the page keeps answering.
The model is a fake whose generation sleeps, behind the real queue; no tiny model is needed."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from frontend.web.app import start_server
from frontend.api import openai_api
from tools.core.device_queue import DeviceQueue
from train import inference

PIECES, PIECE_S = 6, 0.01  # one fake generation: about 60 ms


class FakeModel:
    """Stands in for train.loading's LoadedModel: require_model returns it, stream_locked ignores it."""

    source, adapter_run = "m", None  # served as "m", the model the requests name


def fake_stream_locked(loaded, conversation, params, adapter, stop_event, usage, options=None):
    """Generation that takes PIECES * PIECE_S seconds of its thread, like torch would; ends on Stop."""
    generated = 0
    for index in range(PIECES):
        if stop_event is not None and stop_event.is_set():
            break
        time.sleep(PIECE_S)
        generated += 1
        yield f"w{index} "
    if usage is not None:
        usage.update(prompt_tokens=3, completion_tokens=generated, total_tokens=3 + generated,
                     finish_reason="length" if generated == PIECES else "cancelled")


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(inference, "require_model", lambda need_adapter=False: FakeModel())
    monkeypatch.setattr(inference, "stream_locked", fake_stream_locked)


LIMIT = 12  # places in the /v1 line of the server under test


@pytest.fixture
def page_url(workdir, monkeypatch):
    """The web UI (page + /v1 on one port, LIMIT places in line) on a free loopback port; yields its base URL."""
    monkeypatch.setenv(openai_api.QUEUE_LIMIT_ENV, str(LIMIT))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = start_server("en", "127.0.0.1", port, None)
    yield f"http://127.0.0.1:{port}"
    app.close()


def _body(stream: bool = True) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "stream": stream}


async def _flood(base_url: str, requests: int, seconds: float) -> tuple[list[dict], list[float]]:
    """`requests` concurrent streaming requests while GET / is polled; everything ends within `seconds`."""
    results: list[dict] = []
    page_latencies: list[float] = []
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=requests + 4, max_keepalive_connections=requests + 4)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(seconds)) as client:

        async def ask() -> None:
            sent = time.monotonic()
            try:
                async with client.stream("POST", base_url + "/v1/chat/completions", json=_body()) as response:
                    answered = time.monotonic() - sent
                    text = (await response.aread()).decode()
                results.append({"status": response.status_code, "answered_s": answered, "text": text,
                                "retry_after": response.headers.get("retry-after")})
            except httpx.HTTPError as exc:
                results.append({"status": None, "error": repr(exc)})

        async def poll_page() -> None:
            while not done.is_set():
                sent = time.monotonic()
                try:
                    response = await client.get(base_url + "/", timeout=seconds)
                    response.raise_for_status()
                    page_latencies.append(time.monotonic() - sent)
                except httpx.HTTPError:
                    page_latencies.append(float("inf"))
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll_page())
        try:
            await asyncio.wait_for(asyncio.gather(*(ask() for _ in range(requests))), seconds + 2)
        except asyncio.TimeoutError:
            pass
        done.set()
        await asyncio.wait_for(poller, seconds)
    return results, page_latencies


def test_more_streams_than_worker_threads_complete_or_get_429_and_the_page_answers(fake_model, page_url):
    requests = 60  # more than the 40 worker threads starlette and gradio share
    results, page_latencies = asyncio.run(_flood(page_url, requests, seconds=12))

    assert len(results) == requests, f"{requests - len(results)} requests never ended (the server froze)"
    completed = [r for r in results if r["status"] == 200]
    refused = [r for r in results if r["status"] == 429]
    assert len(completed) + len(refused) == requests, [r for r in results if r["status"] not in (200, 429)][:3]
    # Every place in line that was taken was answered in full; refusals only came with a full line.
    assert len(completed) >= LIMIT
    for result in completed:
        assert result["text"].rstrip().endswith("data: [DONE]") and '"error"' not in result["text"]
        assert "".join(json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                       for line in result["text"].splitlines()
                       if line.startswith("data: {") and json.loads(line[6:])["choices"]) == "w0 w1 w2 w3 w4 w5 "
    for result in refused:
        error = json.loads(result["text"])["error"]
        assert error["code"] == "queue_full" and error["type"] == "rate_limit_error" and "queue is full" in error["message"]
        assert int(result["retry_after"]) >= 1
        assert result["answered_s"] < 3, "a full line is answered at once"
    assert page_latencies and max(page_latencies) < 3, f"GET / took up to {max(page_latencies):.1f} s during the flood"
    deadline = time.monotonic() + 5
    while inference.queue_status() != {"busy": False, "waiting": 0} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert inference.queue_status() == {"busy": False, "waiting": 0}


# ---------------------------------------------------------------- clients that leave


def _slow_stream_locked(release: threading.Event, seen_stop: threading.Event):
    def stream_locked(loaded, conversation, params, adapter, stop_event, usage, options=None):
        yield "first "
        while not stop_event.is_set() and not release.is_set():
            time.sleep(0.01)
        if stop_event.is_set():
            seen_stop.set()
            return
        yield "last"
    return stream_locked


def test_a_client_that_leaves_gives_up_its_place_and_a_cut_stream_stops_generating(monkeypatch, page_url):
    release, seen_stop = threading.Event(), threading.Event()
    monkeypatch.setattr(inference, "require_model", lambda need_adapter=False: FakeModel())
    monkeypatch.setattr(inference, "stream_locked", _slow_stream_locked(release, seen_stop))
    url = page_url + "/v1/chat/completions"

    def wait_for(condition, seconds: float = 5) -> bool:
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        return condition()

    with httpx.Client(timeout=10) as first, httpx.Client(timeout=10) as second:
        # The first stream holds the device; the second waits in line, then leaves.
        with first.stream("POST", url, json=_body()) as holding:
            assert holding.status_code == 200
            lines = holding.iter_lines()
            assert '"role": "assistant"' in next(lines)
            waiting = threading.Thread(target=lambda: _leave_after(second, url, 0.5), daemon=True)
            waiting.start()
            assert wait_for(lambda: inference.queue_status()["waiting"] == 1)
            waiting.join(5)
            assert wait_for(lambda: inference.queue_status()["waiting"] == 0), "the client that left kept its place"
        # Leaving the first stream mid-answer stops its generation and frees the device.
        assert seen_stop.wait(5), "the cut stream kept generating"
        assert wait_for(lambda: inference.queue_status() == {"busy": False, "waiting": 0})
    release.set()
    reply = httpx.post(url, json=_body(stream=False), timeout=10).json()
    assert reply["choices"][0]["message"]["content"] == "first last"


def _leave_after(client: httpx.Client, url: str, seconds: float) -> None:
    try:
        client.post(url, json=_body(), timeout=seconds)
    except httpx.TimeoutException:
        client.close()  # the connection goes away with the client


# ---------------------------------------------------------------- the line's length


def test_queue_limit_from_env_is_checked(monkeypatch):
    monkeypatch.delenv(openai_api.QUEUE_LIMIT_ENV, raising=False)
    assert openai_api.queue_limit() == openai_api.QUEUE_LIMIT
    monkeypatch.setenv(openai_api.QUEUE_LIMIT_ENV, " 5 ")
    assert openai_api.queue_limit() == 5
    for wrong in ("0", "-3", "many"):
        monkeypatch.setenv(openai_api.QUEUE_LIMIT_ENV, wrong)
        with pytest.raises(Exception) as raised:
            openai_api.queue_limit()
        assert "WORKBENCH_API_QUEUE_LIMIT must be a positive whole number" in raised.value.render()


def test_a_full_line_answers_429_with_retry_after():
    admission = openai_api.Admission(2)
    admission.enter()
    admission.enter()
    with pytest.raises(openai_api.ApiError) as raised:
        admission.enter()
    response = raised.value.response()
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert json.loads(response.body)["error"]["code"] == "queue_full"
    admission.leave(4.5)
    admission.enter()
    with pytest.raises(openai_api.ApiError) as raised:
        admission.enter()
    assert raised.value.headers["Retry-After"] == "2"  # 0.8 * 1 s + 0.2 * 4.5 s, rounded up
    assert admission.taken() == 2


# ---------------------------------------------------------------- the device queue, awaited


def test_async_waiters_share_the_line_with_threads_and_hold_no_thread():
    from tools.core.errors import UserError

    queue = DeviceQueue()
    assert queue.acquire()  # a thread (the Chat tab, say) generates

    async def scenario() -> None:
        stop = threading.Event()
        leaving = asyncio.create_task(queue.acquire_async(stop, poll=0.05))
        staying = asyncio.create_task(queue.acquire_async(timeout=5, poll=1.0))
        await asyncio.sleep(0.05)
        assert queue.status() == {"busy": True, "waiting": 2}
        stop.set()
        assert await leaving is False
        assert queue.status() == {"busy": True, "waiting": 1}
        threading.Timer(0.05, queue.release).start()  # the thread finishes
        started = time.monotonic()
        assert await staying is True
        assert time.monotonic() - started < 0.6, "woken by the release, not by its 1 s poll"
        with pytest.raises(UserError):
            await queue.acquire_async(timeout=0.1, poll=0.02)
        # A thread waiting behind an async holder gets the device when it is released.
        waiter = threading.Thread(target=lambda: queue.acquire() and queue.release())
        waiter.start()
        await asyncio.sleep(0.05)
        queue.release()
        waiter.join(5)
        assert not waiter.is_alive()

    asyncio.run(scenario())
    assert queue.status() == {"busy": False, "waiting": 0}
