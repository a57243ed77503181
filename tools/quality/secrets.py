"""Secrets and personal data copied out of private docs: where they are, and the text with them redacted.

Our own rule table (RULES) finds them, one row per token format with the gitleaks rule or detect-secrets
plugin it follows. Measured against detect-secrets 1.5.0 (Yelp's detector, the newest release), which
alone missed Hugging Face, Google, Anthropic, Aliyun and Tencent keys and Authorization headers, gave a
value instead of its position, and matched fixed lengths (Stripe 24, GitHub 36, Azure 88 characters:
a longer key kept its tail; its GitLab plugin returned only the "glpat" prefix). So here every token's
body is matched to its end: the whole token is replaced. detect-secrets stays as a backstop for the
formats the table does not name (Discord, Telegram, Mailchimp, IBM Cloud, SoftLayer, Square,
Artifactory, Cloudant), on lines that hold a run of 20+ letters and digits, its spans widened to the
whole token; its high-entropy and keyword plugins are left out (on prose they flag ordinary words).

No false alarm on ordinary docs text: a hex commit id or a UUID in prose is no secret (only an assignment
to a secret-named key or a known token format is); a token must look random (two of lower case, upper
case and digits, 3+ bits of entropy per character); placeholders such as <your-key>, ${TOKEN}, ***,
sk-xxxx..., "changeme" or AWS's ...EXAMPLE keys are left alone, and so is `tokenizer = AutoTokenizer...`.
Also found: e-mail addresses (except the reserved example domains), private and link-local IPv4
addresses, internal host names (*.internal, *.corp, *.local, *.lan, *.intranet, *.private, *.home.arpa).
Each finding names the message and the character span; the value itself is never stored in a finding.
`redact_text` replaces every span with a placeholder such as [REDACTED:huggingface_token].
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

# Tokens start where no token character stands before them. ASCII classes on purpose: in Chinese text
# a key often follows a character with no space ("密钥是sk-..."), and \b would see no boundary there.
_START = r"(?<![A-Za-z0-9_-])"


@dataclass(frozen=True)
class Rule:
    kind: str  # secret, personal_data (e-mail), internal_host (private IPs, host names)
    label: str  # the placeholder: [REDACTED:<label>]
    pattern: re.Pattern
    # Lower-case substrings one of which every match contains: the pattern runs only when one is in the text.
    needs: tuple[str, ...]
    group: int = 0  # the group that is the value (what stays around it, "AccountKey=", is no secret)
    check: str = "token"  # how a value is vetted: see _accepted
    follows: str = ""  # the gitleaks rule ids / detect-secrets plugins the row follows
    # Every match holds a run of LONG_RUN token characters: the rule is looked at only in a text that
    # has one (then `needs` may be empty), and its prefixes need not be TRIGGERS.
    long_run: bool = False
    # A pattern that every match contains and that is cheap to search for (it starts with a literal or
    # a rare character): where it is not found, the rule's own pattern, slow to fail, does not run.
    screen: re.Pattern | None = None


def _token(label: str, pattern: str, needs: tuple[str, ...], follows: str, check: str = "token",
           screen: str | None = None) -> Rule:
    return Rule("secret", label, re.compile(pattern, re.ASCII), needs, 0, check, follows, long_run=True,
                screen=re.compile(screen, re.ASCII) if screen else None)


# Order is priority: where spans overlap, the one of the earlier row names the whole.
RULES: tuple[Rule, ...] = (
    Rule("secret", "private_key", re.compile(
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----.*?"
        r"(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S), ("-----begin",), 0, "pem",
         "gitleaks private-key; detect-secrets PrivateKeyDetector (flags the BEGIN line only: here the whole block)"),
    _token("anthropic_key", _START + r"sk-ant-[A-Za-z0-9_-]{20,}", ("sk-ant-",),
           "gitleaks anthropic-api-key, anthropic-admin-api-key (sk-ant-api03-/admin01-; any length here)"),
    # OpenAI's, and those of the OpenAI-compatible providers (DeepSeek, Moonshot, ...: sk- + 32 hex).
    _token("openai_key", _START + r"sk-(?!ant-)[A-Za-z0-9_-]{20,}", ("sk-",),
           "gitleaks openai-api-key, detect-secrets OpenAIDetector (both need the T3BlbkFJ marker: not here)"),
    _token("huggingface_token", r"(?<![A-Za-z0-9_])(?:hf_|api_org_)[A-Za-z0-9]{30,}", ("hf_", "api_org_"),
           "gitleaks huggingface-access-token, huggingface-organization-api-token"),
    _token("github_token", r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
           ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
           "gitleaks github-pat, github-oauth, github-app-token, github-refresh-token, github-fine-grained-pat; "
           "detect-secrets GitHubTokenDetector"),
    _token("gitlab_token", _START + r"(?:(?:glpat|gldt|glft|glsoat|glrt|glptt|glcbt|glimt|gloas|glagent)-|GR1348941)"
           r"[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9]{2,})?",
           ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glptt-", "glcbt-", "glimt-", "gloas-", "glagent-", "gr1348941"),
           "gitleaks gitlab-pat, gitlab-pat-routable and the other gitlab-* rules; detect-secrets GitLabTokenDetector"),
    _token("google_api_key", _START + r"AIza[A-Za-z0-9_-]{35,}", ("aiza",), "gitleaks gcp-api-key"),
    _token("google_oauth_secret", _START + r"GOCSPX-[A-Za-z0-9_-]{20,}", ("gocspx-",),
           "Google's OAuth client-secret format since 2021 (GOCSPX- + 28); in neither gitleaks nor detect-secrets"),
    # Key ids are exactly 20 characters: a longer upper-case word that starts so (ASIAPACIFIC...) is none.
    _token("aws_key", r"(?<![A-Za-z0-9_])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9_])",
           ("akia", "asia", "abia", "acca", "a3t"), "gitleaks aws-access-token, detect-secrets AWSKeyDetector", "entropy"),
    Rule("secret", "aws_secret", re.compile(
        r"(?i)aws[\w.-]{0,20}?secret[\w.-]{0,20}?[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{30,}=*)", re.ASCII), ("aws",), 1,
         "entropy", "detect-secrets AWSKeyDetector's secret-key pattern (aws...secret... = 40 characters)"),
    Rule("secret", "azure_storage_key", re.compile(
        r"(?i)(?:AccountKey|SharedAccessKey)\s*=\s*([A-Za-z0-9+/]{20,}={0,2})", re.ASCII), ("accountkey", "sharedaccesskey"), 1,
         "entropy", "detect-secrets AzureStorageKeyDetector (88 characters there; Service Bus' SharedAccessKey too)"),
    # ~ and . split it: no run of 20 is sure.
    Rule("secret", "azure_client_secret", re.compile(r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,}", re.ASCII),
         ("q~",), 0, "entropy", "gitleaks azure-ad-client-secret"),
    _token("slack_token", _START + r"(?:xox[abposre]-|xoxe\.xox[bp]-|xapp-)[A-Za-z0-9-]{20,}", ("xox", "xapp-"),
           "gitleaks slack-bot-token, slack-user-token, slack-app-token, slack-config-*, slack-legacy-*; "
           "detect-secrets SlackDetector"),
    _token("slack_webhook", r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]{20,}",
           ("hooks.slack.com",), "gitleaks slack-webhook-url, detect-secrets SlackDetector", "placeholder"),
    _token("stripe_key", r"(?<![A-Za-z0-9_])(?:(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{12,}|whsec_[A-Za-z0-9]{24,})",
           ("sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_", "whsec_"),
           "gitleaks stripe-access-token, detect-secrets StripeDetector (24 characters there: the tail stayed)"),
    _token("twilio_key", r"(?<![A-Za-z0-9_])(?:SK|AC)[0-9a-fA-F]{32}(?![A-Za-z0-9_])", (),
           "gitleaks twilio-api-key (SK), detect-secrets TwilioKeyDetector (AC, SK)", screen=r"(?:SK|AC)[0-9a-fA-F]{32}"),
    _token("sendgrid_key", _START + r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", ("sg.",),
           "gitleaks sendgrid-api-token, detect-secrets SendGridDetector"),
    _token("npm_token", r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36,}", ("npm_",), "gitleaks npm-access-token, detect-secrets NpmDetector"),
    _token("pypi_token", _START + r"pypi-AgE[A-Za-z0-9_-]{50,}", ("pypi-age",),
           "gitleaks pypi-upload-token, detect-secrets PypiTokenDetector (pypi.org and test.pypi.org tokens)"),
    _token("jwt", _START + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{17,}\.(?:[A-Za-z0-9_-]+)?", ("eyj",),
           "gitleaks jwt, detect-secrets JwtTokenDetector"),
    _token("aliyun_key", r"(?<![A-Za-z0-9_])LTAI[A-Za-z0-9]{20,}", ("ltai",), "gitleaks alibaba-access-key-id"),
    _token("tencent_key", r"(?<![A-Za-z0-9_])AKID[A-Za-z0-9]{32,}", ("akid",),
           "Tencent Cloud's SecretId format (AKID + 32); in neither gitleaks nor detect-secrets"),
    # Headers: only the credential goes, "Authorization: Bearer " stays.
    Rule("secret", "auth_header", re.compile(
        r"(?i)\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:[A-Za-z][A-Za-z-]*[ \t]+)?"
        r"([A-Za-z0-9._~+/-]{8,}=*)", re.ASCII), ("authorization",), 1, "header",
         "gitleaks curl-auth-header (here in any text, not only a curl command)"),
    Rule("secret", "auth_header", re.compile(r"(?i)\bbearer[ \t]+([A-Za-z0-9._~+/-]{20,}=*)", re.ASCII), ("bearer",), 1, "token",
         "gitleaks curl-auth-header's Bearer form, outside an Authorization header"),
    # curl -u user:password (the password only; a bare -u user asks for it).
    Rule("secret", "password", re.compile(
        r"\bcurl\b[^\n]*?[ \t](?:-u|--user)(?:=|[ \t]+)[\"']?[^\s:\"']*:([^\s\"']{3,})", re.ASCII), ("curl",), 1,
         "credential", "gitleaks curl-auth-user (and its allowlist: test, token, <user:password>, xxx)"),
    # scheme://user:password@host, the user may be empty (redis://:password@host).
    Rule("secret", "password", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@]*:([^\s@/]+)@", re.I | re.ASCII), ("://",), 1,
         "placeholder", "detect-secrets BasicAuthDetector (a user name is optional here)",
         screen=re.compile(r"://[^\s:/@]*:[^\s@/]+@", re.ASCII)),
    # key = value, where the key names a secret and the value looks like one (see _assignment_secret).
    Rule("secret", "secret", re.compile(
        r"(?i)(?<![\w.-])([\w.-]*?(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key"
        r"|auth[_-]?key|private[_-]?key|credentials?)[\w.-]*)[\"']?[ \t]*[:=][ \t]*[\"']?([^\s\"',;`)]{8,})", re.ASCII),
         ("passw", "pwd", "secret", "token", "key", "credential"), 2, "assignment",
         "gitleaks generic-api-key with its allowlists; detect-secrets KeywordDetector's keys",
         # The key word, the rest of its name and the = or : : a text that says "keys" or "token" in prose
         # has none, and the pattern (a lazy scan of every word) is the slowest of the table.
         screen=re.compile(r"(?i)(?:passw|pwd|secret|token|key|credential)[\w.-]*[\"']?[ \t]*[:=]", re.ASCII)),
    Rule("personal_data", "email", re.compile(
        r"(?<![\w.%+:/-])[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b"), ("@",), 0, "email",
         screen=re.compile(r"@(?<=[A-Za-z0-9._%+-]@)[A-Za-z0-9-]+\.[A-Za-z0-9-]")),
    Rule("internal_host", "ip", re.compile(
        r"\b(?:10\.\d{1,3}|172\.(?:1[6-9]|2\d|3[01])|192\.168|169\.254)\.\d{1,3}\.\d{1,3}\b"),
         ("10.", "172.", "192.168", "169.254"), 0, "ip"),
    # The internal suffix must end the name: pypi.internal.example.com is example.com's (reserved) host.
    Rule("internal_host", "host", re.compile(
        r"\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:internal|corp|local|lan|intranet|private|home\.arpa)\b(?![.-]?[A-Za-z0-9])",
        re.I), (".internal", ".corp", ".local", ".lan", ".intranet", ".private", ".arpa"), 0, "none",
         screen=re.compile(r"\.(?<=[a-z0-9]\.)(?:internal|corp|local|lan|intranet|private|home\.arpa)\b(?![.-]?[A-Za-z0-9])", re.I)),
)
LONG_RUN = 20
# Substrings (of the lower-cased text) one of which every match of a rule that is not `long_run`
# contains; a text with none of them and no run of LONG_RUN token characters is skipped.
TRIGGERS = (b"-----begin", b"://", b"@", b"10.", b"172.", b"192.168", b"169.254",
            b"passw", b"pwd", b"secret", b"token", b"_key", b"-key", b"apikey", b"accesskey", b"authkey", b"privatekey",
            b"credential", b"authorization", b"bearer", b"accountkey", b"q~", b"curl",
            b".internal", b".corp", b".local", b".lan", b".intranet", b".private", b".arpa")
# candidate_texts scans the joined texts once per trigger (about 0.03 s per 40 MB each); a family of
# triggers is found by one scan for what they share, then looked for only in the texts that hold it:
# "key" for the triggers that hold it, and "00." in the text with its digits made 0 for the private
# IPv4 prefixes (10. 172. 192.168 169.254 all hold two digits and a dot).
_KEY = b"key"
_KEY_TRIGGERS = tuple(trigger for trigger in TRIGGERS if _KEY in trigger)
_IP_TRIGGERS = (b"10.", b"172.", b"192.168", b"169.254")
_IP_SHARED = b"00."
_DIGITS_TO_0 = bytes.maketrans(b"123456789", b"000000000")
# The host-name suffixes all start with a dot: one regex that stops at each dot and tries them costs less
# than a scan per suffix.
_HOST_TRIGGERS = tuple(trigger for trigger in TRIGGERS if trigger.startswith(b"."))
_HOST_SUFFIX = re.compile(rb"\.(?:" + b"|".join(re.escape(trigger[1:]) for trigger in _HOST_TRIGGERS) + rb")")
_SCANNED_TRIGGERS = tuple(trigger for trigger in TRIGGERS
                          if _KEY not in trigger and trigger not in _IP_TRIGGERS and trigger not in _HOST_TRIGGERS)
# bytes.translate table: token characters (letters, digits, _ and -) become "a", everything else (UTF-8
# lead bytes too) a space. A Markdown table's |-----| may pass: it is only looked at more closely.
_TOKEN_BYTES = bytes(ord("a") if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "_-") else ord(" ") for c in range(256))
_RUN = b"a" * LONG_RUN


def _by_need(long_run: bool) -> list[tuple[str, tuple[int, ...]]]:
    """need -> indexes of the rules (long_run or not) that need it."""
    table: dict[str, list[int]] = {}
    for index, rule in enumerate(RULES):
        if rule.long_run == long_run:
            for need in rule.needs:
                table.setdefault(need, []).append(index)
    return [(need, tuple(indexes)) for need, indexes in table.items()]


_SHORT_NEEDS = _by_need(False)
_LONG_NEEDS = _by_need(True)
_LONG_ANY = tuple(index for index, rule in enumerate(RULES) if rule.long_run and not rule.needs)

LONG_WORD = re.compile(r"[A-Za-z0-9_]{%d,}" % LONG_RUN)
RUN_WITH_DIGIT = re.compile(r"\d")
RESERVED_DOMAINS = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost)$", re.I)
# A value that is a placeholder, whole...
PLACEHOLDER = re.compile(r"^(?:<.*>|\$\{?.*|\{\{.*|%\(.*|\[.*\]|x{3,}.*|\*+|\.{3}|(?:your|my|the)[_-].*|.*example.*"
                         r"|(?:your|my)[_-]?(?:pass\w*|pwd|token|secret|key|api\w*)|changeme|change_?it|pass(?:word|wd)?\d*"
                         r"|pwd|secret|token"
                         r"|test|none|null|true|false|redacted.*)$", re.I)
# ... or that holds filler somewhere (sk-xxxxxxxx, AKIA****, T00000000/B00000000/XXXXXXXX).
FILLER = re.compile(r"x{6,}|\*{3,}|\.{3}|…|[<>]|\$\{", re.I)
MIN_ENTROPY = 3.0
KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/=]{16,}")
# A run of capitalised words in a token's place (hf_requiredCharacteristicTypesForDisplayMetadata is an
# Objective-C name): a random token of 20+ letters almost never reads so.
CAMEL_WORDS = re.compile(r"^[a-z]*(?:[A-Z][a-z]{2,}){3,}$")
# Key names that hold no secret though they say "token" or "key" (gitleaks generic-api-key's allowlist):
# token_url, api_key_id, secret_name, max_tokens, tokenizer, csrf_token, public_key ...
HARMLESS_KEY = re.compile(r"(?:[_.-]|(?<=[a-z])(?=[A-Z]))(?i:id|ids|name|names|file|path|dir|url|uri|endpoint|length|len"
                          r"|size|count|limit|type|kind|format|field|header|prefix|ttl|expiry|expires|expiration|env|var|hint"
                          r"|policy|provider|tokens)(?:[_.-]?\d+)?$|(?i:tokeniz)|^(?i:csrf|xsrf|public|pub)[_.-]")
CODE_LIKE = re.compile(r"[(\[{}<>]|^//")
# A name in code, not a value: snake_case or dotted lower case with a _ or . (self._tokenizer.eos_token,
# -soft_coef_1), or CamelCase words (Qwen2_5OmniToken2WavConfig). A random token is rarely either.
# (Each pattern has one way to match: no backtracking blow-up on a long value.)
SNAKE_NAME = re.compile(r"^-?[a-z_][a-z0-9_.]*$")
CAMEL_NAME = re.compile(r"^[A-Z][a-z0-9_]*(?:[A-Z][a-z0-9_]+)*(?:\.[A-Za-z0-9_]+)*$")
PLAIN_WORD = re.compile(r"^[A-Za-z_.-]+$")
# detect-secrets plugins the table above covers (or that flag ordinary prose): not run.
SKIPPED_PLUGINS = {"Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword", "Public IP (ipv4)",
                   "AWS Access Key", "Azure Storage Account access key", "Basic Auth Credentials", "GitHub Token",
                   "GitLab Token", "JSON Web Token", "NPM tokens", "OpenAI Token", "Private Key", "PyPI Token",
                   "SendGrid API Key", "Slack Token", "Stripe Access Key", "Twilio API Key"}
DETECT_SECRETS_LABELS = {"Discord Bot Token": "discord_token", "Telegram Bot Token": "telegram_token",
                         "Mailchimp Access Key": "mailchimp_key"}
KIND_ORDER = ("secret", "personal_data", "internal_host")  # which wins where spans of two kinds overlap
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_random(value: str) -> bool:
    """Two of lower case, upper case and digits, and 3+ bits per character: a generated token, not a
    hyphenated word (sk-learn-compatible-...), a CamelCase name or a run of one letter."""
    classes = any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
    return (classes >= 2 and entropy(value) >= MIN_ENTROPY
            and not any(CAMEL_WORDS.match(part) for part in re.split(r"[_.-]", value) if len(part) >= LONG_RUN))


def _is_placeholder(value: str) -> bool:
    return bool(PLACEHOLDER.match(value) or FILLER.search(value))


def _code_name(value: str) -> bool:
    return bool(SNAKE_NAME.match(value) and ("_" in value or "." in value)) or bool(CAMEL_NAME.match(value))


def _assignment_secret(key: str, value: str) -> bool:
    """`key = value` holds a secret: the key is no id, name, URL or count (token_url, max_tokens,
    tokenizer), and the value is no placeholder, no code (os.environ["X"], get_token()), no plain
    identifier or word (gitleaks' allowlist) and random enough."""
    return not (HARMLESS_KEY.search(key) or _is_placeholder(value) or CODE_LIKE.search(value) or _code_name(value)
                or PLAIN_WORD.match(value) or entropy(value) < MIN_ENTROPY)


def _accepted(rule: Rule, match: re.Match) -> bool:
    value = match.group(rule.group)
    check = rule.check
    if check == "none":
        return True
    if check == "pem":  # key material, not "-----BEGIN PRIVATE KEY-----\nanything\n-----END..."
        return KEY_MATERIAL.search(value) is not None
    if check == "email":
        return not RESERVED_DOMAINS.search(match.group(1))
    if check == "ip":
        return all(int(octet) <= 255 for octet in value.split("."))
    if check == "assignment":
        return _assignment_secret(match.group(1), value)
    if _is_placeholder(value):
        return False
    if check == "token":
        return looks_random(value)
    if check == "header":  # "authorization: Optional[str]" is a type, not a credential
        return looks_random(value) and not (PLAIN_WORD.match(value) and len(value) < LONG_RUN)
    if check == "entropy":
        return entropy(value) >= MIN_ENTROPY
    if check == "credential":  # a password typed by a person: no entropy test, but not "yyy"
        return len(value) >= 6 and len(set(value)) >= 4
    return True  # "placeholder": anything that is not one


@lru_cache(maxsize=1)
def _detect_secrets_plugins() -> tuple:
    """Instances of the detect-secrets plugins the table does not cover (imported on first use: it pulls in requests)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import default_settings

    with default_settings():
        mapping = get_mapping_from_secret_type_to_class()
    return tuple(plugin() for secret_type, plugin in sorted(mapping.items()) if secret_type not in SKIPPED_PLUGINS)


def warm_up() -> None:
    """Import and build what find_sensitive uses on first need (before a process forks a checker)."""
    _detect_secrets_plugins()


def _has_long_run(data: bytes) -> bool:
    return _RUN in data.translate(_TOKEN_BYTES)


def might_hold(text: str) -> bool:
    """Whether `text` holds a trigger or a long run of token characters: if not, it holds nothing to find."""
    data = text.encode("utf-8", "surrogatepass")
    lowered = data.lower()
    return any(trigger in lowered for trigger in TRIGGERS) or _has_long_run(data)


def candidate_texts(texts: list[str]) -> list[int]:
    """Indexes of the texts that `might_hold` a secret, found for all texts at once: the distinct texts
    joined into one bytes string searched with bytes.find per trigger (C speed), instead of a dozen
    tests per text (a text repeated in many items, a system prompt, is searched once)."""
    positions: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        positions.setdefault(text, []).append(index)
    distinct = list(positions)
    encoded = [text.encode("utf-8", "surrogatepass") for text in distinct]
    ends = list(itertools.accumulate(len(data) + 1 for data in encoded))
    joined = b"\x00".join(encoded)
    hits: set[int] = set()

    def collect(haystack: bytes, needle: bytes, narrower: tuple[bytes, ...] = (), narrowed: bytes = b"") -> None:
        """Add the texts whose `haystack` holds `needle` (and, if given, one of the `narrower` triggers
        in their `narrowed` bytes)."""
        position = haystack.find(needle)
        while position >= 0:
            index = bisect.bisect_right(ends, position)
            end = ends[index] if index < len(ends) else len(haystack)
            if not narrower or any(trigger in narrowed[end - len(encoded[index]) - 1:end] for trigger in narrower):
                hits.add(index)
            # Nothing more to learn from this text: go on after it.
            position = haystack.find(needle, end)

    lowered = joined.lower()
    for trigger in _SCANNED_TRIGGERS:
        collect(lowered, trigger)
    match = _HOST_SUFFIX.search(lowered)
    while match:
        index = bisect.bisect_right(ends, match.start())
        hits.add(index)
        match = _HOST_SUFFIX.search(lowered, ends[index] if index < len(ends) else len(lowered))
    collect(lowered, _KEY, _KEY_TRIGGERS, lowered)
    collect(lowered.translate(_DIGITS_TO_0), _IP_SHARED, _IP_TRIGGERS, lowered)
    del lowered
    collect(joined.translate(_TOKEN_BYTES), _RUN)
    return sorted(index for hit in hits for index in positions[distinct[hit]])


def find_sensitive(text: str, screened: bool = False) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, label) of every secret or personal datum in `text`, non-overlapping, in order;
    `screened`: the caller already knows the text might hold one (candidate_texts picked it)."""
    if not text or not (screened or might_hold(text)):
        return []
    lowered = text.lower()
    long_run = _has_long_run(text.encode("utf-8", "surrogatepass"))
    chosen: set[int] = set()
    for need, indexes in _SHORT_NEEDS + _LONG_NEEDS if long_run else _SHORT_NEEDS:
        if need in lowered:
            chosen.update(indexes)
    if long_run:
        chosen.update(_LONG_ANY)
    spans: list[tuple[int, int, str, str, int]] = []
    for index in sorted(chosen):
        rule = RULES[index]
        if rule.screen is not None and rule.screen.search(text) is None:
            continue
        for match in rule.pattern.finditer(text):
            if _accepted(rule, match):
                start, end = match.span(rule.group)
                spans.append((start, end, rule.kind, rule.label, index))
    if long_run:
        spans.extend(_detect_secrets_spans(text))
    return _merge(spans)


def _widen(line: str, start: int, end: int) -> tuple[int, int]:
    """A value's span grown to the whole token around it (a plugin's fixed length can stop short)."""
    while start > 0 and line[start - 1] in _TOKEN_CHARS:
        start -= 1
    while end < len(line) and line[end] in _TOKEN_CHARS:
        end += 1
    return start, end


def _detect_secrets_spans(text: str) -> list[tuple[int, int, str, str, int]]:
    """detect-secrets' remaining token plugins on the lines that hold a run of 20+ letters, digits or
    underscores with a digit in it (every token format they know does)."""
    found = []
    offset = 0
    for line in text.split("\n"):
        # A token has digits and letters; a long identifier such as TW_RETRY__MAX_ATTEMPTS has no digit.
        if any(RUN_WITH_DIGIT.search(run) for run in LONG_WORD.findall(line)):
            for plugin in _detect_secrets_plugins():
                for value in plugin.analyze_string(line):
                    value = value.strip(" \t\"'=:")
                    if len(value) < 6:
                        continue
                    position = line.find(value)
                    while position >= 0:
                        start, end = _widen(line, position, position + len(value))
                        found.append((offset + start, offset + end, "secret",
                                      DETECT_SECRETS_LABELS.get(plugin.secret_type, "secret"), len(RULES)))
                        position = line.find(value, position + len(value))
        offset += len(line) + 1
    return found


def _merge(spans: list[tuple[int, int, str, str, int]]) -> list[tuple[int, int, str, str]]:
    """Overlapping spans of one kind become one, named by the earliest rule among them (a known token
    format over an assignment). A span that overlaps one of a higher kind is dropped: in
    postgres://u:Qv7#pLx9@pg.acme.io the password goes, not an "e-mail" pLx9@pg.acme.io with the host."""
    kept: list[list] = []  # sorted, not overlapping
    for kind in KIND_ORDER:
        merged: list[list] = []
        starts = [span[0] for span in kept]
        for start, end, _kind, label, priority in sorted(span for span in spans if span[2] == kind):
            after = bisect.bisect_left(starts, end)  # kept spans that start before this one ends
            if after and kept[after - 1][1] > start:
                continue
            if merged and start < merged[-1][1]:
                last = merged[-1]
                last[1] = max(last[1], end)
                if priority < last[4]:
                    last[2:] = [kind, label, priority]
            else:
                merged.append([start, end, kind, label, priority])
        kept = sorted(kept + merged)
    return [(start, end, kind, label) for start, end, kind, label, _priority in sorted(kept)]


def redact_text(text: str, screened: bool = False) -> str:
    """`text` with every sensitive span replaced by [REDACTED:<label>]."""
    spans = find_sensitive(text, screened)
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
    found: dict[str, list[tuple[int, int, str, str]]] = {}  # per distinct text: a system prompt is searched once
    for position in candidate_texts([text for _, _, text in located]):
        item, index, text = located[position]
        spans = found.get(text)
        if spans is None:
            spans = found[text] = find_sensitive(text, screened=True)
        for start, end, kind, label in spans:
            findings.append({"item_id": item["id"], "kind": kind, "where": {"message": index, "field": "content", "span": [start, end]},
                             "detail": {"type": label, "length": end - start}})
    for item in items:  # a tool call's arguments (few items have calls)
        for index, message in enumerate(item.get("messages") or []):
            for number, call in enumerate(message.get("tool_calls") or []):
                for start, end, kind, label in find_sensitive(call["function"]["arguments"]):
                    findings.append({"item_id": item["id"], "kind": kind,
                                     "where": {"message": index, "field": f"tool_calls[{number}].function.arguments", "span": [start, end]},
                                     "detail": {"type": label, "length": end - start}})
    return findings
