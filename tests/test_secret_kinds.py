"""Secret formats found and redacted whole, one test per kind (issue 29: a Hugging Face token stayed in
a journal after `datasets redact`; Google keys, bare GitLab tokens, Authorization headers, Azure
AccountKey=, redis://:password@host were not found; a Stripe key longer than 24 characters kept its
tail); placeholders and ordinary docs text (commit ids, UUIDs, code) are left alone.

The tokens are built at run time from a prefix and a seeded random body, so that no secret scanner
takes this file for a leak and every body looks as random as a real one."""

from __future__ import annotations

import json
import random
import string

import pytest

import global_var
from tools.quality.redact import redact_dataset, redacted_messages, redaction_plan
from tools.quality.secrets import RULES, candidate_texts, find_sensitive, redact_text

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"


def body(length: int, alphabet: str = ALNUM, seed: int = 0) -> str:
    rng = random.Random(f"{length}{alphabet}{seed}")
    return "".join(rng.choice(alphabet) for _ in range(length))


# kind label -> a token of that kind, as it appears in the wild
TOKENS = {
    "openai_key": "sk-proj-" + body(156, URLSAFE),
    "openai_key (DeepSeek, sk- + 32 hex)": "sk-" + body(32, HEX),
    "anthropic_key": "sk-ant-api03-" + body(93, URLSAFE) + "AA",
    "huggingface_token": "hf_" + body(34, string.ascii_letters),
    "github_token": "ghp_" + body(36),
    "github_token (oauth)": "gho_" + body(36),
    "github_token (user-to-server)": "ghu_" + body(36),
    "github_token (server-to-server)": "ghs_" + body(36),
    "github_token (refresh)": "ghr_" + body(36),
    "github_token (fine-grained)": "github_pat_" + body(22) + "_" + body(59),
    "gitlab_token": "glpat-" + body(20, URLSAFE, 1),
    "gitlab_token (routable)": "glpat-" + body(27, URLSAFE) + ".01" + body(7, HEX),
    "google_api_key": "AIza" + body(35, URLSAFE),
    "google_oauth_secret": "GOCSPX-" + body(28, URLSAFE),
    "aws_key": "AKIA" + body(16, string.ascii_uppercase + "234567"),
    "aws_key (session)": "ASIA" + body(16, string.ascii_uppercase + "234567", 1),
    "slack_token": "xoxb-" + body(12, string.digits) + "-" + body(13, string.digits) + "-" + body(24),
    "slack_token (user)": "xoxp-" + "-".join(body(12, string.digits, n) for n in range(3)) + "-" + body(32, HEX),
    "slack_webhook": "https://hooks.slack.com/services/T" + body(10, string.ascii_uppercase + string.digits)
                     + "/B" + body(10, string.ascii_uppercase + string.digits) + "/" + body(24),
    "stripe_key": "sk_live_" + body(99),
    "stripe_key (restricted)": "rk_live_" + body(24),
    "stripe_key (test mode)": "sk_test_" + body(24),
    "twilio_key": "SK" + body(32, HEX),
    "sendgrid_key": "SG." + body(22, URLSAFE) + "." + body(43, URLSAFE),
    "npm_token": "npm_" + body(36),
    "pypi_token": "pypi-AgEIcHlwaS5vcmc" + body(70, URLSAFE),
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ." + body(43, URLSAFE),
    "aliyun_key": "LTAI" + body(20),
    "tencent_key": "AKID" + body(32),
    "azure_client_secret": body(3) + "8Q~" + body(34, URLSAFE + "~."),
}


def _label(kind: str) -> str:
    return kind.split(" ")[0]


@pytest.mark.parametrize("kind", TOKENS)
def test_each_token_format_is_found_whole_in_prose(kind):
    token = TOKENS[kind]
    text = f"Then run it with {token} as the only argument."
    spans = find_sensitive(text)
    assert [(text[start:end], label) for start, end, _kind, label in spans] == [(token, _label(kind))]
    assert redact_text(text) == f"Then run it with [REDACTED:{_label(kind)}] as the only argument."
    assert candidate_texts(["Nothing here at all.", text]) == [1]


