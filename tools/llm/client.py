"""The one client layer for OpenAI-compatible providers: every LLM call of the workbench (generation, exam
creation, the judges, the connection test) gets its client here, sync or async, configured alike; and the
provider a command line names by its URL instead of a stored name."""

from __future__ import annotations

import time

from schema.provider import DEFAULT_CONCURRENCY, APIProvider, validate_provider_input


# A placeholder key lets keyless local servers (vLLM, Ollama) work with the official client.
NO_KEY = "no-key"


def adhoc_provider(base_url: str, model: str, api_key: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                   timeout_s: float = 60, context_tokens: int | None = None) -> APIProvider:
    """A provider given on the command line instead of by a stored name."""
    values = validate_provider_input(name=model.replace("/", "-") or "adhoc", base_url=base_url, model_id=model,
                                     api_key=api_key, max_concurrency=concurrency, timeout_s=timeout_s,
                                     context_tokens=context_tokens)
    return APIProvider(**values)


def make_sync_client(provider: APIProvider, timeout: float | None = None, max_retries: int = 0):
    from openai import OpenAI

    return OpenAI(api_key=provider.api_key or NO_KEY, base_url=provider.base_url,
                  timeout=timeout or provider.timeout_s, max_retries=max_retries)


def make_async_client(provider: APIProvider, timeout: float | None = None, max_retries: int = 0):
    """An AsyncOpenAI on openai's documented aiohttp transport: about 1 ms less client CPU per call
    than the default one, which at 32+ calls in flight decides how close a run gets to the ideal
    ceil(N/c)*latency (bench/generation.py). Close it with `await client.close()`."""
    from openai import AsyncOpenAI, DefaultAioHttpClient

    return AsyncOpenAI(api_key=provider.api_key or NO_KEY, base_url=provider.base_url,
                       timeout=timeout or provider.timeout_s, max_retries=max_retries, http_client=DefaultAioHttpClient())


def check_provider(provider: APIProvider, timeout: float | None = None) -> dict:
    """Send one tiny chat request; returns ok, latency_ms and the reply or the error."""
    started = time.perf_counter()
    try:
        client = make_sync_client(provider, timeout=min(timeout or provider.timeout_s, 30))
        response = client.chat.completions.create(
            model=provider.model_id,
            messages=[{"role": "user", "content": "Reply with the single word OK."}],
            max_tokens=8,
            temperature=0,
        )
        reply = (response.choices[0].message.content or "").strip()
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000), "reply": reply[:200], "model": response.model or provider.model_id}
    except Exception as exc:  # every failure is reported to the user, with its type and what to check
        return {"ok": False, "latency_ms": round((time.perf_counter() - started) * 1000),
                "error": f"{type(exc).__name__}: {exc}"[:500], "kind": failure_kind(exc)}


# What a failed call most likely means, by the openai client's exception class: the page turns the
# kind into advice ("settings.check.<kind>"). Order matters: a timeout is also a connection error.
FAILURE_KINDS = (
    ("APITimeoutError", "timeout"),
    ("APIConnectionError", "connection"),
    ("AuthenticationError", "auth"),
    ("PermissionDeniedError", "auth"),
    ("NotFoundError", "not_found"),
    ("RateLimitError", "rate_limit"),
    ("BadRequestError", "bad_request"),
    ("InternalServerError", "server"),
)


def failure_kind(exc: BaseException) -> str:
    """"timeout", "connection", "auth", "not_found", "rate_limit", "bad_request", "server" or "other"."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return next((kind for name, kind in FAILURE_KINDS if name in names), "other")
