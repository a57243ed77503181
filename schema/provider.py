"""API providers: the stored row and the validated input that creates or edits one."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional
from urllib.parse import urlsplit

from sqlmodel import Field, SQLModel

# The shared numbers live where the CLI can read them without SQLModel; imported from here as before.
from schema.provider_limits import CONCURRENCY_RANGE, CONTEXT_TOKENS_RANGE, DEFAULT_CONCURRENCY, DEFAULT_CONTEXT_TOKENS
from tools.core.errors import UserError
from tools.core.workdir import validate_name


def _now() -> datetime:
    return datetime.now(timezone.utc)


class APIProvider(SQLModel, table=True):
    """An OpenAI-compatible endpoint used to generate data. Table name kept from the prototype."""

    __tablename__ = "apiprovider"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    base_url: str
    model_id: str
    api_key: Optional[str] = None
    max_concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = 60.0
    price_input_per_m: Optional[float] = None
    price_output_per_m: Optional[float] = None
    created_at: datetime = Field(default_factory=_now)
    context_tokens: Optional[int] = None  # the model's context length in tokens; None: DEFAULT_CONTEXT_TOKENS

    @property
    def prompt_token_limit(self) -> int:
        """The largest prompt one call may send, in estimated tokens."""
        return self.context_tokens or DEFAULT_CONTEXT_TOKENS

    @property
    def masked_key(self) -> str:
        return mask_api_key(self.api_key)

    def estimate_cost(self, prompt_tokens: int, completion_tokens: int) -> Optional[float]:
        """Cost in the provider's currency, or None when no prices are configured."""
        if self.price_input_per_m is None and self.price_output_per_m is None:
            return None
        return (prompt_tokens * (self.price_input_per_m or 0) + completion_tokens * (self.price_output_per_m or 0)) / 1e6


def mask_api_key(key: Optional[str]) -> str:
    """Show only enough of a key to recognise it: `sk-...abcd`."""
    if not key:
        return ""
    if len(key) < 12:
        return "****"
    prefix = key[:3] if key[:3].endswith("-") else key[:2]
    return f"{prefix}...{key[-4:]}"


def normalise_base_url(url: Optional[str]) -> str:
    """`url` as two spellings of one endpoint share it: scheme and host in lower case, no default port, no trailing slash."""
    url = (url or "").strip().rstrip("/")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        host = f"{userinfo}@{host}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{host}{parts.path.rstrip('/')}{query}"


def stored_key_for(provider: "APIProvider", base_url: Optional[str]) -> Optional[str]:
    """The provider's stored key, to be sent to `base_url`; a key only ever goes to the URL it was saved with.

    Raises UserError (enter the key again) when the provider has a key and `base_url` is another endpoint.
    """
    if not provider.api_key or normalise_base_url(base_url) == normalise_base_url(provider.base_url):
        return provider.api_key
    raise UserError("error.key_for_other_url", name=provider.name, old_url=provider.base_url,
                    new_url=(base_url or "").strip().rstrip("/"))


def _number(value, field: str, low: float, high: float, integer: bool = False, optional: bool = False):
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise UserError("error.field_required", field=field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field=field, value=value) from None
    if integer:
        if number != int(number):
            raise UserError("error.not_a_number", field=field, value=value)
        number = int(number)
    if not (low <= number <= high):
        raise UserError("error.number_range", field=field, low=low, high=high, value=value)
    return number


def _is_zero(value) -> bool:
    try:
        return value is not None and not (isinstance(value, str) and not value.strip()) and float(value) == 0
    except (TypeError, ValueError):
        return False


def validate_provider_input(
    name, base_url, model_id, api_key=None, max_concurrency=DEFAULT_CONCURRENCY, timeout_s=60, price_input_per_m=None, price_output_per_m=None,
    context_tokens=None,
) -> dict:
    """The one validation point for provider fields (UI and CLI); returns clean values or raises UserError."""
    name = validate_name(name, "provider name")
    base_url = (base_url or "").strip().rstrip("/")
    if not base_url:
        raise UserError("error.field_required", field="Base URL")
    if not base_url.startswith(("http://", "https://")):
        raise UserError("error.invalid_url", url=base_url)
    model_id = (model_id or "").strip()
    if not model_id:
        raise UserError("error.field_required", field="Model ID")
    return {
        "name": name,
        "base_url": base_url,
        "model_id": model_id,
        "api_key": (api_key or "").strip() or None,
        "max_concurrency": _number(max_concurrency, "max concurrency", *CONCURRENCY_RANGE, integer=True),
        "timeout_s": _number(timeout_s, "timeout", 1, 3600),
        "price_input_per_m": _number(price_input_per_m, "input price", 0, 1e6, optional=True),
        "price_output_per_m": _number(price_output_per_m, "output price", 0, 1e6, optional=True),
        # 0 is what the page's empty number field sends: the default, like empty
        "context_tokens": _number(None if _is_zero(context_tokens) else context_tokens, "context length",
                                  *CONTEXT_TOKENS_RANGE, integer=True, optional=True),
    }
