"""Exam creation: questions of four kinds written from document slices by an LLM, validated, and frozen
as a version of an exam (db.exam_store); then the leakage check against a dataset.

A creation is a list of *units*: (slice, kind) pairs keyed `"{slice_id}:{kind}"`, one call each asking for
`per_slice` questions of that kind. It runs on `tools.llm.runner.UnitRunner`, like generation and the judge:
bounded concurrency, the same retried call (429/Retry-After, 5xx, timeouts, lost connections), JSON mode
dropped if rejected, `json_from_reply` repair plus one correction round, token and cost accounting, cancel.

Each unit's questions are appended to the exam's draft journal (exams/<name>/draft.jsonl) in one write
as soon as its call returns; a killed or cancelled creation loses only the calls in flight, and the
same command resumes it (units with a line are skipped, so no question is written twice). Once every
unit has an outcome, the draft is frozen into the next version (v1, v2, ...) and removed.

Kinds and their checks (a reply that fails them is sent back once with the problem named):
  mc     4 distinct options, one correct (`answer` its index; a letter "B" or the option's text repaired);
         the distractors come from the docs (the prompt adds an excerpt of another slice to draw them from)
         and must be of the right option's type (tools.evaluation.values): a question whose wrong options
         are of another type is dropped. A question whose options are whole statements ("which statement
         is correct?") is kept as kind "recognition": it is answered by recognising a sentence, and is
         reported apart.
  tf     a true statement and its false twin (one fact changed): two questions sharing `pair`, so every
         exam has as many true as false statements. The older shape, one statement and whether it is true,
         is accepted; such statements are balanced when the exam is frozen (the surplus label is dropped).
  short  a question and a short reference answer
  code   a task "write code with the library that ... and prints ..." and a reference solution that prints
  tool_call  (only when asked for) a task and the call that does it, written per slice that shows function
         signatures: the slice's functions are offered as tools (tools.generation.tool_calls); a question whose call
         names a function not offered, or whose arguments do not fit the signature, is dropped and counted

Every question keeps its slice's text (QuestionSource.excerpt): the evidence a judge and the open-book
condition see. Control sections (`control_sections`) are held out of generation (tools.generation.engine
skips their slices), so the exam's questions on them measure what the model knows without training on them.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from db.exam_store import ExamStore
from schema.dataset import normalize_question
from schema.document import DocumentSlice
from schema.exam import (DEFAULT_QUESTION_KINDS, QUESTION_KINDS, SECTION_SEPARATOR, TF_OPTIONS_EN, TF_OPTIONS_ZH, Exam, Question, QuestionSource,
                         in_sections, section_label)
from schema.provider import APIProvider
from tools.core.errors import UserError
from tools.core.i18n import LANGUAGES
from tools.core.workdir import validate_name
from tools.docs.docsets import slice_docset
from tools.docs.slicing import DEFAULT_MAX_TOKENS
from tools.evaluation.values import is_recognition, mismatched_options
from tools.generation.engine import slice_block
from tools.generation.tool_calls import EXAM_RULES as TOOL_CALL_RULES
from tools.generation.tool_calls import EXAM_SHAPE as TOOL_CALL_SHAPE
from tools.generation.tool_calls import exam_tools_block, offered_tools, parse_tool_questions, slice_functions
from tools.llm.limits import refuse_if_none_fits
from tools.llm.replies import OutputError, json_from_reply
from tools.llm.runner import MAX_LISTED_FAILURES, BackgroundJob, UnitFailure, UnitProgress, UnitRunner, now_iso
from tools.llm.settings import CallSettings, clamp_concurrency
from tools.quality.language import detect_language
from tools.workspace import Workspace

UNIT_DONE = "unit_done"
UNIT_FAILED = "unit_failed"
MC_OPTIONS = 4
# How much of another slice the multiple-choice prompt shows as the source of distractors.
DISTRACTOR_EXCERPT_CHARS = 1500
# The header fields that must match for a draft to be resumed.
DRAFT_SPEC = ("docset", "kinds", "per_slice", "lang", "slices", "max_slice_tokens", "control_sections")


# ---------------------------------------------------------------- settings and units


@dataclass
class ExamSettings(CallSettings):
    """Knobs of one exam creation (the call settings and its own); `validated()` checks them."""

    temperature: float = field(default=0.3, metadata={"help": "sampling temperature"})
    per_slice: int = field(default=2, metadata={"help": "questions of each kind per slice"})
    max_slice_tokens: int = field(default=DEFAULT_MAX_TOKENS, metadata={"help": "token budget of one document slice"})

    LIMITS = {
        **CallSettings.LIMITS,
        "per_slice": (1, 20, True),
        "max_slice_tokens": (32, 1_000_000, True),
    }


@dataclass(frozen=True)
class ExamUnit:
    """One call: `per_slice` questions of one kind from one slice; `other` is the distractor excerpt (mc);
    `functions` the slice's documented functions, offered as tools (tool_call)."""

    slice: DocumentSlice
    kind: str
    other: str = ""
    functions: tuple = ()

    @property
    def key(self) -> str:
        return f"{self.slice.slice_id}:{self.kind}"


