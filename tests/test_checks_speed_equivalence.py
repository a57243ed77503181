"""The checks made faster (issue 28) find what they found before: run_checks over a generated mix of items
(secrets of every format, duplicates, near duplicates and leaks, tool calls, Chinese text, code, truncated
answers, preference pairs) compared with the result of the implementation before the change, frozen in
tests/fixtures/checks_equivalence.json (regenerate only for a deliberate change of findings:
`.venv/bin/python -m tests.test_checks_speed_equivalence --write`). And the secret screening's shortcuts
(one combined scan, a result per distinct text) answer like find_sensitive on each text by itself."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from tools.core.workdir import SAMPLE_DOCS_SOURCE
from tools.docs.slicing import CJK_CHARACTER, estimate_tokens
from tools.quality.checks import run_checks
from tools.quality.secrets import RULES, candidate_texts, find_sensitive, might_hold, secret_findings
from tools.quality.sources import load_doc_context
from tools.quality.text import CJK_RUN, STOPWORDS_BYTES, _WORD_BYTES, cjk_count, content_units, fast_tokens, strip_code
from tools.quality.text import FENCED_CODE, INLINE_CODE

FIXTURE = Path(__file__).parent / "fixtures" / "checks_equivalence.json"
TIDEWATER = SAMPLE_DOCS_SOURCE / "tidewater"

SECRETS = [
    "Set OPENAI_API_KEY=sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2Za4Bd8Ef before running.",
    "The staging database is postgres://deploy:Qv7#pLx9zR2@pg.internal.corp:5432/tides.",
    "Ask jane.doe@acme-corp.com for access to the cache on 10.12.4.7.",
    "aws_access_key_id = AKIAQ3EGRZ7XK4M2PB5D",
    "密钥是sk-ant-api03-Zx8Kq2Lm4Np6Rt8Vw0Yb3Dc5Fg7Hj9Kl 请勿外传。",
    "export HF_TOKEN=hf_AbCdEfGh1234567890IjKlMnOpQrStUvWx",
    "token: ghp_1A2b3C4d5E6f7G8h9I0jK1lM2nO3pQ4rS5tU",
    "curl -u admin:S3cr3tPw https://api.internal/run",
    'headers = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r"}',
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq9Xk2Lm4Np6Rt8Vw0Yb3Dc5Fg7Hj9Kl\n-----END RSA PRIVATE KEY-----",
    "password = 'correct-Horse-42-battery'",
    "Use the example key AKIAIOSFODNN7EXAMPLE and <your-api-key> in the docs.",  # placeholders: nothing
    "max_tokens = 4096 and tokenizer = AutoTokenizer.from_pretrained(name)",  # no secret
    "Discord bot: MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs in config.",
    "AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A=",
    "redis://:p4ssW0rdLong@cache.lan:6379 和 192.168.1.20",
    "内部主机 build.intranet 上的 slack https://hooks.slack.com/services/T00000000/B00000000/abcdEFGHijklMNOPqrst1234",
    "An identifier TW_RETRY__MAX_ATTEMPTS_PER_STAGE_AND_WORKER is not a secret, nor a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0.",
]
QUESTIONS_EN = ["What does {w} do in tidewater?", "How do I configure {w} when a stage fails?", "Explain {w} for a nightly tide.",
                "Why would I call `Tide.run()` with max_workers={n}?", "What happens with {w} during a dry run?"]
QUESTIONS_ZH = ["{w} 在 tidewater 里有什么作用？", "阶段失败时如何配置 {w}？", "为什么 max_workers 要设为 {n}？"]
ANSWERS_EXTRA = ["```python\nfrom tidewater import Tide\ntide = Tide('orders')\ntide.run(max_workers={n})\n```",
                 "Call `Tide.launch_fleet()` and set `FLEET_MODE` to TW-{n}03.", "Use RetryPolicy.max_attempts = {n}",
                 "```bash\ntide run --workers {n}\n", "这个阶段默认超时 {n} 秒，可以用 `timeout` 参数修改。",
                 "See `tide.validate()` and the WorkerPoolConfig class"]
TOOLS = [{"type": "function", "function": {"name": "tide_run"}}, {"type": "function", "function": {"name": "lookup"}}]


def mixed_items(count: int = 500, seed: int = 28) -> tuple[list[dict], set[str]]:
    """`count` items from the tidewater docs: English and Chinese, with planted secrets, exact and near
    duplicates (some across the eval split), code and invented names, truncated, short and repeating
    answers, tool calls (good, invented, bad arguments, a secret in arguments), pairs and KTO labels."""
    context = load_doc_context(TIDEWATER, "tidewater", 800)
    rng = random.Random(seed)
    slices = context.slices
    items: list[dict] = []
    for index in range(count):
        piece = slices[rng.randrange(len(slices))]
        sentences = [s.strip() for s in piece.text.replace("\n", " ").split(". ") if len(s.strip()) > 20] or [piece.text[:200]]
        words = [w for w in piece.text.split() if w.isalnum() and len(w) > 3] or ["tide"]
        roll = rng.random()
        if items and roll < 0.06:
            question = items[rng.randrange(len(items))]["messages"][0]["content"]
        elif items and roll < 0.12:
            question = items[rng.randrange(len(items))]["messages"][0]["content"].replace("What does", "What do", 1) \
                .replace("How do I", "How can I", 1).replace("阶段", "阶段的", 1) + " "
        else:
            template = rng.choice(QUESTIONS_ZH if rng.random() < 0.25 else QUESTIONS_EN)
            question = template.format(w=rng.choice(words), n=rng.randint(1, 64)) + f" ({index % 97})"
        answer = ". ".join(rng.sample(sentences, min(len(sentences), rng.randint(1, 4)))) + "."
        extra = rng.random()
        if extra < 0.2:
            answer += " " + rng.choice(SECRETS)
        elif extra < 0.35:
            answer += "\n\n" + rng.choice(ANSWERS_EXTRA).format(n=rng.randint(1, 9))
        elif extra < 0.4:
            answer = answer[: rng.randint(5, max(6, len(answer) - 1))]
        elif extra < 0.43:
            answer = question
        elif extra < 0.45:
            answer = ""
        messages = [{"role": "user", "content": question}]
        item: dict = {"id": f"m{index:04d}"}
        if rng.random() < 0.1:
            name = rng.choice(["tide_run", "Tide.run", "launch_fleet", "lookup"])
            arguments = rng.choice(['{"max_workers": 8}', '{"inputs": [1], "speed": 2}', "{not json",
                                    '{"api_key": "sk-live-9fKq2Lm4Np6Rt8Vw0Yb3Dc5"}', '{"note": "ask ops@tide.corp"}'])
            messages.append({"role": "assistant", "content": rng.choice(["", "Let me check."]), "tool_calls": [
                {"id": "c0", "type": "function", "function": {"name": name, "arguments": arguments}}]})
            messages.append({"role": "tool", "tool_call_id": "c0", "content": '{"status": "succeeded"}'})
            if rng.random() < 0.5:
                item["tools"] = TOOLS
        messages.append({"role": "assistant", "content": answer})
        item["messages"] = messages
        if rng.random() < 0.9:
            gone = rng.random() < 0.05  # its slice no longer in the doc set
            item["provenance"] = {"source_doc": piece.source, "heading_path": ["Gone"] if gone else piece.heading_path,
                                  "unit": f"{'gone' if gone else piece.slice_id}:1", "origin": "generated"}
            if rng.random() < 0.1:
                item["provenance"]["group"] = f"g{index // 3}"
        if rng.random() < 0.05:
            item["rejected"] = answer if rng.random() < 0.5 else answer[: len(answer) // 3]
        if rng.random() < 0.03:
            item["label"] = rng.random() < 0.5
        items.append(item)
    eval_ids = {item["id"] for item in rng.sample(items, count // 8)}
    return items, eval_ids


def comparable(result: dict) -> dict:
    """What the checks found, without the clock: timings, the time of the run and how it ran."""
    return {key: value for key, value in result.items() if key not in ("checked_at", "timings_s", "seconds", "parallel")}


def current_result(parallel: bool = False) -> dict:
    items, eval_ids = mixed_items()
    return comparable(json.loads(json.dumps(run_checks(items, eval_ids, load_doc_context(TIDEWATER, "tidewater", 800),
                                                        parallel=parallel), ensure_ascii=False)))


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_the_mix_exercises_every_check(expected):
    kinds = expected["summary"]["by_kind"]
    for kind in ("duplicate_exact", "duplicate_near", "leak_exact", "invented_name", "secret", "personal_data",
                 "internal_host", "language_mismatch", "low_grounding", "truncated_answer", "repeats_question",
                 "tool_call_invented", "tool_call_bad_arguments", "no_source", "source_gone"):
        assert kinds.get(kind), kind


def test_findings_are_those_of_the_implementation_before_the_speed_up(expected):
    result = current_result()
    for key in expected:
        assert result[key] == expected[key], key
    assert result == expected


def test_two_processes_find_the_same(expected):
    assert current_result(parallel=True) == expected


def test_screening_all_texts_at_once_picks_what_each_text_alone_would():
    texts = SECRETS + ["plain prose about tides.", "", "密钥", "x" * 25, "a_key = 1", "TOKEN"] + [s.upper() for s in SECRETS]
    picked = set(candidate_texts(texts))
    for index, text in enumerate(texts):
        if find_sensitive(text):
            assert index in picked, text
        assert (index in picked) == might_hold(text), text


def test_a_text_repeated_across_items_is_reported_for_each_item():
    text = SECRETS[0]
    items = [{"id": f"r{n}", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]}
             for n in range(3)]
    found = secret_findings(items)
    assert [f["item_id"] for f in found] == ["r0", "r1", "r2"]
    assert found[0]["where"] == found[2]["where"] == {"message": 1, "field": "content", "span": list(find_sensitive(text)[0][:2])}


def random_texts(count: int, seed: int, alphabet: str, longest: int = 40) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest))) for _ in range(count)]


# Characters around the edges of CJK_CHARACTER's ranges, beyond the BMP, a lone surrogate, Latin, code marks.
MIXED = "ab 中文字。，：x\U00020001ｘ가の—é\n12_\u2fff\u3000\u303f\u30ff\u3400\u4dbf\u4dc0\u9fff\ua000\uffef\ufff0`~"


def reference_content_units(text: str) -> set[bytes]:
    """content_units as it was before issue 28: a loop per CJK run."""
    units = set(text.encode("utf-8", "surrogatepass").translate(_WORD_BYTES).split()) - STOPWORDS_BYTES
    for run in CJK_RUN.findall(text):
        units.update([run.encode("utf-8")] if len(run) == 1 else [run[i:i + 2].encode("utf-8") for i in range(len(run) - 1)])
    return units


@pytest.mark.parametrize("alphabet", [MIXED, MIXED.replace("\U00020001", ""), "中文 a。", "中"])
def test_content_units_are_those_of_a_loop_per_run(alphabet):
    for text in random_texts(3000, 1, alphabet):
        assert content_units(text) == reference_content_units(text), text


def test_cjk_counted_in_numpy_and_by_the_regex_agree():
    texts = random_texts(1500, 2, MIXED, longest=400) + random_texts(200, 3, MIXED + "\ud800", longest=400)
    for text in texts:
        assert cjk_count(text) == len(CJK_CHARACTER.findall(text)), text
        assert fast_tokens(text) == estimate_tokens(text), text


def test_code_stripped_without_the_fence_pattern_when_there_is_no_fence():
    for text in random_texts(3000, 4, "a`b\n ~中") + ["```py\nx = 1\n```\nand `y`", "~~~\ncode", "one `span` only"]:
        assert strip_code(text) == INLINE_CODE.sub(" ", FENCED_CODE.sub(" ", text)), text


def test_a_rule_s_screen_finds_something_wherever_its_pattern_does():
    """The screens let a rule's pattern be skipped: they must hold in every text where it matches."""
    items, _ = mixed_items(200)
    texts = SECRETS + [m["content"] for item in items for m in item["messages"]] + [
        "mail a.b@c-d.io, @tide.stage, x@y", "host db1.prod.internal; pypi.internal.example.com; A.LAN", "AC" + "f" * 32,
        "redis://:pw123456@h mysql://u:p@h:1 http://user@host", "SK0123456789abcdef0123456789ABCDEF_x"]
    screened = [rule for rule in RULES if rule.screen is not None]
    assert {rule.label for rule in screened} >= {"email", "host", "password", "twilio_key"}
    for rule in screened:
        matched = [text for text in texts if rule.pattern.search(text)]
        assert matched, rule.label
        for text in matched:
            assert rule.screen.search(text), (rule.label, text)


if __name__ == "__main__" and "--write" in sys.argv:
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(current_result(), ensure_ascii=False, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size:,} bytes)")
