"""The shape of a conversation: message order, empty / very short / truncated answers, answers that
repeat their question."""

from __future__ import annotations

import re

from schema.tool_calls import TOOL_ROLE
from tools.quality.text import FENCE_LINE, char_shingles, fast_tokens, normalize_for_shingles

SHORT_ANSWER_TOKENS = 4  # estimated tokens: "Yes." or "300." answer nothing a model can learn from
REPEAT_CONTAINMENT = 0.8  # share of the answer's 3-grams that are also the question's
# Generation limits answers are often cut at (max_tokens); an answer ending mid-sentence with an
# estimate within 10 % under one of them was probably cut there.
TOKEN_LIMITS = (128, 256, 512, 1024, 2048, 4096, 8192)
# Characters a finished answer ends with: sentence ends, closing brackets and quotes, a code span's
# backtick, emphasis markers, an ellipsis, and their fullwidth/CJK forms.
FINISHED_END = set(".!?;:)]}>\"'`*_…。！？；：）】」』”’》〉")
# A last line that is a list item, table row, heading or quote is a finished structure, not a sentence.
STRUCTURED_LINE = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|\||#|>)")


def message_order_findings(item: dict) -> list[dict]:
    """Findings for an order the trainer cannot use: an optional system message first, then user and
    assistant alternating, starting with user and ending with assistant (schema.dataset's rule). An
    assistant turn with tool calls is followed by their results (role tool, one per call) and then by
    an assistant turn again."""
    messages = item.get("messages") or []
    problems = []
    if not messages:
        problems.append((None, "no_messages"))
    else:
        offset = 1 if messages[0].get("role") == "system" else 0
        turns = messages[offset:]
        if not turns:
            problems.append((0, "no_turns"))
        expected, results_due = "user", 0
        for position, message in enumerate(turns):
            role = message.get("role")
            if results_due:
                if role != TOOL_ROLE:
                    problems.append((position + offset, "expected_tool"))
                    break
                results_due -= 1
                expected = "assistant"
                continue
            if role != expected:
                problems.append((position + offset, f"expected_{expected}"))
                break
            if role == "assistant" and message.get("tool_calls"):
                results_due = len(message["tool_calls"])
            expected = "assistant" if role == "user" or results_due else "user"
        else:
            if turns and turns[-1].get("role") != "assistant":
                problems.append((len(messages) - 1, "ends_without_answer"))
    return [{"item_id": item["id"], "kind": "message_order", "where": {"message": index, "field": "role"},
             "detail": {"problem": problem}} for index, problem in problems]


def answer_findings(item: dict) -> list[dict]:
    """Empty, very short, truncated and question-repeating answers (every assistant message). A turn that
    calls tools answers with its calls: its content may be empty or a short preface ("Let me check.")."""
    findings = []
    question = ""
    for index, message in enumerate(item.get("messages") or []):
        content = message.get("content") or ""
        if message.get("role") == "user":
            question = content
            continue
        if message.get("role") != "assistant":
            continue
        where = {"message": index, "field": "content"}
        stripped = content.strip()
        if message.get("tool_calls"):
            if stripped and truncation_reason(stripped) == "unclosed_fence":
                findings.append({"item_id": item["id"], "kind": "truncated_answer",
                                 "where": {**where, "span": [len(content.rstrip()) - 1, len(content.rstrip())]},
                                 "detail": {"reason": "unclosed_fence", "tokens": fast_tokens(stripped)}})
            continue
        if not stripped:
            findings.append({"item_id": item["id"], "kind": "empty_answer", "where": where, "detail": {}})
            continue
        tokens = fast_tokens(stripped)
        if tokens < SHORT_ANSWER_TOKENS:
            findings.append({"item_id": item["id"], "kind": "short_answer", "where": where, "detail": {"tokens": tokens}})
        reason = truncation_reason(stripped)
        if reason:
            if reason == "mid_sentence" and any(limit * 0.9 <= tokens <= limit for limit in TOKEN_LIMITS):
                reason = "token_limit"
            findings.append({"item_id": item["id"], "kind": "truncated_answer",
                             "where": {**where, "span": [len(content.rstrip()) - 1, len(content.rstrip())]},
                             "detail": {"reason": reason, "tokens": tokens}})
        if question and repeats_question(question, stripped):
            findings.append({"item_id": item["id"], "kind": "repeats_question", "where": where, "detail": {}})
    return findings


def truncation_reason(answer: str) -> str | None:
    """'unclosed_fence' when a code fence is opened and never closed, 'mid_sentence' when the last line
    is prose that stops without a sentence end; None for a finished answer."""
    if ("```" in answer or "~~~" in answer) and len(FENCE_LINE.findall(answer)) % 2:
        return "unclosed_fence"
    last_line = answer.rsplit("\n", 1)[-1]
    if FENCE_LINE.match(last_line) or STRUCTURED_LINE.match(last_line):
        return None
    if answer[-1] in FINISHED_END:
        return None
    return "mid_sentence"


def repeats_question(question: str, answer: str) -> bool:
    """True when the answer is (almost) only its question again: at least 80 % of the answer's
    character 3-grams occur in the question."""
    # Only an answer not much longer than the question, or one that quotes its start, can be mostly
    # the question: the 3-gram sets are built for those only (most answers are 5-10x longer).
    if len(answer) > 3 * len(question) + 20 and question.strip()[:30].casefold() not in answer.casefold():
        return False
    question_text = normalize_for_shingles(question)
    answer_grams = char_shingles(normalize_for_shingles(answer))
    if not answer_grams:
        return False
    question_grams = char_shingles(question_text)
    return len(answer_grams & question_grams) / len(answer_grams) >= REPEAT_CONTAINMENT