def plan_exam_units(slices: list[DocumentSlice], kinds: list[str]) -> list[ExamUnit]:
    """Every kind of the first slice, then of the next: an interrupted creation has covered whole slices.
    A multiple-choice unit gets the next slice of another section (wrapping) as its source of distractors; a
    tool-call unit is planned only for a slice that shows function signatures."""
    units = []
    for index, current in enumerate(slices):
        other = ""
        if "mc" in kinds and len(slices) > 1:
            for step in range(1, len(slices)):
                candidate = slices[(index + step) % len(slices)]
                if candidate.heading_path != current.heading_path or candidate.source != current.source:
                    other = candidate.text[:DISTRACTOR_EXCERPT_CHARS]
                    break
        functions = slice_functions(current) if "tool_call" in kinds else ()
        units += [ExamUnit(current, kind, other if kind == "mc" else "", functions if kind == "tool_call" else ())
                  for kind in kinds if kind != "tool_call" or functions]
    return units


def parse_kinds(value: str | list[str] | None) -> list[str]:
    """'mc,tf' -> ['mc', 'tf'] in the canonical order (nothing: the default kinds, tool_call left out); UserError
    naming an unknown kind."""
    if value is None or value == "":
        return list(DEFAULT_QUESTION_KINDS)
    parts = value.split(",") if isinstance(value, str) else list(value)
    kinds = {part.strip().lower() for part in parts if part.strip()}
    unknown = sorted(kinds - set(QUESTION_KINDS))
    if unknown or not kinds:
        raise UserError("error.examgen_kinds", kinds=", ".join(unknown) or "-", choices=", ".join(QUESTION_KINDS))
    return [kind for kind in QUESTION_KINDS if kind in kinds]


# ---------------------------------------------------------------- prompts

