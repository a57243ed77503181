"""The checks without an LLM (tools/quality), each with crafted true and false positives; persistence of
the result; redaction of a dataset's whole history and of its copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import global_var
from tools.docs.slicing import slice_markdown
from tools.quality.answers import answer_findings, message_order_findings, truncation_reason
from tools.quality.checks import check_dataset, findings_by_item, load_result, result_path, run_checks
from tools.quality.duplicates import duplicate_findings
from tools.quality.grounding import grounding_findings, grounding_score
from tools.quality.language import detect_language
from tools.quality.names import invented_name_findings
from tools.quality.redact import redact_dataset, redaction_plan
from tools.quality.secrets import candidate_texts, find_sensitive, might_hold, redact_text
from tools.quality.sources import DocContext
from tools.quality.stats import dataset_stats

API_DOC = """# Pipeline API

A `Tide` is an ordered chain of stages. Call `Tide.run(inputs=None, max_workers=4)` to run it; it
returns a `TideResult`. Arrays come from `numpy.array`. The default stage timeout is 300 seconds;
a stage that runs longer raises TW-1203 and is retried by its `RetryPolicy`.

## Errors

TW-1202 means the retries are exhausted: all max_attempts attempts failed.
Set TIDEWATER_CONFIG to point at another configuration file.
"""
ZH_DOC = """# 常见问题

