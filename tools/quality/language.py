"""Language: Chinese or English, told by the share of CJK characters, and items that do not fit.

A text's language is measured on its prose (code blocks and inline code removed: identifiers are
English whatever the text's language). CJK characters are weighed against Latin words, counted as
letters / 5 (an English word averages about five letters, and a CJK character carries about as much
as a word): share = cjk / (cjk + latin_letters / 5). "zh" from 0.5 up, "en" below; a text with fewer
than MIN_UNITS of either is "unknown" and never flagged. That is enough for the two languages the
workbench speaks; it does not tell English from French, or Chinese from Japanese.

An item is flagged (language_mismatch) when its answer's language differs from its question's, and
when its question or answer differs from its source slice's language (the authority for generated
items), or, for an item without a source, from the dataset's majority when one language holds at
least MAJORITY of the dataset's answers (a mixed dataset, e.g. docs in both languages, has none).
"""

from __future__ import annotations

from collections import Counter

from tools.quality.text import cjk_count, strip_code

MIN_UNITS = 3.0
MAJORITY = 0.8
LETTERS_PER_WORD = 5
_NOT_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha())


def detect_language(text: str) -> str:
    """'zh', 'en' or 'unknown' (too little prose to tell)."""
    if text.isascii() and ("`" in text or "~~~" in text):
        # No CJK: "en" as soon as the prose holds MIN_UNITS words, and the text before its first backtick or
        # tilde fence is prose whatever the code after it (a fence's match starts at most at the spaces
        # before it): most answers say enough there, and the code patterns need not run.
        first = min(position for position in (text.find("`"), text.find("~~~")) if position >= 0)
        if len(text[:first].encode("ascii").translate(None, _NOT_LETTERS)) / LETTERS_PER_WORD >= MIN_UNITS:
            return "en"
    prose = strip_code(text) if "`" in text or "~~~" in text else text
    cjk = 0 if prose.isascii() else cjk_count(prose)
    # Letters counted in C: the ASCII bytes with everything but letters deleted.
    words = len(prose.encode("ascii", "ignore").translate(None, _NOT_LETTERS)) / LETTERS_PER_WORD
    if cjk + words < MIN_UNITS:
        return "unknown"
    return "zh" if cjk / (cjk + words) >= 0.5 else "en"


def item_languages(item: dict) -> tuple[str, str, int, int]:
    """(question language, answer language, question message index, answer message index) of the first exchange.
    The answer is the first assistant turn with prose: a turn that only calls tools has none (its calls
    are code, English whatever the conversation's language), so a call-then-answer item is told by its answer."""
    question = answer = "unknown"
    question_index = answer_index = -1
    for index, message in enumerate(item.get("messages") or []):
        if message.get("role") == "user" and question_index < 0:
            question, question_index = detect_language(message.get("content") or ""), index
        elif message.get("role") == "assistant" and answer_index < 0 and (message.get("content") or "").strip():
            answer, answer_index = detect_language(message.get("content") or ""), index
    return question, answer, question_index, answer_index


def majority_language(answer_languages: list[str]) -> str | None:
    known = [lang for lang in answer_languages if lang != "unknown"]
    if not known:
        return None
    lang, count = Counter(known).most_common(1)[0]
    return lang if count / len(known) >= MAJORITY else None


def language_findings(item: dict, languages: tuple[str, str, int, int], source_language: str | None,
                      majority: str | None) -> list[dict]:
    question, answer, question_index, answer_index = languages
    findings = []

    def flag(index: int, field: str, language: str, expected: str, against: str) -> None:
        findings.append({"item_id": item["id"], "kind": "language_mismatch", "where": {"message": index, "field": "content"},
                         "detail": {"part": field, "language": language, "expected": expected, "against": against}})

    reference, against = (source_language, "source") if source_language not in (None, "unknown") else (majority, "dataset")
    if reference and question not in ("unknown", reference):
        flag(question_index, "question", question, reference, against)
    if reference and answer not in ("unknown", reference):
        flag(answer_index, "answer", answer, reference, against)
    elif question != "unknown" and answer != "unknown" and question != answer:
        flag(answer_index, "answer", answer, question, "question")
    return findings
