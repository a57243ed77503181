"""Small synchronous calls to OpenAI-compatible providers (the generator has its own async client)."""

from __future__ import annotations

import time

from schema.provider import APIProvider


def make_sync_client(provider: APIProvider, timeout: float | None = None, max_retries: int = 0):
    from openai import OpenAI

    # A placeholder key lets keyless local servers (vLLM, Ollama) work with the official client.
    return OpenAI(api_key=provider.api_key or "no-key", base_url=provider.base_url,
                  timeout=timeout or provider.timeout_s, max_retries=max_retries)


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
    except Exception as exc:  # every failure is reported to the user, with its type
        return {"ok": False, "latency_ms": round((time.perf_counter() - started) * 1000), "error": f"{type(exc).__name__}: {exc}"[:500]}
