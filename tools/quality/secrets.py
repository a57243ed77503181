"""Secrets and personal data copied out of private docs: where they are, and the text with them redacted.

Two layers. Yelp's detect-secrets (a maintained detector with one regex plugin per token format: AWS,
GitHub, GitLab, Slack, Stripe, OpenAI, JWT, private keys, basic-auth URLs, npm, PyPI, Twilio, ...)
runs on every line that holds a token-like run of 20+ letters, digits or underscores. Its high-entropy and
keyword plugins are left out: on prose they flag ordinary words (measured: "Call pipeline.run() with
retries=3" gave 8 hits), and detect-secrets gives values, not positions. On top, our own patterns
give the exact spans and cover what it does not: whole private-key blocks (it flags the BEGIN line
only), OpenAI keys of any shape (its plugin needs the T3BlbkFJ marker), passwords in URLs,
`password = ...`-style assignments whose value looks random (Shannon entropy >= 3 bits per character,
8+ characters, not a placeholder such as <your-key>, ${TOKEN} or "changeme"), e-mail addresses
(except the reserved example domains), private and link-local IPv4 addresses, and internal host
names (*.internal, *.corp, *.local, *.lan, *.intranet, *.private, *.home.arpa).

A UUID-like id in prose is no secret: only an assignment to a secret-named key or a known token
format is. Each finding names the message and the character span; the value itself is never stored
in a finding. `redact_text` replaces every span with a placeholder such as [REDACTED:email].
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import Counter
from functools import lru_cache

# kind: secret (keys, tokens, passwords), personal_data (e-mail), internal_host (private IPs, host names)
PATTERNS: list[tuple[str, str, re.Pattern, int, tuple[str, ...]]] = [
    # (finding kind, placeholder label, pattern, group holding the value, substrings of the lower-cased
    # text one of which a match needs: the pattern runs only when one is there)
    ("secret", "private_key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S), 0,
     ("-----begin",)),
    ("secret", "openai_key", re.compile(r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"), 0, ("sk-",)),
    ("secret", "aws_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 0, ("akia", "asia")),
    ("secret", "github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"), 0,
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    ("secret", "slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), 0, ("xox",)),
    ("secret", "jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0, ("eyj",)),
    ("secret", "password", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:([^\s@/]+)@", re.I), 1, ("://",)),
    ("secret", "secret", re.compile(
        r"(?i)(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key"
        r"|private[_-]?key|client[_-]?secret)[\w.-]*[\"']?\s*[:=]\s*[\"']?([^\s\"',;`)]{8,})"), 1,
     ("passw", "pwd", "secret", "token", "key")),
    ("personal_data", "email", re.compile(r"(?<![\w.%+:/-])[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b"), 0, ("@",)),
    ("internal_host", "ip", re.compile(
        r"\b(?:10\.\d{1,3}|172\.(?:1[6-9]|2\d|3[01])|192\.168|169\.254)\.\d{1,3}\.\d{1,3}\b"), 0,
     ("10.", "172.", "192.168", "169.254")),
    # The internal suffix must end the name: pypi.internal.example.com is example.com's (reserved) host.
    ("internal_host", "host", re.compile(
        r"\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:internal|corp|local|lan|intranet|private|home\.arpa)\b(?![.-]?[A-Za-z0-9])",
        re.I), 0, (".internal", ".corp", ".local", ".lan", ".intranet", ".private", ".arpa")),
]
# Substrings (of the lower-cased text) one of which every match above contains, plus a run of 20+
# letters, digits or underscores (every token format detect-secrets knows holds one; a Markdown
# table's ------ does not): a text with none of them is skipped.
TRIGGERS = (b"-----begin", b"://", b"@", b"10.", b"172.", b"192.168", b"169.254",
            b"passw", b"pwd", b"secret", b"token", b"_key", b"-key", b"apikey", b"accesskey", b"authkey", b"privatekey", b".internal", b".corp", b".local",
            b".lan", b".intranet", b".private", b".arpa")
LONG_RUN = 20
# bytes.translate table: token characters become "a", everything else (UTF-8 lead bytes too) a space.
_TOKEN_BYTES = bytes(ord("a") if chr(c).isascii() and (chr(c).isalnum() or chr(c) == "_") else ord(" ")
                     for c in range(256))
_RUN = b"a" * LONG_RUN
LONG_WORD = re.compile(r"[A-Za-z0-9_]{%d,}" % LONG_RUN)
RUN_WITH_DIGIT = re.compile(r"\d")
RESERVED_DOMAINS = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost)$", re.I)
PLACEHOLDER = re.compile(r"^(?:<.*>|\$\{?.*|\{\{.*|%\(.*|\[.*\]|x{4,}.*|\*{3,}|\.{3}|(?:your|my|the)[_-].*|.*example.*"
                         r"|changeme|password\d*|secret|none|null|true|false|redacted.*)$", re.I)
MIN_ENTROPY = 3.0
# detect-secrets plugins whose secret type maps to our placeholder labels; others are "secret".
DETECT_SECRETS_LABELS = {"AWS Access Key": "aws_key", "GitHub Token": "github_token", "Slack Token": "slack_token",
                         "OpenAI Token": "openai_key", "JSON Web Token": "jwt", "Private Key": "private_key",
                         "Basic Auth Credentials": "password"}
SKIPPED_PLUGINS = {"Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword", "Public IP (ipv4)"}


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


@lru_cache(maxsize=1)
def _detect_secrets_plugins() -> tuple:
    """Instances of detect-secrets' regex plugins (imported on first use: it pulls in requests)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import default_settings

    with default_settings():
        mapping = get_mapping_from_secret_type_to_class()
    return tuple(plugin() for secret_type, plugin in sorted(mapping.items()) if secret_type not in SKIPPED_PLUGINS)


