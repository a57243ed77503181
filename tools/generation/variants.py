"""Paraphrase variation in generation: more phrasings of each generated question, and renderings of a slice's
facts (a prose passage, a Markdown table, a Q&A list, common mistakes), each one its own dataset item.

Why: a fact becomes usable to a model when it has seen it in many phrasings and in running text, not as one
question/answer pair (Allen-Zhu & Li, Physics of Language Models 3.1; Yang et al. 2024, synthetic continued
pretraining); tuned on single pairs, a small model memorises the answer strings.

The units they add to a generation run (tools.generation.engine), each with its own key, so a resume skips
exactly what is done:
  * with `question_variants` N > 1, per generation unit "<slice>:<round>" a phrasing unit
    "<slice>:<round>-phrasings": one call asking for N-1 more phrasings of each question that unit wrote
    (it runs once that unit is done);
  * per rendering R of `renderings`, per slice a unit "<slice>:render-R": one call.
Every key keeps the slice id before its last colon, like the generation units (docsync, the judge and the
quality stats find an item's slice that way).

What an item's provenance says:
  variant  "question:1" (a question as generated, when phrasings are on), "question:k" (its k-th phrasing),
           "rendering:R"
  group    the phrasings of one question share it: "<unit>#<n>" (the n-th question a unit wrote); a question
           generated before phrasings were asked has none, and its phrasings carry its item id (`group_of`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from schema.dataset import phrasing_group
from schema.document import DocumentSlice
from tools.core.errors import UserError
from tools.core.i18n import LANGUAGES, t
from tools.llm.replies import OutputError, json_from_reply
from tools.quality.language import detect_language

# At most this many phrasings of one question (the question as generated included).
MAX_QUESTION_VARIANTS = 10
PHRASINGS_SUFFIX = "-phrasings"
RENDERING_PREFIX = "render-"
QUESTION_VARIANT = "question"
RENDERING_VARIANT = "rendering"


# ---------------------------------------------------------------- the renderings


@dataclass(frozen=True)
class Rendering:
    """One way of restating a slice's facts: `instruction` (per language) says what the item's answer is;
    its label on the page and in summaries is the string `variants.rendering.<name>`."""

    name: str
    instruction: dict[str, str]


_EXACT = {
    "en": "every name, value, default, limit and error code of the excerpt, stated exactly as the excerpt states it",
    "zh": "节选中的每个名称、取值、默认值、上限和错误码,都与节选的写法完全一致",
}

RENDERINGS: tuple[Rendering, ...] = (
    Rendering("prose", {
        "en": ("Restate the facts of the excerpt as one passage of running prose, the way a colleague would explain "
               f"them: {_EXACT['en']}. No list, no table, no heading."),
        "zh": f"用一段连贯的叙述文字重述节选中的事实,像同事讲解一样:{_EXACT['zh']}。不要用列表、表格或标题。",
    }),
    Rendering("table", {
        "en": ("Put the facts of the excerpt into one Markdown table: a header row, then one row per fact (what it is "
               f"about, the exact value or name, a short note): {_EXACT['en']}."),
        "zh": f"把节选中的事实整理成一张 Markdown 表格:先是表头,然后每个事实一行(关于什么、确切的取值或名称、简短说明):{_EXACT['zh']}。",
    }),
    Rendering("qa", {
        "en": ("Write the facts of the excerpt as a short FAQ: a list of questions, each followed by its answer "
               f"(Q: ... / A: ...), covering {_EXACT['en']}."),
        "zh": f"把节选中的事实写成简短的常见问题解答:一组问题,每个问题后面跟着它的回答(问:…… / 答:……),涵盖{_EXACT['zh']}。",
    }),
    Rendering("mistakes", {
        "en": ("Write the common mistakes a user of this part of the documentation could make (a wrong value, a wrong "
               "name, a misread default or limit), each followed by what the documentation actually says: "
               f"{_EXACT['en']}. Only mistakes the excerpt itself lets you correct."),
        "zh": ("列出使用这部分文档时常见的错误(取值错、名称错、误解默认值或上限),每条后面写出文档的实际说法:"
               f"{_EXACT['zh']}。只写节选本身能纠正的错误。"),
    }),
)
RENDERING_NAMES = tuple(rendering.name for rendering in RENDERINGS)
_BY_NAME = {rendering.name: rendering for rendering in RENDERINGS}


def rendering_label(name: str, lang: str | None = None) -> str:
    return t(f"variants.rendering.{name}", lang)


def rendering_choices(lang: str | None = None) -> list[tuple[str, str]]:
    """(label, name) of every rendering, for a checkbox group."""
    return [(rendering_label(name, lang), name) for name in RENDERING_NAMES]


def checked_renderings(value) -> tuple[str, ...]:
    """The renderings asked for ("prose,table", a list, or nothing) in the table's order; UserError naming an
    unknown one and the known ones."""
    if value is None or value == "":
        return ()
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = [str(part).strip().lower() for part in parts if str(part).strip()]
    unknown = sorted(set(names) - set(RENDERING_NAMES))
    if unknown:
        raise UserError("error.variants_unknown_rendering", names=", ".join(unknown), choices=", ".join(RENDERING_NAMES))
    return tuple(name for name in RENDERING_NAMES if name in names)


def check_question_variants(value) -> None:
    """UserError when `value` is a number outside 1..MAX_QUESTION_VARIANTS (other problems: the settings' check)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not 1 <= value <= MAX_QUESTION_VARIANTS:
        raise UserError("error.variants_range", value=value, high=MAX_QUESTION_VARIANTS)


# ---------------------------------------------------------------- unit keys and planning


def phrasing_unit_key(generation_unit_key: str) -> str:
    """The key of the phrasing unit of generation unit "<slice>:<round>"."""
    return generation_unit_key + PHRASINGS_SUFFIX


def rendering_unit_key(slice_id: str, name: str) -> str:
    return f"{slice_id}:{RENDERING_PREFIX}{name}"


def variant_tag(kind: str, which) -> str:
    """"question:2", "rendering:table": the provenance's `variant`."""
    return f"{kind}:{which}"


def question_group(unit_key: str, index: int) -> str:
    """The group of the `index`-th question (from 0) a generation unit wrote."""
    return f"{unit_key}#{index}"


def planned_variant_calls(slices: int, rounds: int, question_variants: int, renderings: Iterable[str]) -> dict[str, int]:
    """The calls phrasings and renderings add to a run over `slices` slices: {"phrasings", "renderings"}."""
    return {"phrasings": slices * rounds if question_variants > 1 else 0,
            "renderings": slices * len(tuple(renderings))}


# ---------------------------------------------------------------- prompts


def prompt_language(template_content: str, slices: list[DocumentSlice]) -> str:
    """The language a run's phrasings and renderings are asked in: the template's (it says which language the
    pairs are written in), else the one most of the slices are written in."""
    lang = detect_language(template_content.replace("{document_slice}", ""))
    if lang in LANGUAGES:
        return lang
    votes = Counter(detect_language(s.text) for s in slices)
    return "zh" if votes["zh"] > votes["en"] else "en"


_LANGUAGE_NAMES = {"en": "English", "zh": "中文"}

_PHRASING_SYSTEM = {
    "en": ("You rephrase questions for fine-tuning a model on a software library's documentation. For each question of "
           "the list below, write exactly {count} other phrasings: the same question asked in other words (another word "
           "order, other verbs, a user's voice, more or less formal), each answered by the same answer and naming what "
           "the original names (the project, exact names and values). Write them in {language}. Reply with one JSON "
           'object and nothing else, of the form {"phrasings": [["<phrasing of question 1>", ...], '
           '["<phrasing of question 2>", ...]]}: one list per question, in the order of the questions.'),
    "zh": ("你为微调模型改写问题,使它掌握某个软件库的文档。对下面列表中的每个问题,恰好再写 {count} 种问法:"
           "同一个问题换一种说法(换语序、换动词、用户的口吻、更正式或更口语),答案不变,并保留原问题提到的项目、"
           '确切名称和取值。用{language}写。只输出一个 JSON 对象,不要输出其他内容,格式为:{"phrasings": '
           '[["问题 1 的问法", ...], ["问题 2 的问法", ...]]}:每个问题一个列表,顺序与问题相同。'),
}
_PHRASING_USER = {
    "en": "Documentation excerpt (for context):\n{document_slice}\n\nQuestions (a JSON list):\n{questions}",
    "zh": "文档节选(供参考):\n{document_slice}\n\n问题(JSON 列表):\n{questions}",
}
_RENDERING_SYSTEM = {
    "en": ("You write training items that restate a software library's documentation in other forms. "
           "[rendering: {name}] {instruction} Then write the request a user would make that this text answers, naming "
           "the project and the subject of the excerpt. Write both in {language}. Reply with one JSON object and nothing "
           'else, of the form {"question": "<the request>", "answer": "<the text>"}.'),
    "zh": ("你为微调模型编写训练条目,用其他形式重述某个软件库的文档。[rendering: {name}] {instruction} "
           "然后写出用户会提出的、由这段文字回答的请求,请求中要提到项目和节选的主题。两者都用{language}写。"
           '只输出一个 JSON 对象,不要输出其他内容,格式为:{"question": "请求", "answer": "文字"}。'),
}
_RENDERING_USER = {
    "en": "{context}Documentation excerpt:\n{document_slice}",
    "zh": "{context}文档节选:\n{document_slice}",
}
_CONTEXT_HEAD = {"en": "Context: ", "zh": "背景:"}


def _fill(template: str, **values: str) -> str:
    """`template` with each {name} of `values` replaced, in one pass: not str.format, since the JSON shapes, the
    documents and the questions are full of braces (and a value is never searched for names)."""
    return re.sub(r"\{(" + "|".join(map(re.escape, values)) + r")\}", lambda match: values[match.group(1)], template)


def phrasing_messages(questions: list[str], slice_text: str, extra: int, lang: str) -> list[dict]:
    """The chat messages asking for `extra` more phrasings of each of `questions` (`slice_text`: the slice
    block the questions came from)."""
    listed = json.dumps([" ".join(q.split()) for q in questions], ensure_ascii=False, indent=1)
    system = _fill(_PHRASING_SYSTEM[lang], count=str(extra), language=_LANGUAGE_NAMES[lang])
    user = _fill(_PHRASING_USER[lang], questions=listed, document_slice=slice_text)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def rendering_messages(name: str, slice_text: str, variables: dict[str, str], lang: str) -> list[dict]:
    """The chat messages asking for rendering `name` of a slice (`variables`: the template's, e.g. the project)."""
    system = _fill(_RENDERING_SYSTEM[lang], name=name, instruction=_BY_NAME[name].instruction[lang],
                   language=_LANGUAGE_NAMES[lang])
    values = "; ".join(f"{key} = {value}" for key, value in variables.items() if str(value).strip())
    context = f"{_CONTEXT_HEAD[lang]}{values}\n\n" if values else ""
    user = _fill(_RENDERING_USER[lang], context=context, document_slice=slice_text)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def phrasing_correction(detail: str, questions: int, extra: int) -> str:
    return (f"Your reply could not be used: {detail}. Reply again with only the JSON object "
            '{"phrasings": [[...], ...]}' f" holding {questions} lists (one per question, in order) of {extra} phrasings each.")


def rendering_correction(detail: str) -> str:
    return (f"Your reply could not be used: {detail}. Reply again with only the JSON object "
            '{"question": "...", "answer": "..."}.')


def parse_phrasings(content: str | None, questions: int, extra: int) -> list[list[str]]:
    """Per question (in order), up to `extra` phrasings from a reply {"phrasings": [[...], ...]} (a bare list of
    lists is accepted, and a string where a list of one is meant); OutputError when the shape is wrong or the
    reply holds no phrasing at all."""
    data = json_from_reply(content)
    if isinstance(data, dict):
        if "phrasings" not in data:
            raise OutputError("wrong_schema", 'expected {"phrasings": [[...], ...]}, got an object with '
                              + (", ".join(sorted(map(str, data))) or "no keys"))
        data = data["phrasings"]
    if not isinstance(data, list) or len(data) != questions:
        got = f"a list of {len(data)}" if isinstance(data, list) else type(data).__name__
        raise OutputError("wrong_schema", f"expected one list of phrasings per question ({questions}), got {got}")
    phrasings = []
    for index, entry in enumerate(data):
        entry = [entry] if isinstance(entry, str) else entry
        if not isinstance(entry, list):
            raise OutputError("wrong_schema", f"phrasings[{index}]: expected a list of strings, got {type(entry).__name__}")
        phrasings.append([text.strip() for text in entry if isinstance(text, str) and text.strip()][:extra])
    if not any(phrasings):
        raise OutputError("no_phrasings", "no list held a phrasing")
    return phrasings


# ---------------------------------------------------------------- counting what a dataset holds


group_of = phrasing_group  # the group of an item's phrasings (schema.dataset, where the split reads it too)


def variant_of(item: dict) -> tuple[str, str] | None:
    """("question", "2") or ("rendering", "table") from an item's provenance; None for an untagged item."""
    kind, _, which = str((item.get("provenance") or {}).get("variant") or "").partition(":")
    return (kind, which) if kind and which else None


def _slice_of(item: dict) -> str:
    unit = (item.get("provenance") or {}).get("unit")
    return unit.rsplit(":", 1)[0] if isinstance(unit, str) and ":" in unit else ""


def variant_counts(items: Iterable[dict]) -> dict:
    """How many phrasings each question has and how many renderings each slice has:
    {items, questions (groups), phrasing_items, phrasings {k: questions with k phrasings}, renderings {name: n},
    groups {group: phrasings}, slices {slice id ("" for items from no slice): {questions, phrasing_items,
    renderings {name: n}}. A question without a group is its own group of one."""
    groups: Counter[str] = Counter()
    renderings: Counter[str] = Counter()
    slices: dict[str, dict] = {}
    total = 0
    for item in items:
        total += 1
        variant = variant_of(item)
        entry = slices.setdefault(_slice_of(item), {"questions": 0, "phrasing_items": 0, "renderings": Counter()})
        if variant and variant[0] == RENDERING_VARIANT:
            renderings[variant[1]] += 1
            entry["renderings"][variant[1]] += 1
            continue
        if variant and variant[0] == "tool_call":  # a conversation that calls a function: no phrasings of its own
            continue
        group = group_of(item)
        if not groups[group]:
            entry["questions"] += 1
        groups[group] += 1
        entry["phrasing_items"] += 1
    histogram = Counter(groups.values())
    ordered = sorted(renderings, key=lambda name: (RENDERING_NAMES.index(name) if name in RENDERING_NAMES else len(RENDERING_NAMES), name))
    return {
        "items": total,
        "questions": len(groups),
        "phrasing_items": sum(groups.values()),
        "phrasings": {k: histogram[k] for k in sorted(histogram)},
        "renderings": {name: renderings[name] for name in ordered},
        "groups": dict(groups),
        "slices": {slice_id: {**entry, "renderings": dict(entry["renderings"])} for slice_id, entry in slices.items()},
    }


def compact_counts(counts: dict) -> dict:
    """The part of `variant_counts` a run's summary keeps (no per-group or per-slice maps); JSON keys are
    strings, so the histogram's are too."""
    return {"items": counts["items"], "questions": counts["questions"], "phrasing_items": counts["phrasing_items"],
            "phrasings": {str(k): v for k, v in counts["phrasings"].items()}, "renderings": dict(counts["renderings"])}


def variant_summary(counts: dict, lang: str | None = None) -> str:
    """"312 items: 104 questions × 3 phrasings, 52 renderings (prose 26, table 26)", in `lang`; takes
    `variant_counts` or `compact_counts`."""
    histogram = {int(k): v for k, v in counts["phrasings"].items()}
    questions = counts["questions"]
    if len(histogram) <= 1:
        each = next(iter(histogram), 1)
        part = t("variants.questions_even", lang, questions=questions, phrasings=each)
    else:
        part = t("variants.questions_mixed", lang, questions=questions, low=min(histogram), high=max(histogram),
                 mean=f"{counts['phrasing_items'] / max(questions, 1):.1f}")
    renderings = counts["renderings"]
    if renderings:
        parts = t("variants.separator", lang).join(f"{rendering_label(name, lang) if name in RENDERING_NAMES else name} {count}"
                          for name, count in renderings.items())
        rendered = t("variants.renderings", lang, count=sum(renderings.values()), parts=parts)
    else:
        rendered = t("variants.no_renderings", lang)
    return t("variants.summary", lang, items=counts["items"], questions=part, renderings=rendered)