阶段的默认超时时间是 300 秒。超时后会产生错误 TW-1203,并按照重试策略自动重试。
"""


def context() -> DocContext:
    slices = slice_markdown(API_DOC, "api.md") + slice_markdown(ZH_DOC, "zh/faq.md")
    return DocContext.from_slices("crafted", slices)


def item(item_id: str, question: str, answer: str, source=None, messages=None) -> dict:
    provenance = {}
    if source is not None:
        provenance = {"source_doc": source.source, "heading_path": source.heading_path, "unit": f"{source.slice_id}:1"}
    return {"id": item_id, "messages": messages or [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "provenance": provenance}


def kinds(findings, item_id=None) -> list[str]:
    return sorted(f["kind"] for f in findings if item_id is None or f["item_id"] == item_id)


# ---------------------------------------------------------------- duplicates and leakage


def test_exact_and_near_duplicates_are_found_and_different_questions_are_not():
    items = [
        item("a", "How do I install tidewater with GPU support?", "x"),
        item("b", "how do i install Tidewater with GPU support", "x"),  # exact after normalising
        item("c", "How can I install tidewater with GPU support?", "x"),  # near (0.80)
        item("d", "What does error TW-1202 mean?", "x"),
        item("e", "What does error TW-1203 mean?", "x"),  # 0.79 alike, but another number: not a duplicate
        item("f", "What does RetryPolicy.max_attempts do?", "x"),
        item("g", "What does RetryPolicy.max_backoff do?", "x"),  # 0.56: another question
        item("h", "How do I clear the cache?", "x"),
    ]
    findings = duplicate_findings(items, eval_ids=set())
    by_item = {f["item_id"]: f for f in findings}
    assert set(by_item) == {"b", "c"}
    assert by_item["b"]["kind"] == "duplicate_exact" and by_item["b"]["detail"]["other"] == "a"
    assert by_item["c"]["kind"] == "duplicate_near" and by_item["c"]["detail"]["other"] == "a"
    assert 0.7 <= by_item["c"]["detail"]["similarity"] < 1
    assert by_item["c"]["where"] == {"message": 0, "field": "content"}


def test_leakage_across_the_split_is_reported_on_the_eval_item():
    items = [
        item("t1", "What is the default timeout of a stage?", "x"),
        item("t2", "How do I stop the scheduler?", "x"),
        item("e1", "What is the default timeout of a stage", "x"),  # exact copy of t1
        item("e2", "How can I stop the scheduler?", "x"),  # near copy of t2
        item("e3", "Which Python versions are supported?", "x"),  # fine
        item("e4", "Which Python versions are supported", "x"),  # duplicate inside eval, no train twin
    ]
    findings = duplicate_findings(items, eval_ids={"e1", "e2", "e3", "e4"})
    by_item = {f["item_id"]: (f["kind"], f["detail"]["other"]) for f in findings}
    assert by_item == {"e1": ("leak_exact", "t1"), "e2": ("leak_near", "t2"), "e4": ("duplicate_exact", "e3")}


def test_a_large_cluster_of_near_duplicates_is_found_whole():
    # 400 rewordings of one question share LSH buckets: each is linked to the bucket's head (linear).
    items = [item(f"q{i}", f"How do I configure the scheduler lock for tide {'x' * (i % 7)}report?", "x") for i in range(400)]
    findings = duplicate_findings(items, eval_ids=set())
    assert len(findings) == 399 and {f["kind"] for f in findings} <= {"duplicate_near", "duplicate_exact"}


# ---------------------------------------------------------------- shape of answers


def test_message_order_problems_are_found_and_a_good_order_passes():
    good = item("ok", "q?", "a.", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "q?"},
                                            {"role": "assistant", "content": "a."}])
    assert message_order_findings(good) == []
    assistant_first = item("x", "", "", messages=[{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}])
    no_answer = item("y", "", "", messages=[{"role": "user", "content": "q"}])
    system_only = item("z", "", "", messages=[{"role": "system", "content": "s"}])
    assert [f["detail"]["problem"] for f in message_order_findings(assistant_first)] == ["expected_user"]
    assert message_order_findings(assistant_first)[0]["where"]["message"] == 0
    assert [f["detail"]["problem"] for f in message_order_findings(no_answer)] == ["ends_without_answer"]
    assert [f["detail"]["problem"] for f in message_order_findings(system_only)] == ["no_turns"]


@pytest.mark.parametrize("answer, expected", [
    ("", ["empty_answer"]),
    ("Yes.", ["short_answer"]),
    ("The default timeout is 300 seconds and a stage that runs longer raises", ["truncated_answer"]),
    ("Run this:\n```python\ntide.run()\n", ["truncated_answer"]),
    ("The default timeout is 300 seconds.", []),
    ("Three options exist:\n- `tw run`\n- `tw list`", []),  # a list item ends the answer
    ("默认超时时间是 300 秒。", []),
    ("Run it:\n```python\ntide.run()\n```", []),
])
def test_empty_short_and_truncated_answers(answer, expected):
    assert kinds(answer_findings(item("i", "What is the default timeout of a stage?", answer))) == expected


def test_truncation_reasons_and_the_token_limit():
    assert truncation_reason("It retries the stage and then") == "mid_sentence"
    assert truncation_reason("```\ncode") == "unclosed_fence"
    long_cut = "word " * 201 + "and"  # ~254 estimated tokens: just under a 256-token limit
    finding = [f for f in answer_findings(item("i", "q?", long_cut)) if f["kind"] == "truncated_answer"][0]
    assert finding["detail"]["reason"] == "token_limit"


def test_an_answer_that_repeats_its_question_is_flagged_and_a_real_answer_is_not():
    question = "What is the default timeout of a stage?"
    assert "repeats_question" in kinds(answer_findings(item("i", question, "The default timeout of a stage?")))
    assert "repeats_question" not in kinds(answer_findings(item("i", question, "It is 300 seconds per attempt, then TW-1203.")))


# ---------------------------------------------------------------- grounding


def test_grounding_of_supported_invented_and_sourceless_answers():
    ctx = context()
    api = ctx.slices[0]
    scores: dict[str, float] = {}
    supported = item("s", "What is the default timeout?", "The default stage timeout is 300 seconds; longer stages raise TW-1203.", api)
    invented = item("i", "How do I deploy?", "Deploy with kubernetes helm charts and terraform modules on azure clusters.", api)
    imported = item("n", "q?", "Something about tides and stages.")
    assert grounding_findings(supported, ctx, scores) == [] and scores["s"] >= 0.8
    low = grounding_findings(invented, ctx, scores)
    assert [f["kind"] for f in low] == ["low_grounding"] and low[0]["detail"]["score"] < 0.5
    assert [f["kind"] for f in grounding_findings(imported, ctx, scores)] == ["no_source"]
    assert "n" not in scores  # no source is not a failed score


def test_grounding_counts_plural_forms_and_chinese_bigrams():
    ctx = context()
    zh = ctx.by_heading[("zh/faq.md", ("常见问题",))][0]
    source_units = ctx.units(ctx.source_of(item("z", "", "", zh)))
    assert grounding_score("阶段的默认超时时间是 300 秒。", source_units) == 1.0
    assert grounding_score("数据库连接池配置需要重启服务器。", source_units) < 0.2
    api_units = ctx.units(ctx.source_of(item("a", "", "", ctx.slices[0])))
    assert grounding_score("Tides are ordered chains; stage retries.", api_units) == 1.0


def test_an_item_whose_slice_is_gone_is_reported_as_such():
    ctx = context()
    gone = {"id": "g", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a long enough answer here"}],
            "provenance": {"source_doc": "removed.md", "heading_path": ["Old"], "unit": "0123456789abcdef:1"}}
    assert [f["kind"] for f in grounding_findings(gone, ctx, {})] == ["source_gone"]


# ---------------------------------------------------------------- invented names


def test_names_from_the_docs_are_known_and_invented_ones_are_found_with_their_span():
    ctx = context()
    answer = ("Call `Tide.run()` on the tide with `max_workers=8`, build inputs with `numpy.array` and handle "
              "ValueError. For loops use `foo.bar_baz()` or the FancyScheduler class; TW-1203 is a timeout, "
              "TW-9999 is not. Set TIDEWATER_CONFIG, not TIDEWATER_MAGIC. `os.path.join()` is Python's.\n"
              "```python\ndef my_helper(x):\n    return tide.run(x)\n```")
    findings = invented_name_findings(item("n", "q", answer), ctx)
    names = {f["detail"]["name"]: f for f in findings}
    assert set(names) == {"foo.bar_baz", "FancyScheduler", "TW-9999", "TIDEWATER_MAGIC"}
    span = names["foo.bar_baz"]["where"]["span"]
    assert answer[span[0]:span[1]] == "foo.bar_baz"
    assert names["FancyScheduler"]["where"]["message"] == 1


# ---------------------------------------------------------------- language


def test_language_by_cjk_share_ignores_code():
    assert detect_language("The default timeout is 300 seconds.") == "en"
    assert detect_language("默认超时时间是 300 秒。") == "zh"
    assert detect_language("使用 `Tide.run(inputs=None, max_workers=4)` 运行整个流程。") == "zh"
    assert detect_language("ok") == "unknown"


def test_a_chinese_answer_in_an_english_dataset_is_flagged_and_matching_items_are_not():
    english = [item(f"e{i}", f"What does stage {i} do in the pipeline?", f"Stage {i} transforms the records it receives.")
               for i in range(9)]
    chinese = item("zh", "What is the default timeout?", "默认超时时间是 300 秒。")
    result = run_checks(english + [chinese], set(), None)
    mismatches = [f for f in result["findings"] if f["kind"] == "language_mismatch"]
    assert [(f["item_id"], f["detail"]["part"], f["detail"]["against"]) for f in mismatches] == [("zh", "answer", "dataset")]


def test_language_is_compared_with_the_source_slice():
    ctx = context()
    zh_slice = ctx.by_heading[("zh/faq.md", ("常见问题",))][0]
    english_about_zh = item("x", "阶段的默认超时时间是多少?", "The default timeout is 300 seconds.", zh_slice)
    chinese_ok = item("y", "阶段的默认超时时间是多少?", "默认是 300 秒。", zh_slice)
    result = run_checks([english_about_zh, chinese_ok], set(), ctx)
    mismatches = [f for f in result["findings"] if f["kind"] == "language_mismatch"]
    assert [(f["item_id"], f["detail"]["part"], f["detail"]["against"]) for f in mismatches] == [("x", "answer", "source")]


# ---------------------------------------------------------------- secrets and personal data


@pytest.mark.parametrize("text, value, label", [
    ('export OPENAI_API_KEY="sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2Za4Bd8Ef"', "sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2Za4Bd8Ef", "openai_key"),
    ("aws_access_key_id = AKIAQ3EGRZ7XK4M2PB5D", "AKIAQ3EGRZ7XK4M2PB5D", "aws_key"),
    ("token: ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "github_token"),
    ("slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx here", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"),
    ("use eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U now",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
    ("connect to postgres://admin:hunter2pass@db.example.org:5432/app", "hunter2pass", "password"),
    ('password = "Tr0ub4dor&3xyzQ"', "Tr0ub4dor&3xyzQ", "secret"),
    ("Mail jane.doe@acme-corp.com for access.", "jane.doe@acme-corp.com", "email"),
    ("The cache lives on 10.12.4.7 by default.", "10.12.4.7", "ip"),
    ("Deploy to build01.corp before noon.", "build01.corp", "host"),
    ("stripe key sk_live_4eC39HqLyjWDarjtT1zdp7dc here", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
])
def test_secrets_and_personal_data_are_found_with_their_span(text, value, label):
    spans = find_sensitive(text)
    assert [(text[start:end], found) for start, end, _kind, found in spans] == [(value, label)]
    assert redact_text(text) == text.replace(value, f"[REDACTED:{label}]")
    assert might_hold(text) and candidate_texts(["plain words", text]) == [1]


def test_a_private_key_block_is_redacted_whole():
    text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\nabcd\n-----END RSA PRIVATE KEY-----\ndone"
    assert redact_text(text) == "key:\n[REDACTED:private_key]\ndone"


@pytest.mark.parametrize("text", [
    "The run id is 3f2b6c1e-9a4d-4c7e-8b1a-2d3e4f5a6b7c, shown by tw status.",  # a UUID-like id is no secret
    'api_key = "<your-api-key>"',  # a placeholder
    "token = ${TIDEWATER_TOKEN}",
    "Write to user@example.com or admin@example.org.",  # reserved example domains
    "Resolve 8.8.8.8 and read version 2.10.1.",  # a public IP, a version number
    "Install from https://pypi.internal.example.com/simple/.",  # a host of the reserved example.com
    "The password for the scheduler is set in the config file.",  # prose about a password
    "Call pipeline.run() with retries=3; the configuration key tide.max_workers.",
    "Decorate it with @stage and set TW_RETRY__MAX_ATTEMPTS=5.",
])
def test_look_alikes_are_not_secrets(text):
    assert find_sensitive(text) == []


def test_secret_findings_name_the_message_and_span_but_not_the_value():
    secret = "sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2Za4Bd8Ef"
    result = run_checks([item("s", "What is my key?", f"Your key is {secret} as configured.")], set(), None)
    finding = [f for f in result["findings"] if f["kind"] == "secret"][0]
    assert finding["where"]["message"] == 1 and finding["severity"] == "error"
    start, end = finding["where"]["span"]
    assert f"Your key is {secret} as configured."[start:end] == secret
    assert secret not in json.dumps(result)


# ---------------------------------------------------------------- statistics and the whole run


def test_statistics_per_split_turns_and_sources():
    ctx = context()
    api, zh = ctx.slices[0], ctx.by_heading[("zh/faq.md", ("常见问题",))][0]
    two_turns = [{"role": "user", "content": "q1?"}, {"role": "assistant", "content": "a" * 40},
                 {"role": "user", "content": "q2?"}, {"role": "assistant", "content": "b" * 80}]
    items = [item("a", "x" * 40, "y" * 400, api), item("b", "x" * 8, "y" * 40, api), item("c", "", "", zh, messages=two_turns)]
    stats = dataset_stats(items, {"c"}, ctx)
    assert (stats["items"], stats["train"], stats["eval"]) == (3, 2, 1)
    assert stats["turns"] == {"1": 2, "2": 1}
    assert stats["tokens"]["answer"]["train"] == {"count": 2, "min": 10, "mean": 55.0, "median": 100, "p90": 100, "max": 100}
    assert stats["tokens"]["answer"]["eval"]["count"] == 2 and stats["tokens"]["question"]["eval"]["max"] == 1
    sources = stats["sources"]
    assert sources["slices"] == len(ctx.slices) and sources["slices_with_items"] == 2
    assert len(sources["slices_without_items"]) == len(ctx.slices) - 2


def test_run_checks_gives_a_json_document_with_a_summary_and_findings_per_item():
    ctx = context()
    api = ctx.slices[0]
    items = [item("a", "What is the default timeout?", "The default stage timeout is 300 seconds.", api),
             item("b", "What is the default timeout", "Use `tide.explode()` and mail ops@acme-corp.com", api)]
    result = json.loads(json.dumps(run_checks(items, {"b"}, ctx)))
    assert result["summary"]["by_kind"] == {"leak_exact": 1, "truncated_answer": 1, "low_grounding": 1, "invented_name": 1,
                                            "personal_data": 1}
    assert result["summary"]["flagged_items"] == 1
    assert set(findings_by_item(result)) == {"b"}
    assert set(result["timings_s"]) >= {"duplicates", "answers", "grounding", "names", "language", "secrets", "stats"}


def _comparable(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in ("checked_at", "timings_s", "seconds", "parallel")}


def _crafted_items(ctx) -> tuple[list[dict], set[str]]:
    api = ctx.slices[0]
    items = [item("a", "What is the default timeout?", "The default stage timeout is 300 seconds.", api),
             item("b", "What is the default timeout", "Use `tide.explode()` and mail ops@acme-corp.com", api),
             item("c", "How do I set the retry policy for a stage?", "阶段的默认超时是三百秒。", api),
             item("d", "How can I set the retry policy for a stage?", "Token: sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2", api)]
    return items, {"b", "d"}


def test_checks_in_two_processes_give_the_same_result_as_in_one():
    ctx = context()
    items, eval_ids = _crafted_items(ctx)
    serial = run_checks(items, eval_ids, ctx, parallel=False)
    forked = run_checks(items, eval_ids, ctx, parallel=True)
    assert serial["parallel"] is False and forked["parallel"] is True
    assert _comparable(forked) == _comparable(serial)
    assert {"leak_exact", "leak_near", "invented_name", "language_mismatch", "personal_data", "secret"} <= set(serial["summary"]["by_kind"])
    assert set(forked["timings_s"]) == set(serial["timings_s"])


def test_a_failed_child_process_leaves_its_checks_to_the_parent(monkeypatch):
    import os

    import tools.quality.checks as checks

    ctx = context()
    items, eval_ids = _crafted_items(ctx)
    # The child is forked: what the module holds at that moment is what it runs. This one dies at once.
    monkeypatch.setattr(checks, "_child_main", lambda *args: os._exit(3))
    result = run_checks(items, eval_ids, ctx, parallel=True)
    assert _comparable(result) == _comparable(run_checks(items, eval_ids, ctx, parallel=False))


def test_check_dataset_saves_the_result_and_a_changed_journal_makes_it_stale(workdir):
    store = global_var.datasets()
    store.create("demo", meta={"generated_from": {"docs": "tidewater", "max_slice_tokens": 800}})
    store.append_item("demo", [{"role": "user", "content": "What is tidewater?"}, {"role": "assistant", "content": "A Python library."}])
    result = check_dataset("demo", global_var.datasets(), global_var.workdir().docs)
    assert result["docs"] == "tidewater" and result_path(store, "demo").name == ".demo.checks.json"
    assert load_result(store, "demo")["fingerprint"] == result["fingerprint"]
    store.append_item("demo", [{"role": "user", "content": "And?"}, {"role": "assistant", "content": "More."}])
    assert load_result(store, "demo") is None
    assert load_result(store, "demo", allow_stale=True)["stale"] is True
    assert "demo" in store.names() and ".demo.checks" not in " ".join(store.names())


# ---------------------------------------------------------------- redaction


def test_redaction_plan_lists_only_items_with_something_to_redact():
    plan = redaction_plan([item("a", "q", "Mail jane.doe@acme-corp.com please."), item("b", "q", "Nothing here.")])
    assert plan == {"a": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Mail [REDACTED:email] please."}]}


def test_redact_removes_the_secret_from_every_file_of_the_work_directory(workdir):
    secret, email = "sk-proj-4fJ2kQz9Lm8Xc1Vb7Nn0Pq3Rs6Tu5Wy2Za4Bd8Ef", "jane.doe@acme-corp.com"
    store = global_var.datasets()
    store.create("leaky")
    first = store.append_item("leaky", [{"role": "user", "content": "key?"}, {"role": "assistant", "content": f"Use {secret}."}])
    store.update_item("leaky", first["id"], [{"role": "user", "content": "key?"}, {"role": "assistant", "content": "Ask the admin."}])
    second = store.append_item("leaky", [{"role": "user", "content": "who?"}, {"role": "assistant", "content": f"Mail {email} today."}])
    # A training run's copy of the dataset and the judge's sidecar.
    run = workdir.training / "leaky-20260101-000000"
    (run / "data").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"dataset": "leaky"}), encoding="utf-8")
    (run / "data" / "train.jsonl").write_text(json.dumps({"id": second["id"], "messages": second["messages"]}) + "\n", encoding="utf-8")
    (run / "eval_report.md").write_text(f"| who? | Mail {email} today. |\n", encoding="utf-8")
    global_var.scores().append("leaky", [{"id": second["id"], "v": "x", "status": "scored", "overall": 7, "reason": f"quotes {email}"}])

    summary = redact_dataset("leaky", store, scores=global_var.scores(), training_root=workdir.training)

    assert summary["version"]["kind"] == "redact" and summary["items"] == 1 and summary["score_lines"] == 1
    assert len(summary["run_files"]) == 2
    leftovers = [path for path in workdir.root.rglob("*") if path.is_file() and "docs" not in path.relative_to(workdir.root).parts
                 and (secret.encode() in path.read_bytes() or email.encode() in path.read_bytes())]
    assert leftovers == []
    current = store.get_item("leaky", second["id"])["messages"][1]["content"]
    assert current == "Mail [REDACTED:email] today."
    assert "[REDACTED:openai_key]" in Path(store.path("leaky")).read_text(encoding="utf-8")  # the old version's text
    assert redact_dataset("leaky", store)["version"] is None  # nothing left: no new version