_SHAPES = {
    "mc": '{"questions": [{"question": "...", "options": ["...", "...", "...", "..."], "answer": 0}]}',
    "tf": '{"questions": [{"statement": "<a true statement>", "false_statement": "<the same statement with one fact changed>"}]}',
    "short": '{"questions": [{"question": "...", "answer": "..."}]}',
    "code": '{"questions": [{"question": "Write code with the library that ... and prints ...", "answer": "<reference code that prints its result>"}]}',
    "tool_call": TOOL_CALL_SHAPE,
}
_SYSTEM = {
    "en": ("You write exam questions that test whether a model has learned a software library's documentation. "
           "Reply with one JSON object and nothing else, of the form {shape}, holding exactly {count} questions. "
           "Write the questions and answers in {language}."),
    "zh": ("你为考试出题,检验一个模型是否掌握了某个软件库的文档。只输出一个 JSON 对象,不要输出其他内容,"
           "格式为:{shape},恰好包含 {count} 道题。题目和答案用{language}写。"),
}
_LANGUAGE_NAMES = {"en": {"en": "English", "zh": "Chinese"}, "zh": {"en": "英文", "zh": "中文"}}
_KIND_RULES = {
    "en": {
        "mc": ("Multiple choice: each question has exactly 4 options, all different, exactly one correct; \"answer\" is the "
               "0-based index of the correct option. The 3 wrong options must be plausible and of the same type as the "
               "correct one (a number for a number, a version for a version, an error code for an error code, a name for "
               "a name): take them from other facts of the documentation (the other excerpt below, or other values of the "
               "same excerpt), never nonsense. The question alone must decide the answer: do not make the correct option "
               "the only full sentence. Do not label the options with letters."),
        "tf": ("True/false: for each question write one true statement about the library, as the documentation says it "
               "(\"statement\"), and its false twin (\"false_statement\"): the same sentence with exactly one fact "
               "changed (another value, name or code), so that only someone who knows the documentation can tell them apart."),
        "short": "Short answer: each question has one short factual answer (a name, a value, a phrase) found in the excerpt.",
        "code": ("Code task: each question asks to write code with the library that does something the excerpt documents "
                 "and prints the result (\"Write code with the library that ... and prints ...\"); \"answer\" is a short, "
                 "complete Python reference solution that imports what it uses, uses only names the documentation shows, "
                 "and prints its result with print()."),
        "tool_call": TOOL_CALL_RULES["en"],
    },
    "zh": {
        "mc": ("单选题:每题恰好 4 个互不相同的选项,只有一个正确;\"answer\" 是正确选项的下标(从 0 开始)。"
               "3 个错误选项要有迷惑性,且与正确选项同一类型(数字对数字、版本号对版本号、错误码对错误码、名称对名称):"
               "取自文档中的其他事实(下面的另一段节选,或本段中的其他取值),不要胡编。必须读懂题目才能选对:"
               "不要让正确选项成为唯一的完整句子。选项前不要加字母。"),
        "tf": ("判断题:每题写一句符合文档的正确陈述(\"statement\"),以及它的错误孪生句(\"false_statement\"):"
               "同一句话只改动一个事实(另一个取值、名称或错误码),只有掌握文档的人才能分辨。"),
        "short": "简答题:每题有一个简短的事实性答案(名称、取值或短语),可在节选中找到。",
        "code": ("编程题:每题要求用这个库写代码完成节选中记载的某件事并打印结果(“用这个库写代码,实现……并打印……”);"
                 "\"answer\" 是简短、完整的 Python 参考代码:导入所用的名称,只使用文档中出现的名称,并用 print() 打印结果。"),
        "tool_call": TOOL_CALL_RULES["zh"],
    },
}
DEFAULT_EXAM_TEMPLATE_EN = """{rules}

Documentation excerpt:
{document_slice}
{other}"""
DEFAULT_EXAM_TEMPLATE_ZH = """{rules}

文档节选:
{document_slice}
{other}"""
_OTHER_HEADING = {"en": "Another part of the same documentation (for the wrong options only):",
                  "zh": "同一文档的另一部分(仅用于错误选项):"}
EXAM_TEMPLATES = {"zh": DEFAULT_EXAM_TEMPLATE_ZH, "en": DEFAULT_EXAM_TEMPLATE_EN}


def exam_system_prompt(kind: str, count: int, lang: str) -> str:
    return _SYSTEM[lang].format(shape=_SHAPES[kind], count=count, language=_LANGUAGE_NAMES[lang][lang])


def exam_user_prompt(unit: ExamUnit, lang: str) -> str:
    other = f"\n{_OTHER_HEADING[lang]}\n{unit.other}\n" if unit.other else ""
    if unit.functions:  # the tools the calls may name, one line of JSON
        other = f"\n{exam_tools_block(offered_tools(unit.functions), lang)}\n"
    # Plain replacement, not str.format: the document text is full of braces.
    text = EXAM_TEMPLATES[lang]
    for name, value in (("{rules}", _KIND_RULES[lang][unit.kind]), ("{other}", other), ("{document_slice}", slice_block(unit.slice))):
        text = text.replace(name, value, 1)
    return text


def exam_messages(unit: ExamUnit, count: int, lang: str) -> list[dict]:
    """The request of one exam unit: `count` questions of its kind from its slice."""
    return [{"role": "system", "content": exam_system_prompt(unit.kind, count, lang)},
            {"role": "user", "content": exam_user_prompt(unit, lang)}]


def exam_correction_prompt(detail: str, kind: str, count: int) -> str:
    return (f"Your reply could not be used: {detail}. Reply again with only the JSON object {_SHAPES[kind]} "
            f"holding {count} questions.")


# ---------------------------------------------------------------- parsing and validating a reply

# An option label: "A. ", "b) ", "(C) ", "3、", "D:" — a letter or digit followed by its mark and then a space
# (or a CJK mark); "2.3.1", "3.10" and "a.b" are values, not labels.
_OPTION_LABEL = re.compile(r"^\s*\(?([A-Da-d]|[1-4])\s*(?:[.):]\s+|[:、)]\s*)(?=\S)")
_TRUE_WORDS = {"true", "t", "yes", "correct", "对", "正确", "是", "√"}
_FALSE_WORDS = {"false", "f", "no", "incorrect", "wrong", "错", "错误", "否", "×"}


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OutputError("wrong_schema", f"{where}: expected non-empty text, got {value!r}"[:200])
    return value.strip()


