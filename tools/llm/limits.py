"""How big a prompt may be: every call's messages against its provider's context length, in estimated
tokens. The runner checks each request here before it sends it (an oversized one fails its unit, nothing
is sent); a run's preparation checks its prompts here first, and refuses the run when none would fit.

A 1.6 MB template with `{document_slice}` 100,000 times once sent 325 MB requests; the template caps
(schema.prompt) stop that template, this stops what a template, its variables and a slice add up to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from schema.provider import APIProvider
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.docs.slicing import estimate_tokens

# What a chat message costs beyond its text (role, separators): OpenAI's rule of thumb.
MESSAGE_OVERHEAD_TOKENS = 4


def _text(message: dict) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def oversized(messages: list[dict], limit: int) -> tuple[int, int] | None:
    """(characters, estimated tokens) of `messages` when they are over `limit` tokens, else None.
    Cheap at both ends: text of at most `limit` characters always fits (a token is at least one
    character), and text over 4 * `limit` characters never does (a token is at most four), so only the
    range between is estimated; a huge prompt is never scanned."""
    chars = sum(len(_text(m)) for m in messages)
    overhead = MESSAGE_OVERHEAD_TOKENS * len(messages)
    if chars + overhead <= limit:
        return None
    if math.ceil(chars / 4) + overhead > limit:
        return chars, math.ceil(chars / 4) + overhead  # the estimate's lower bound: already over
    tokens = sum(estimate_tokens(_text(m)) for m in messages) + overhead
    return (chars, tokens) if tokens > limit else None


def prompt_too_large_detail(provider: APIProvider, chars: int, tokens: int, lang: str | None = None) -> str:
    """Why one unit's request was not sent: its size, the provider's limit and what to change."""
    return t("bounded.prompt_too_large", lang, chars=chars, tokens=tokens, limit=provider.prompt_token_limit,
             provider=provider.name)


def refuse_if_none_fits(provider: APIProvider, prompts: Iterable[list[dict]], key: str = "error.bounded_prompts_too_large") -> None:
    """Raise UserError `key`, before anything is sent, when every one of `prompts` (a run's first request of
    each unit) is over the provider's limit; stops at the first that fits. No prompts: nothing to refuse."""
    limit = provider.prompt_token_limit
    count, smallest = 0, None
    for messages in prompts:
        size = oversized(messages, limit)
        if size is None:
            return
        count += 1
        if smallest is None or size[1] < smallest[1]:
            smallest = size
    if smallest is not None:
        raise UserError(key, count=count, chars=smallest[0], tokens=smallest[1],
                        limit=limit, provider=provider.name)