def warm_up() -> None:
    """Import and build what find_sensitive uses on first need (before a process forks a checker)."""
    _detect_secrets_plugins()


def _might_hold(text: str) -> bool:
    data = text.encode("utf-8", "surrogatepass")
    lowered = data.lower()
    return any(trigger in lowered for trigger in TRIGGERS) or _RUN in data.translate(_TOKEN_BYTES)


def candidate_texts(texts: list[str]) -> list[int]:
    """Indexes of the texts that `_might_hold` a secret, found for all texts at once: one joined bytes
    string searched with bytes.find per trigger (C speed), instead of a dozen tests per text."""
    encoded = [text.encode("utf-8", "surrogatepass") for text in texts]
    ends = list(itertools.accumulate(len(data) + 1 for data in encoded))
    joined = b"\x00".join(encoded)
    hits: set[int] = set()

    def collect(haystack: bytes, needle: bytes) -> None:
        position = haystack.find(needle)
        while position >= 0:
            index = bisect.bisect_right(ends, position)
            hits.add(index)
            # Nothing more to learn from this text: go on after it.
            position = haystack.find(needle, ends[index] if index < len(ends) else len(haystack))

    lowered = joined.lower()
    for trigger in TRIGGERS:
        collect(lowered, trigger)
    collect(joined.translate(_TOKEN_BYTES), _RUN)
    return sorted(hits)


def find_sensitive(text: str, screened: bool = False) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, label) of every secret or personal datum in `text`, non-overlapping, in order;
    `screened`: the caller already knows the text might hold one (candidate_texts picked it)."""
    if not text or not (screened or _might_hold(text)):
        return []
    spans: list[tuple[int, int, str, str]] = []
    lowered = text.lower()
    for kind, label, pattern, group, needs in PATTERNS:
        if not any(need in lowered for need in needs):
            continue
        for match in pattern.finditer(text):
            start, end = match.span(group)
            value = match.group(group)
            if label == "secret" and (PLACEHOLDER.match(value) or entropy(value) < MIN_ENTROPY):
                continue
            if label == "email" and RESERVED_DOMAINS.search(match.group(1)):
                continue
            if label == "ip" and any(int(octet) > 255 for octet in value.split(".")):
                continue
            spans.append((start, end, kind, label))
    spans.extend(_detect_secrets_spans(text))
    return _merge(spans)


def _detect_secrets_spans(text: str) -> list[tuple[int, int, str, str]]:
    """detect-secrets' token plugins on the lines that hold a run of 20+ letters, digits or underscores
    (every token format they know does); our own patterns already cover URLs, assignments and key blocks."""
    found = []
    if _RUN not in text.encode("utf-8", "surrogatepass").translate(_TOKEN_BYTES):
        return found
    offset = 0
    for line in text.split("\n"):
        # A token has digits and letters; a long identifier such as TW_RETRY__MAX_ATTEMPTS has no digit.
        if _RUN in line.encode("utf-8", "surrogatepass").translate(_TOKEN_BYTES) and any(
                RUN_WITH_DIGIT.search(run) for run in LONG_WORD.findall(line)):
            for plugin in _detect_secrets_plugins():
                for value in plugin.analyze_string(line):
                    if not value or len(value) < 6:
                        continue
                    position = line.find(value)
                    while position >= 0:
                        found.append((offset + position, offset + position + len(value), "secret",
                                      DETECT_SECRETS_LABELS.get(plugin.secret_type, "secret")))
                        position = line.find(value, position + len(value))
        offset += len(line) + 1
    return found


def _merge(spans: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
    """Overlapping spans become one (the widest keeps its label; a secret outranks personal data)."""
    rank = {"secret": 0, "personal_data": 1, "internal_host": 2}
    merged: list[tuple[int, int, str, str]] = []
    for start, end, kind, label in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]), rank[s[2]])):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            keep = last if rank[last[2]] <= rank[kind] else (last[0], last[1], kind, label)
            merged[-1] = (last[0], max(last[1], end), keep[2], keep[3])
        else:
            merged.append((start, end, kind, label))
    return merged


def redact_text(text: str) -> str:
    """`text` with every sensitive span replaced by [REDACTED:<label>]."""
    spans = find_sensitive(text)
    for start, end, _kind, label in reversed(spans):
        text = text[:start] + f"[REDACTED:{label}]" + text[end:]
    return text


def redact_value(value):
    """Every string inside a JSON-like value redacted (dicts and lists walked); the same object when
    nothing changed, so callers can tell."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        items = [redact_value(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    if isinstance(value, dict):
        items = {k: redact_value(v) for k, v in value.items()}
        return value if all(items[k] is value[k] for k in value) else items
    return value


def secret_findings(items: list[dict]) -> list[dict]:
    """Findings for every message of every item (secret, personal_data, internal_host), with spans."""
    located = [(item, index, message.get("content") or "") for item in items
               for index, message in enumerate(item.get("messages") or [])]
    findings = []
    for position in candidate_texts([text for _, _, text in located]):
        item, index, text = located[position]
        for start, end, kind, label in find_sensitive(text, screened=True):
            findings.append({"item_id": item["id"], "kind": kind, "where": {"message": index, "field": "content", "span": [start, end]},
                             "detail": {"type": label, "length": end - start}})
    return findings
