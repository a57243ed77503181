"""What kind of value an answer is — a number, a version, an error code, a name, a phrase or a whole
statement — so that a multiple-choice question's wrong options can be held to the type of the right one.

A question whose right option is "300" among "fast", "TW-1203" and "the scheduler" is answered by type,
not by knowledge; a question whose options are whole sentences is a recognition item (a trained sentence
is recognised among altered ones without reading the question) and is reported apart.
"""

from __future__ import annotations

import re

_QUOTES = "`\"'“”‘’「」"
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9]{0,5}-\d{2,}")
_VERSION = re.compile(r"v?\d+\.\d+\.\d+(?:[.-][0-9A-Za-z]+)*")
_UNITS = (r"%|ms|s|sec|secs|seconds?|min|minutes?|h|hours?|days?|weeks?|bytes?|[KMGT]i?B|[kKMG]|x|×|"
          r"毫秒|秒|分钟|小时|天|周|个|次|字节|倍")
_NUMBER = re.compile(rf"[-+]?(?:\d[\d,_]*(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?\s*(?:{_UNITS})?", re.IGNORECASE)
_LITERAL = re.compile(r"true|false|none|null|yes|no|on|off|是|否|对|错", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*(?:\(\))?|--?[a-z][\w-]*|[\w.-]+/[\w./-]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_SENTENCE_END = re.compile(r"[.!?。!?]\s*$")

VALUE_TYPES = ("error_code", "version", "number", "literal", "identifier", "phrase", "statement")
# Types a wrong option must match exactly: a number among names is recognisable without knowledge.
STRICT_TYPES = ("error_code", "version", "number", "literal", "statement")


def _clean(text: str) -> str:
    return str(text or "").strip().strip(_QUOTES).strip()


def is_statement(text: str) -> bool:
    """A whole sentence: four or more words (or eight Chinese characters) ending like a sentence, or ten or more words."""
    cleaned = _clean(text)
    words = len(_WORD.findall(cleaned)) + len(_CJK.findall(cleaned)) / 2
    return words >= 10 or (words >= 4 and bool(_SENTENCE_END.search(cleaned)))


def value_type(text: str) -> str:
    """One of VALUE_TYPES for an option or answer text."""
    cleaned = _clean(text)
    if _ERROR_CODE.fullmatch(cleaned):
        return "error_code"
    if _VERSION.fullmatch(cleaned):
        return "version"
    if _NUMBER.fullmatch(cleaned):
        return "number"
    if _LITERAL.fullmatch(cleaned):
        return "literal"
    if _IDENTIFIER.fullmatch(cleaned):
        return "identifier"
    return "statement" if is_statement(cleaned) else "phrase"


def same_type(answer_type: str, option_type: str) -> bool:
    """Whether a wrong option of `option_type` fits a right one of `answer_type`: strict types must be equal;
    names and short phrases may stand for each other."""
    if answer_type in STRICT_TYPES or option_type in STRICT_TYPES:
        return answer_type == option_type
    return True


def mismatched_options(options: list[str], answer: int) -> list[int]:
    """Indexes of the wrong options whose type does not fit the right option's."""
    want = value_type(options[answer])
    return [i for i, option in enumerate(options) if i != answer and not same_type(want, value_type(option))]


_RECOGNITION_QUESTION = re.compile(
    r"\bwhich (?:one )?(?:of the following )?(?:statements?|sentences?|descriptions?)\b|"
    r"\bwhich of the following is (?:true|correct|right)\b|"
    r"(?:以下|下列|哪一?[个项条句]).{0,8}(?:说法|陈述|描述|表述)|(?:说法|陈述|描述|表述).{0,6}(?:正确|对)",
    re.IGNORECASE)


def is_recognition(question: str, options: list[str]) -> bool:
    """A multiple-choice question that asks which statement is right, or whose options are all statements."""
    return bool(_RECOGNITION_QUESTION.search(question or "")) or (bool(options) and all(is_statement(o) for o in options))
