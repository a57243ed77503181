"""How an exam question relates to the data a model was trained on: the same question (verbatim), the same
fact asked another way (paraphrased), or not in the training data (untrained); and whether its source
slice was trained on at all.

Comparing question texts alone misses most leaks: a question that asks the same cloze with another
lead-in ("Fill in the blank: …" against "According to the docs, …") shares few character 3-grams with
the training question, yet the model saw its answer next to the same words. So a question is compared by
what it asks *and* what it answers:
  verbatim      a training question is a near-duplicate of it (character 3-grams, tools.quality.duplicates'
                rule), or a training item holds nearly all of the question's content words (a cloze with
                another lead-in) together with its answer's key values
  paraphrased   a training item holds the answer's key values (the right option, the true statement's
                values, the reference answer) and shares words with the question: the fact was trained,
                in other words
  untrained     neither
Key values are the tokens that carry a fact: numbers, versions, error codes, identifiers (with "_", ".",
or inner capitals), quoted strings; an answer without any is compared by its content words. A false
true/false statement is covered as its true twin is: the fact it alters is what was or was not trained.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from schema.exam import CHOICE_KINDS, Question, QuestionCoverage, section_label
from tools.quality.text import STOPWORDS

# Words of questions that say how a question is asked, not what it asks.
LEAD_IN_WORDS = frozenset("""
fill blank according docs doc documentation documented document documents which what whats value values completes complete
correct true false following statement statements tell me know quick question please answer write code library
say says said explain means mean option options choose pick select goes go here there
""".split())
_WORD = re.compile(r"[A-Za-z0-9_]+(?:[.\-][A-Za-z0-9_]+)*|[\u4e00-\u9fff]")
_KEY_VALUE = re.compile(
    r"\b[A-Z][A-Z0-9]{0,5}-\d{2,}\b"                       # error codes TW-1203
    r"|\bv?\d+(?:\.\d+)+\b"                                  # versions, decimals
    r"|\b\d+\b"                                              # numbers
    r"|\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b"                 # dotted names
    r"|\b[a-z]+_[a-z0-9_]+\b"                                # snake_case
    r"|\b[A-Z][a-z0-9]+[A-Z]\w*\b"                           # CamelCase
    r"|[\"'“‘`]([^\"'”’`\n]{1,40})[\"'”’`]")                 # quoted strings
# A question covers an item as a cloze when the item holds this share of the question's content words ...
CLOZE_CONTAINMENT = 0.8
# ... and as a paraphrase when it holds the answer's key values and this share of the question's words.
PARAPHRASE_OVERLAP = 0.3
# An answer without key values: the share of its content words an item must hold.
ANSWER_WORDS = 0.6


def _words(text: str) -> list[str]:
    """Lower-cased content words; Chinese as character bigrams (a single character says little)."""
    tokens = _WORD.findall((text or "").lower())
    words, run = [], []
    for token in tokens + [""]:
        if len(token) == 1 and "\u4e00" <= token <= "\u9fff":
            run.append(token)
            continue
        if run:
            words += ["".join(run[i:i + 2]) for i in range(max(1, len(run) - 1))]
            run = []
        if token and token not in STOPWORDS:
            words.append(token)
    return words


def content_words(text: str) -> set[str]:
    return {word for word in _words(text) if word not in LEAD_IN_WORDS}


def key_values(text: str) -> set[str]:
    """The tokens of a text that carry a fact (lower-cased, quotes and backticks removed)."""
    values = set()
    for match in _KEY_VALUE.finditer(text or ""):
        value = (match.group(1) if match.group(1) is not None else match.group(0)).strip().lower()
        if value:
            values.add(value)
    return values


def item_texts(item: dict) -> tuple[str, str]:
    """(the item's last user question, its last answer)."""
    messages = item.get("messages") or []
    question = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    answer = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "assistant"), "")
    return question, answer