@pytest.mark.parametrize("kind", TOKENS)
def test_a_token_glued_to_chinese_text_is_found(kind):
    """No space between 是 and the key: \\b would see a word going on (是 is a word character)."""
    token = TOKENS[kind]
    assert redact_text(f"密钥是{token}，请妥善保管。") == f"密钥是[REDACTED:{_label(kind)}]，请妥善保管。"


def test_a_stripe_key_longer_than_24_characters_loses_its_tail_too():
    key = "sk_live_" + body(99)
    assert redact_text(f"stripe {key} end") == "stripe [REDACTED:stripe_key] end"
    assert key[-20:] not in redact_text(f'STRIPE_SECRET_KEY="{key}"')


def test_the_hugging_face_token_of_the_report_is_found():
    token = "hf_" + body(34, string.ascii_letters, 7)  # letters only: no digit, as real ones often are
    for text in (f"HF_TOKEN={token}", f"huggingface-cli login --token {token}", f"export HF_TOKEN='{token}'"):
        assert token not in redact_text(text) and "[REDACTED:huggingface_token]" in redact_text(text)


# ---------------------------------------------------------------- credentials found by their context


@pytest.mark.parametrize("text, value, label", [
    ("curl -H 'Authorization: Bearer {v}' https://api.acme.io/v1", body(40, URLSAFE), "auth_header"),
    ('headers = {{"Authorization": "Basic {v}"}}', "dXNlcjpTM2NyM3RQNHNzIQ==", "auth_header"),
    ("Authorization: token {v}", body(40, HEX), "auth_header"),
    ("Send it as Bearer {v} in the header.", body(32, URLSAFE), "auth_header"),
    ("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={v};EndpointSuffix=core.windows.net",
     body(86, B64) + "==", "azure_storage_key"),
    ("Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={v}", body(43, B64) + "=",
     "azure_storage_key"),
    ("aws_secret_access_key = {v}", body(40, B64), "aws_secret"),
    ("REDIS_URL=redis://:{v}@cache.acme.io:6379/0", "s3cr3tP4ssw0rd", "password"),
    ("postgres://deploy:{v}@pg.acme.io:5432/tides", "Qv7#pLx9zR2", "password"),
    ("curl -u admin:{v} https://api.acme.io/items", "pQ9wTxu4Fg", "password"),
    ("password={v}", "Tr0ub4dor&3xyzQ", "secret"),
    ("api_key: {v}", body(32), "secret"),
    ("SECRET = '{v}'", body(40, B64), "secret"),
    ('{{"refresh_token": "{v}"}}', body(48, URLSAFE), "secret"),
    ("Aliyun AccessKeySecret={v}", body(30), "secret"),
])
def test_credentials_are_found_by_their_context_and_only_the_value_goes(text, value, label):
    text = text.format(v=value)
    assert [(text[start:end], found) for start, end, _kind, found in find_sensitive(text)] == [(value, label)]
    assert redact_text(text) == text.replace(value, f"[REDACTED:{label}]")
    assert candidate_texts(["plain words", text]) == [1]


def test_a_token_under_a_secret_named_key_keeps_its_own_label():
    token = TOKENS["github_token"]
    assert redact_text(f"GITHUB_TOKEN={token}") == "GITHUB_TOKEN=[REDACTED:github_token]"
    assert redact_text(f"Authorization: Bearer {TOKENS['jwt']}") == "Authorization: Bearer [REDACTED:jwt]"