def _mc_answer(value: Any, options: list[str], where: str) -> int:
    """The correct option's index from an index, a letter ("B", "B."), or the option's own text."""
    if isinstance(value, bool):
        raise OutputError("wrong_schema", f"{where}.answer: expected the index 0-3 of the correct option, got {value!r}")
    if isinstance(value, int):
        index = value
    elif isinstance(value, str) and value.strip():
        word = value.strip()
        letter = word.rstrip(".)").upper()
        if len(letter) == 1 and "A" <= letter <= chr(ord("A") + len(options) - 1):
            index = ord(letter) - ord("A")
        elif word.isdigit():
            index = int(word)
        else:
            matches = [i for i, option in enumerate(options) if normalize_question(option) == normalize_question(word)]
            if len(matches) != 1:
                raise OutputError("wrong_schema", f"{where}.answer: {word!r} is not one of the options"[:200])
            index = matches[0]
    else:
        raise OutputError("wrong_schema", f"{where}.answer: expected the index 0-3 of the correct option, got {value!r}")
    if not 0 <= index < len(options):
        raise OutputError("out_of_range", f"{where}.answer: {index} is not an option index (0-{len(options) - 1})")
    return index


def _tf_answer(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().casefold() if isinstance(value, (str, int)) else None
    if word in _TRUE_WORDS or word == "1":
        return True
    if word in _FALSE_WORDS or word == "0":
        return False
    raise OutputError("wrong_schema", f"{where}.answer: expected true or false, got {value!r}"[:200])


def validate_question(data: Any, kind: str, lang: str, where: str = "questions[0]") -> list[dict]:
    """The questions one reply entry of `kind` makes: {question, options, answer[, kind, pair]} each
    (a true/false entry makes a true statement and its false twin), repaired where the intent is clear;
    OutputError naming what is wrong otherwise."""
    if not isinstance(data, dict):
        raise OutputError("wrong_schema", f"{where}: expected an object, got {type(data).__name__}")
    data = {str(key).strip().lower(): value for key, value in data.items()}
    if kind == "tf":
        return _tf_questions(data, lang, where)
    question = _text(data.get("question"), f"{where}.question")
    if kind == "mc":
        options = data.get("options")
        if isinstance(options, dict):  # {"A": "...", "B": "..."}
            options = [options[key] for key in sorted(options)]
        if not isinstance(options, list) or len(options) != MC_OPTIONS:
            count = len(options) if isinstance(options, list) else type(options).__name__
            raise OutputError("wrong_schema", f"{where}.options: expected exactly {MC_OPTIONS} options, got {count}")
        options = [_text(option, f"{where}.options[{i}]") if not isinstance(option, (int, float)) or isinstance(option, bool)
                   else str(option) for i, option in enumerate(options)]
        labels = [_OPTION_LABEL.match(option) for option in options]
        # Labels are stripped only when every option carries the next one in order: A B C D, or 1 2 3 4.
        if all(labels) and ("".join(m.group(1).upper() for m in labels) in ("ABCD", "1234")):
            options = [option[match.end():].strip() or option for option, match in zip(options, labels)]
        keys = [normalize_question(option) or option for option in options]
        if len(set(keys)) != len(keys):
            raise OutputError("wrong_schema", f"{where}.options: the {MC_OPTIONS} options must all differ")
        answer = _mc_answer(data.get("answer"), options, where)
        return [{"question": question, "options": options, "answer": answer,
                 "kind": "recognition" if is_recognition(question, options) else "mc"}]
    answer = data.get("answer")
    if kind == "code" and isinstance(answer, str):
        answer = answer.strip("\n")
    return [{"question": question, "options": [], "answer": _text(answer, f"{where}.answer")}]


def _tf_questions(data: dict, lang: str, where: str) -> list[dict]:
    """A true statement and its false twin ({"statement", "false_statement"}), or one statement with its truth
    ({"question", "answer"}, the older shape)."""
    options = list(TF_OPTIONS_ZH if lang == "zh" else TF_OPTIONS_EN)
    if "statement" in data or "false_statement" in data:
        true_text = _text(data.get("statement"), f"{where}.statement")
        false_text = _text(data.get("false_statement"), f"{where}.false_statement")
        if normalize_question(true_text) == normalize_question(false_text):
            raise OutputError("wrong_schema", f"{where}.false_statement: it must change one fact of the statement, "
                                              "not repeat it")
        return [{"question": true_text, "options": options, "answer": 0, "twin": "t"},
                {"question": false_text, "options": options, "answer": 1, "twin": "f"}]
    question = _text(data.get("question"), f"{where}.question")
    truth = _tf_answer(data.get("answer"), where)
    return [{"question": question, "options": options, "answer": 0 if truth else 1}]


def parse_exam_questions(content: str | None, kind: str, lang: str) -> list[dict]:
    """Questions of `kind` from a reply: {"questions": [...]}, one question object, or a list of them."""
    return parse_exam_reply(content, kind, lang)[0]


def parse_exam_reply(content: str | None, kind: str, lang: str, functions: tuple = ()) -> tuple[list[dict], int]:
    """(questions kept, questions dropped: multiple choice whose wrong options are of another type than the right
    one, tool calls that do not fit the offered `functions`); OutputError when nothing usable is left."""
    data = json_from_reply(content)
    if isinstance(data, dict) and "questions" in data:
        data = data["questions"]
    elif isinstance(data, dict) and ("question" in data or "statement" in data):
        data = [data]
    if not isinstance(data, list):
        keys = ", ".join(sorted(map(str, data))) if isinstance(data, dict) else type(data).__name__
        raise OutputError("wrong_schema", f"expected {_SHAPES[kind]}, got an object with {keys}"[:300])
    if not data:
        raise OutputError("no_questions", "the list of questions was empty")
    if kind == "tool_call":
        kept, dropped, problem = parse_tool_questions(data, {f.name: f for f in functions}, offered_tools(functions))
        if not kept:
            raise OutputError("invalid_tool_calls", problem[:300])
        return kept, dropped
    questions = [question for i, entry in enumerate(data) for question in validate_question(entry, kind, lang, f"questions[{i}]")]
    if kind == "mc":
        kept = [q for q in questions if q["kind"] == "recognition" or not mismatched_options(q["options"], q["answer"])]
        if not kept:
            index = mismatched_options(questions[0]["options"], questions[0]["answer"])[0]
            raise OutputError("mixed_option_types", f"questions[0].options[{index}] {questions[0]['options'][index]!r} is not "
                              f"of the same type as the correct option {questions[0]['options'][questions[0]['answer']]!r}: "
                              "write wrong options of the correct option's type"[:300])
        return kept, len(questions) - len(kept)
    return questions, 0


# ---------------------------------------------------------------- preparing a creation


@dataclass
class PreparedExam:
    """Everything an exam creation needs, checked: build it with `prepare_exam`."""

    name: str
    docset: str
    provider: APIProvider
    kinds: list[str]
    lang: str
    settings: ExamSettings
    slices: list[DocumentSlice]
    store: ExamStore
    selected_slices: list[str] | None = None  # the ids asked for (None: all slices)
    control_sections: list[str] = field(default_factory=list)  # held out of generation (schema.exam.in_sections)
    resuming: bool = False
    notes: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def units(self) -> list[ExamUnit]:
        return plan_exam_units(self.slices, self.kinds)

    @property
    def template(self):  # what UnitRunner-based code may read for its summary
        return None

    def header(self) -> dict:
        return {"docset": self.docset, "kinds": self.kinds, "per_slice": self.settings.per_slice, "lang": self.lang,
                "slices": self.selected_slices, "max_slice_tokens": self.settings.max_slice_tokens,
                "control_sections": self.control_sections, "provider": self.provider.name, "model": self.provider.model_id}


def docs_language(slices: list[DocumentSlice]) -> str:
    """'zh' or 'en': the language most of the slices' text is written in."""
    votes = Counter(detect_language(s.text) for s in slices)
    return "zh" if votes["zh"] > votes["en"] else "en"


def control_sections_of(slices: list[DocumentSlice], wanted: list[str] | None, docset: str) -> list[str]:
    """The control sections asked for, each checked to name a document or section of the doc set
    ('guide/errors.md' or 'guide/errors.md > Errors > Scheduler'); UserError naming one that does not."""
    labels = [section_label(s.source, s.heading_path) for s in slices]
    sections = []
    for value in wanted or []:
        section = SECTION_SEPARATOR.join(part.strip() for part in str(value).split(">") if part.strip())
        if not section:
            continue
        if not any(in_sections(label, [section]) for label in labels):
            documents = sorted({s.source for s in slices})
            raise UserError("error.examgen_unknown_section", section=section, docs=docset,
                            examples=", ".join(documents[:6]) + (" …" if len(documents) > 6 else ""))
        if section not in sections:
            sections.append(section)
    if sections and all(in_sections(label, sections) for label in labels):
        raise UserError("error.examgen_all_control", docs=docset)
    return sections


def prepare_exam(workspace: Workspace, name: str, docset: str, provider: str | APIProvider,
                 kinds: str | list[str] | None = None, settings: ExamSettings | None = None,
                 slice_ids: list[str] | None = None, lang: str | None = None, restart: bool = False,
                 control_sections: list[str] | None = None) -> PreparedExam:
    """The one place that checks an exam-creation request; raises UserError saying what to fix."""
    settings = (settings or ExamSettings()).validated()
    store = workspace.exams
    name = validate_name(name, "exam name")
    docset = validate_name(docset, "docs")
    kinds = parse_kinds(kinds)
    if lang is not None and lang not in LANGUAGES:
        raise UserError("error.examgen_lang", lang=lang, choices=", ".join(LANGUAGES))
    provider = workspace.provider(provider, missing="error.examgen_provider_args")
    notes: list[tuple[str, dict]] = []
    clamp_concurrency(settings, provider, notes, "generate.concurrency_clamped")
    slices, files = slice_docset(workspace.docs_folder(docset), settings.max_slice_tokens)
    if not slices:
        raise UserError("error.generate_no_slices", docs=docset, files=len(files))
    selected = None
    if slice_ids:
        selected = list(dict.fromkeys(s.strip() for s in slice_ids if s.strip()))
        missing = sorted(set(selected) - {s.slice_id for s in slices})
        if missing or not selected:
            raise UserError("error.examgen_unknown_slices", docs=docset, ids=", ".join(missing) or "-")
        slices = [s for s in slices if s.slice_id in set(selected)]
    controls = control_sections_of(slices, control_sections, docset)
    lang = lang or docs_language(slices)
    # Another process creating this exam is named before any work.
    store.lock(name).acquire().release()
    prepared = PreparedExam(name=name, docset=docset, provider=provider, kinds=kinds, lang=lang, settings=settings,
                            slices=slices, store=store, selected_slices=selected, control_sections=controls, notes=notes)
    if "tool_call" in kinds and not any(unit.kind == "tool_call" for unit in prepared.units):
        if len(kinds) == 1:
            raise UserError("error.toolgen_exam_no_functions", docs=docset)
        notes.append(("toolgen.exam_no_functions", {}))
    # Nothing is sent (and no draft discarded) when no unit's request would fit the provider's context length.
    refuse_if_none_fits(provider, (exam_messages(unit, settings.per_slice, lang) for unit in prepared.units))
    if controls:
        held = sum(1 for s in slices if in_sections(section_label(s.source, s.heading_path), controls))
        notes.append(("examgen.control_sections", {"sections": "; ".join(controls), "slices": held}))
    header, _ = store.read_draft(name)
    if header is not None:
        if restart:
            store.discard_draft(name)
            notes.append(("examgen.draft_discarded", {"name": name}))
        else:
            wanted = prepared.header()
            # A draft written before a field existed holds nothing for it: an empty value matches.
            differs = [key for key in DRAFT_SPEC if (header.get(key) or None) != (wanted[key] or None)]
            if differs:
                raise UserError("error.examgen_draft_mismatch", name=name, fields=", ".join(differs))
            prepared.resuming = True
            notes.append(("examgen.resuming", {"name": name}))
    versions = store.versions(name)
    if versions and not prepared.resuming:
        notes.append(("examgen.next_version", {"name": name, "version": versions[-1] + 1}))
    return prepared


# ---------------------------------------------------------------- the run


def questions_of_unit(unit: ExamUnit, questions: list[dict], source: QuestionSource, seen: set[str]) -> tuple[list[dict], int]:
    """(the unit's questions as stored in the draft, duplicates dropped). A true statement and its false twin
    stay together: when either repeats a question already written, both are dropped, so the labels stay balanced."""
    kept, duplicates = [], 0
    groups: list[list[dict]] = []
    for question in questions:
        if question.get("twin") == "f" and groups and groups[-1][0].get("twin") == "t" and len(groups[-1]) == 1:
            groups[-1].append(question)
        else:
            groups.append([question])
    for number, group in enumerate(groups, 1):
        keys = [normalize_question(q["question"]) for q in group]
        if not all(keys) or any(key in seen for key in keys):
            duplicates += len(group)
            continue
        seen.update(keys)
        for question in group:
            twin = question.get("twin")
            fields = {key: question[key] for key in ("question", "options", "answer", "tools") if key in question}
            kept.append(Question(id=f"{unit.key}:{number}{twin or ''}", kind=question.get("kind") or unit.kind, source=source,
                                 pair=f"{unit.key}:{number}" if twin else None, **fields).model_dump(exclude_none=True))
    return kept, duplicates


class ExamCreationRunner(UnitRunner):
    """One execution of a prepared exam creation; `await run()` returns the final progress (a UnitProgress,
    `dataset` naming the exam and `items` counting questions). `self.exam` is the frozen version once the run
    finished. The whole creation holds the exam's lock: a second one, from any process, ends at once as failed."""

    def __init__(self, prepared: PreparedExam, cancel_event: threading.Event | None = None,
                 on_progress: Callable[[UnitProgress], None] | None = None):
        super().__init__(prepared.provider, prepared.settings, UnitProgress, prepared.name, cancel_event, on_progress)
        self.prepared = prepared
        self.store = prepared.store
        self._seen: set[str] = set()
        self.exam: Exam | None = None

    def _lock(self):
        return self.store.lock(self.prepared.name)

    async def _run_holding_the_lock(self) -> UnitProgress:
        prepared, progress = self.prepared, self.progress
        units = prepared.units
        pending = self._resume_state(units)
        progress.total_units = len(units)
        progress.skipped_units = len(units) - len(pending)
        progress.status = "running"
        self._queue.extend(pending)
        progress.started_at = time.time()
        self._publish()
        await self.open()
        return await self._work_through(min(self.settings.concurrency, len(pending)))

    def _resume_state(self, units: list[ExamUnit]) -> list[ExamUnit]:
        """Start the draft, or read what an earlier (killed or cancelled) run finished; the units still to do.
        Failed units are tried again."""
        prepared, store = self.prepared, self.store
        header, records = store.read_draft(prepared.name)
        if header is None:
            store.start_draft(prepared.name, {**prepared.header(), "started_at": now_iso()})
            return list(units)
        done = set()
        for record in records:
            if record.get("type") == UNIT_DONE:
                done.add(record.get("unit"))
                for question in record.get("questions") or []:
                    self._seen.add(normalize_question(question.get("question", "")))
        return [unit for unit in units if unit.key not in done]

    async def _process(self, unit: ExamUnit) -> None:
        prepared, progress = self.prepared, self.progress
        tokens = [0, 0]
        try:
            questions, mixed = await self._questions(unit, tokens)
        except UnitFailure as failure:
            self.store.append_draft(prepared.name, {"type": UNIT_FAILED, "unit": unit.key, "reason": failure.reason,
                                                    "detail": failure.detail, "tokens": tokens, "at": now_iso()})
            progress.failed_units += 1
            self._record_failure(failure, {"unit": unit.key, "source": unit.slice.source, "reason": failure.reason,
                                           "detail": failure.detail})
            return
        source = QuestionSource(source_doc=unit.slice.source, heading_path=list(unit.slice.heading_path),
                                slice_id=unit.slice.slice_id, excerpt=unit.slice.text)
        kept, duplicates = questions_of_unit(unit, questions, source, self._seen)
        dropped = {"invalid_calls" if unit.kind == "tool_call" else "mixed_types": mixed}
        # One line per unit: the unit's questions and its completion cannot be separated by a kill.
        self.store.append_draft(prepared.name, {"type": UNIT_DONE, "unit": unit.key, "questions": kept,
                                                "duplicates": duplicates, **dropped, "tokens": tokens,
                                                "at": now_iso()})
        progress.done_units += 1
        progress.items += len(kept)
        progress.duplicates += duplicates
        self._publish()

    async def _questions(self, unit: ExamUnit, tokens: list[int]) -> tuple[list[dict], int]:
        """(validated questions of one unit, questions dropped for mixed option types); an unusable reply is
        retried once with the problem explained."""
        lang, count = self.prepared.lang, self.settings.per_slice
        messages = exam_messages(unit, count, lang)
        return await self._ask(messages, tokens, lambda content: parse_exam_reply(content, unit.kind, lang, unit.functions),
                               lambda detail: exam_correction_prompt(detail, unit.kind, count))

    # ---- freezing ----

    def _finish(self) -> None:
        progress = self.progress
        progress.finished_at = time.time()
        if progress.status == "finished":
            try:
                self.exam = self._freeze()
            except UserError as exc:
                progress.status, progress.message = "failed", str(exc)
        self._publish()

    def _freeze(self) -> Exam:
        """The draft as the next frozen version, questions in plan order; the draft is then removed."""
        prepared = self.prepared
        _, records = self.store.read_draft(prepared.name)
        by_unit: dict[str, list[dict]] = {}
        failed: dict[str, dict] = {}
        tokens = [0, 0]
        mixed = invalid_calls = 0
        for record in records:
            unit = record.get("unit")
            tokens[0] += (record.get("tokens") or [0, 0])[0]
            tokens[1] += (record.get("tokens") or [0, 0])[1]
            if record.get("type") == UNIT_DONE:
                by_unit[unit] = record.get("questions") or []
                mixed += int(record.get("mixed_types") or 0)
                invalid_calls += int(record.get("invalid_calls") or 0)
                failed.pop(unit, None)
            elif record.get("type") == UNIT_FAILED and unit not in by_unit:
                failed[unit] = {"unit": unit, "reason": record.get("reason"), "detail": record.get("detail")}
        questions, unbalanced = balance_true_false([question for unit in prepared.units for question in by_unit.get(unit.key, [])])
        if not questions:
            raise UserError("error.examgen_no_questions", name=prepared.name, failed=len(failed))
        generator = {"provider": prepared.provider.name, "model": prepared.provider.model_id, "kinds": prepared.kinds,
                     "per_slice": self.settings.per_slice, "slices": len(prepared.slices),
                     "selected_slices": prepared.selected_slices, "max_slice_tokens": self.settings.max_slice_tokens,
                     "units": len(prepared.units), "failed_units": list(failed.values())[:MAX_LISTED_FAILURES],
                     "tokens": {"in": tokens[0], "out": tokens[1]},
                     "cost": prepared.provider.estimate_cost(tokens[0], tokens[1]),
                     "dropped": {"mixed_option_types": mixed, "true_false_balance": unbalanced,
                                 **({"invalid_tool_calls": invalid_calls} if "tool_call" in prepared.kinds else {})},
                     "settings": {k: v for k, v in asdict(self.settings).items()}}
        exam = Exam(name=prepared.name, docset=prepared.docset, lang=prepared.lang, generator=generator,
                    control_sections=prepared.control_sections, questions=[Question.model_validate(q) for q in questions])
        frozen = self.store.save_new_version(exam)
        self.store.discard_draft(prepared.name)
        return frozen


def balance_true_false(questions: list[dict]) -> tuple[list[dict], int]:
    """(questions with as many true as false single statements, how many were dropped). Twins are balanced
    already; of the statements written without a twin, the surplus label's last ones are dropped, so a
    model that always answers one label scores 50 %."""
    single = [q for q in questions if q.get("kind") == "tf" and not q.get("pair")]
    true_ids = [q["id"] for q in single if q.get("answer") == 0]
    false_ids = [q["id"] for q in single if q.get("answer") == 1]
    keep = min(len(true_ids), len(false_ids))
    dropped = set(true_ids[keep:]) | set(false_ids[keep:])
    return [q for q in questions if q["id"] not in dropped], len(dropped)


def run_exam_creation(prepared: PreparedExam, cancel_event: threading.Event | None = None,
                      on_progress: Callable[[UnitProgress], None] | None = None) -> tuple[UnitProgress, Exam | None]:
    """Run to the end (or until `cancel_event` is set) on a fresh event loop: (final progress, frozen exam or None)."""
    run = ExamCreationRunner(prepared, cancel_event, on_progress)
    progress = asyncio.run(run.run())
    return progress, run.exam


class ExamCreationJob(BackgroundJob):
    """An exam creation in the background; `exam` is the frozen exam once it ends well."""

    def __init__(self, prepared: PreparedExam):
        super().__init__(prepared, UnitProgress(dataset=prepared.name, concurrency=prepared.settings.concurrency),
                         run_exam_creation, f"exam:{prepared.name}", f"creating exam {prepared.name}")
        self.exam: Exam | None = None

    def _work(self) -> UnitProgress:
        final, self.exam = run_exam_creation(self.prepared, self.cancel_event, self._publish)
        return final