def fact_text(question: Question, by_id: dict[str, Question]) -> str:
    """What a question's right answer says: the right option, the true statement (a false twin's partner),
    or the reference answer."""
    if question.kind == "tf":
        if question.answer == 1 and question.pair:
            partner = next((q for q in by_id.values() if q.pair == question.pair and q.id != question.id), None)
            if partner is not None:
                return partner.question
        return question.question
    if question.kind in CHOICE_KINDS:
        return question.options[question.answer]
    return str(question.answer)


@dataclass
class _Item:
    id: str
    words: set[str]
    question_words: set[str]
    values: set[str]
    question_norm: str


@dataclass
class TrainingIndex:
    """The training items, prepared once for many questions: words and key values, and an inverted index."""

    items: list[_Item] = field(default_factory=list)
    by_word: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    slices: set[str] = field(default_factory=set)
    sections: set[str] = field(default_factory=set)
    has_provenance: bool = False

    @classmethod
    def build(cls, items: list[dict]) -> "TrainingIndex":
        index = cls()
        for item in items:
            question, answer = item_texts(item)
            words = content_words(question) | content_words(answer)
            values = key_values(question) | key_values(answer)
            position = len(index.items)
            index.items.append(_Item(str(item.get("id")), words, content_words(question), values,
                                     " ".join(_words(question))))
            for word in words | values:
                index.by_word[word].append(position)
            provenance = item.get("provenance") or {}
            unit = str(provenance.get("unit") or "")
            if unit:
                index.slices.add(unit.rsplit(":", 1)[0])
            if provenance.get("source_doc") or provenance.get("heading_path"):
                index.sections.add(section_label(provenance.get("source_doc"), provenance.get("heading_path")))
            index.has_provenance = index.has_provenance or bool(unit or provenance.get("source_doc"))
        return index

    def candidates(self, terms: set[str]) -> set[int]:
        found: set[int] = set()
        for term in terms:
            found.update(self.by_word.get(term, ()))
        return found


def slice_trained(question: Question, index: TrainingIndex) -> bool | None:
    """Whether the question's source slice (else its section) was in the training data; None without provenance."""
    if not index.has_provenance:
        return None
    if question.source.slice_id and question.source.slice_id in index.slices:
        return True
    return question.source.section in index.sections


def _holds(item_terms: set[str], wanted: set[str], share: float) -> bool:
    return bool(wanted) and len(wanted & item_terms) >= share * len(wanted)


def question_coverage(questions: list[Question], items: list[dict], near: dict[str, tuple[str, float]] | None = None,
                      index: TrainingIndex | None = None) -> dict[str, QuestionCoverage]:
    """Question id -> its coverage by the training `items`. `near`: question id -> (item id, similarity) of the
    near-duplicate questions found by character 3-grams (tools.generation.exams.leaked_questions), which are
    verbatim whatever their answers."""
    index = index or TrainingIndex.build(items)
    near = near or {}
    by_id = {q.id: q for q in questions}
    result: dict[str, QuestionCoverage] = {}
    for question in questions:
        trained_slice = slice_trained(question, index)
        if question.id in near:
            item_id, similarity = near[question.id]
            result[question.id] = QuestionCoverage(coverage="verbatim", slice_trained=trained_slice, item_id=item_id,
                                                   similarity=round(similarity, 3))
            continue
        asked = content_words(question.question if question.kind != "tf" else fact_text(question, by_id))
        fact = fact_text(question, by_id)
        values = key_values(fact)
        answer_words = content_words(fact) - asked if question.kind != "tf" else set()
        coverage, matched, best = "untrained", None, 0.0
        for position in index.candidates(values or asked):
            item = index.items[position]
            answered = _holds(item.values, values, 1.0) if values else (
                not answer_words or _holds(item.words, answer_words, ANSWER_WORDS))
            if not answered:
                continue
            overlap = len(asked & item.words) / len(asked) if asked else 0.0
            if overlap >= CLOZE_CONTAINMENT:
                coverage, matched, best = "verbatim", item.id, overlap
                break
            if overlap >= PARAPHRASE_OVERLAP and overlap > best:
                coverage, matched, best = "paraphrased", item.id, overlap
        result[question.id] = QuestionCoverage(coverage=coverage, slice_trained=trained_slice, item_id=matched,
                                               similarity=round(best, 3) if matched else None)
    return result