def test_a_private_key_block_of_any_kind_goes_whole():
    key = "\n".join(body(64, B64, n) for n in range(4))
    for kind in ("RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        text = f"key:\n-----BEGIN {kind}-----\n{key}\n-----END {kind}-----\ndone"
        assert redact_text(text) == "key:\n[REDACTED:private_key]\ndone"
    pgp = f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{key}\n-----END PGP PRIVATE KEY BLOCK-----"
    assert redact_text(pgp) == "[REDACTED:private_key]"
    # Cut off before its END line: the rest of the text goes.
    assert redact_text(f"key:\n-----BEGIN PRIVATE KEY-----\n{key}") == "key:\n[REDACTED:private_key]"


def test_detect_secrets_backstop_finds_formats_the_table_does_not_name_whole():
    """Telegram's plugin matches 35 characters after the colon: a longer token is redacted to its end."""
    token = body(10, string.digits) + ":" + body(40, URLSAFE)
    assert redact_text(f"bot token {token} here") == "bot token [REDACTED:telegram_token] here"


# ---------------------------------------------------------------- left alone


@pytest.mark.parametrize("text", [
    # placeholders (nothing to hide: the docs tell the reader what to put there)
    "password=<your-password>",
    "password: ***",
    "password = ********",
    'api_key = "${API_KEY}"',
    "token=YOUR_TOKEN",
    "secret: changeme",
    "Authorization: Bearer <token>",
    "Authorization: Bearer $TOKEN",
    "Authorization: Bearer YOUR_API_KEY",
    "curl -H \"Authorization: Bearer ${HF_TOKEN}\" https://huggingface.co/api/whoami-v2",
    "REDIS_URL=redis://:${REDIS_PASSWORD}@cache:6379/0",
    "postgres://user:password@localhost:5432/app",
    "curl -u user:password https://api.acme.io",
    "OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "HF_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",  # AWS's own documentation key
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
    # ordinary docs text
    "Fixed in commit 3f2b6c1e9a4d4c7e8b1a2d3e4f5a6b7c8d9e0f12 (see 3f2b6c1).",
    "The run id is 3f2b6c1e-9a4d-4c7e-8b1a-2d3e4f5a6b7c, shown by tw status.",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "Use sk-learn-compatible-estimators-and-transformers for the pipeline.",
    "Call hf_hub_download(repo_id, filename) to fetch one file.",
    "- (id)hf_requiredCharacteristicTypesForDisplayMetadata;",
    "Servers in ASIAPACIFICREGIONSERVERS answer first.",
    "tokenizer = AutoTokenizer.from_pretrained(\"Qwen/Qwen2.5-7B-Instruct\")",
    "generate(max_tokens=4096, max_new_tokens=512)",
    "ids = tokenizer.build_inputs_with_special_tokens(token_ids_0=token_ids_0, token_ids_1=token_ids_1)",
    "    authorization: Optional[str] = None",
    "password = os.environ[\"DB_PASSWORD\"]",
    "client = OpenAI(api_key=api_key, base_url=base_url)",
    'fn_kwargs={"eos_token": processing_class.eos_token}',
    '"token2wav_config": Qwen2_5OmniToken2WavConfig,',
    "token_url = https://auth.acme.io/oauth/token",
    "The password must be at least 12 characters; the token expires after 3600 seconds.",
    "| name | value |\n|--------------------------|--------------------------|\n| retries | 3 |",
    "使用 token 认证，密码长度至少 12 位，密钥每 90 天轮换一次。",
    "Set TW_RETRY__MAX_ATTEMPTS=5 and TW_SCHEDULER__LOCK_TIMEOUT_SECONDS=30.",
])
def test_placeholders_and_ordinary_docs_text_are_left_alone(text):
    assert [(text[start:end], label) for start, end, kind, label in find_sensitive(text) if kind == "secret"] == []


def test_every_secret_rule_has_a_test_here():
    """A new row in the table comes with a sample in this file."""
    tested = {_label(kind) for kind in TOKENS} | {"auth_header", "azure_storage_key", "aws_secret", "password", "secret",
                                                  "private_key"}
    assert {rule.label for rule in RULES if rule.kind == "secret"} <= tested
    assert all(rule.follows for rule in RULES if rule.kind == "secret")


# ---------------------------------------------------------------- redaction everywhere


def test_redaction_plan_matches_item_by_item_redaction():
    items = [{"id": f"i{n}", "messages": [{"role": "user", "content": "Which key?"},
                                          {"role": "assistant", "content": f"Use {token}."}]}
             for n, token in enumerate(TOKENS.values())]
    items.append({"id": "plain", "messages": [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": None}]})
    plan = redaction_plan(items)
    assert plan == {item["id"]: redacted_messages(item) for item in items if redacted_messages(item) is not None}
    assert len(plan) == len(TOKENS)


def test_redact_removes_every_new_kind_from_journal_history_scores_and_run_copies(workdir):
    leaks = {kind: TOKENS[kind] for kind in ("huggingface_token", "google_api_key", "gitlab_token", "stripe_key")}
    leaks["bearer"] = body(40, URLSAFE, 3)
    leaks["redis"] = "s3cr3tP4ssw0rd"
    answer = (f"Log in with {leaks['huggingface_token']}, call Maps with {leaks['google_api_key']}, push with "
              f"{leaks['gitlab_token']}, bill with {leaks['stripe_key']}; send Authorization: Bearer {leaks['bearer']} "
              f"and cache in redis://:{leaks['redis']}@cache.acme.io:6379.")
    store = global_var.datasets()
    store.create("leaky")
    first = store.append_item("leaky", [{"role": "user", "content": "keys?"}, {"role": "assistant", "content": answer}])
    store.update_item("leaky", first["id"], [{"role": "user", "content": "keys?"}, {"role": "assistant", "content": "Ask the admin."}])
    second = store.append_item("leaky", [{"role": "user", "content": "again?"}, {"role": "assistant", "content": answer}])
    run = workdir.training / "leaky-20260101-000000"
    (run / "data").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"dataset": "leaky"}), encoding="utf-8")
    record = json.dumps({"id": second["id"], "messages": second["messages"]})
    (run / "data" / "train.jsonl").write_text(record + "\n", encoding="utf-8")
    (run / "validation_samples.jsonl").write_text(json.dumps({"step": 10, "answer": answer}) + "\n", encoding="utf-8")
    (run / "eval_report.json").write_text(json.dumps({"samples": [{"reference": answer}]}), encoding="utf-8")
    (run / "eval_report.md").write_text(f"| again? | {answer} |\n", encoding="utf-8")
    global_var.scores().append("leaky", [{"id": second["id"], "v": "x", "status": "scored", "overall": 7, "reason": f"quotes {answer}"}])

    summary = redact_dataset("leaky", store, scores=global_var.scores(), training_root=workdir.training)

    assert summary["version"]["kind"] == "redact" and summary["items"] == 1 and summary["score_lines"] == 1
    assert len(summary["run_files"]) == 4
    leftovers = [(path.name, kind) for path in workdir.root.rglob("*") if path.is_file()
                 for kind, value in leaks.items() if value.encode() in path.read_bytes()]
    assert leftovers == []
    current = store.get_item("leaky", second["id"])["messages"][1]["content"]
    for label in ("huggingface_token", "google_api_key", "gitlab_token", "stripe_key", "auth_header", "password"):
        assert f"[REDACTED:{label}]" in current
    assert redact_dataset("leaky", store)["version"] is None  # nothing left


def test_a_quoted_secret_left_only_in_the_history_is_redacted(workdir):
    """In the journal's raw line the quotes are escaped (password=\\"...\\"): the records are read as JSON."""
    store = global_var.datasets()
    store.create("old")
    first = store.append_item("old", [{"role": "user", "content": "db?"},
                                      {"role": "assistant", "content": 'Set password="Tr0ub4dor&3xyzQ" in db.ini.'}])
    store.update_item("old", first["id"], [{"role": "user", "content": "db?"}, {"role": "assistant", "content": "Ask the admin."}])
    summary = redact_dataset("old", store)
    assert summary["items"] == 0 and summary["version"]["kind"] == "redact" and summary["history_records"] >= 1
    assert "Tr0ub4dor" not in store.path("old").read_text(encoding="utf-8")
