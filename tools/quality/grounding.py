"""Grounding: how much of an answer is supported by the slice it was generated from.

The measure is the share of the answer's distinct content units that occur in its source slice.
Content units (tools.quality.text.content_units) are lower-cased Latin words without stopwords and
one-letter words (numbers kept: "300 seconds" must come from the docs; a word's plural or singular in
the slice counts as support), and CJK character bigrams, since Chinese has no spaces and single characters are too common to count.
Distinct units, so repeating a supported word does not raise the score. Code is compared like prose:
identifiers copied from the slice are support, invented ones are not.

Why this and not more: it is cheap (a set intersection per answer against a set built once per
slice), it does not depend on a tokenizer or model, and it answers the question that matters here,
"did these facts come from the slice?". It cannot see a wrong combination of supported words ("the
default is 4" when the slice says 4 is the maximum): that is the LLM judge's job. A score under
LOW_GROUNDING (0.5: half of what the answer says is nowhere in its slice) is flagged. Answers with
fewer than MIN_UNITS units are too short to measure and are not scored. An item with no source
(imported) is reported as "no_source" (info), never as failed; one whose slice is gone from the
changed doc set as "source_gone". An assistant turn that calls tools is measured on its content and its
calls (`Tide.run({"max_workers": 8})`: the name and the values must come from the slice too).
"""

from __future__ import annotations

from schema.tool_calls import answer_text
from tools.quality.sources import DocContext
from tools.quality.text import cjk_unit_codes, cjk_unit_counts, content_units, latin_units

LOW_GROUNDING = 0.5
MIN_UNITS = 3


def grounding_score(answer: str, source_units: set[bytes]) -> float | None:
    """Share of the answer's content units found in the source units; None when too short to measure."""
    units = content_units(answer)
    if len(units) < MIN_UNITS:
        return None
    return len(units & source_units) / len(units)


def grounding_findings(item: dict, context: DocContext | None, scores: dict[str, float]) -> list[dict]:
    """Findings for one item; its score (the lowest of its answers) goes into `scores`."""
    if context is None:
        return []
    source = context.source_of(item)
    if source.match == "none":
        return [{"item_id": item["id"], "kind": "no_source", "where": {"field": "provenance"}, "detail": {}}]
    if source.match == "gone":
        provenance = item.get("provenance") or {}
        return [{"item_id": item["id"], "kind": "source_gone", "where": {"field": "provenance"},
                 "detail": {"source_doc": provenance.get("source_doc"), "heading": " -> ".join(provenance.get("heading_path") or [])}}]
    source_units = context.units(source)
    findings = []
    lowest = None
    for index, message in enumerate(item.get("messages") or []):
        if message.get("role") != "assistant":
            continue
        score = grounding_score(answer_text(message), source_units)  # its calls count: names and values from the docs
        if score is None:
            continue
        lowest = score if lowest is None else min(lowest, score)
        if score < LOW_GROUNDING:
            findings.append({"item_id": item["id"], "kind": "low_grounding", "where": {"message": index, "field": "content"},
                             "detail": {"score": round(score, 3), "match": source.match}})
    if lowest is not None:
        scores[item["id"]] = round(lowest, 3)
    return findings


def grounding_findings_all(items: list[dict], context: DocContext | None, scores: dict[str, float],
                           sources: list | None = None) -> list[dict]:
    """grounding_findings of every item, in item order, the same findings and scores; `sources` is
    context.source_of of each item when the caller has it. The CJK units of all answers are counted at
    once (tools.quality.text.cjk_unit_counts); the Latin words per answer."""
    if context is None:
        return []
    if sources is None:
        sources = [context.source_of(item) for item in items]
    # Per item: a finding of its own (no source / gone), or the answers to score.
    answers: list[str] = []
    answer_source: list[int] = []
    latin_total: list[int] = []
    latin_found: list[int] = []
    measured: list[tuple[dict, str, list[int]] | dict] = []
    source_numbers: dict[tuple[str, ...], int] = {}
    source_codes: list = []
    for item, source in zip(items, sources):
        if source.match == "none":
            measured.append({"item_id": item["id"], "kind": "no_source", "where": {"field": "provenance"}, "detail": {}})
            continue
        if source.match == "gone":
            provenance = item.get("provenance") or {}
            measured.append({"item_id": item["id"], "kind": "source_gone", "where": {"field": "provenance"},
                             "detail": {"source_doc": provenance.get("source_doc"),
                                        "heading": " -> ".join(provenance.get("heading_path") or [])}})
            continue
        source_units = context.units(source)
        number = source_numbers.get(source.slice_ids)
        if number is None:
            number = source_numbers[source.slice_ids] = len(source_codes)
            source_codes.append(cjk_unit_codes(source_units))
        positions = []
        for index, message in enumerate(item.get("messages") or []):
            if message.get("role") != "assistant":
                continue
            text = answer_text(message) if message.get("tool_calls") else message.get("content") or ""
            words = latin_units(text)
            positions.append(index)
            answers.append(text)
            answer_source.append(number)
            latin_total.append(len(words))
            latin_found.append(len(words & source_units))
        measured.append((item, source.match, positions))
    cjk_total, cjk_found = cjk_unit_counts(answers, answer_source, source_codes)
    totals = list(map(int.__add__, latin_total, cjk_total))
    supported = list(map(int.__add__, latin_found, cjk_found))
    findings: list[dict] = []
    answer = 0
    for entry in measured:
        if isinstance(entry, dict):
            findings.append(entry)
            continue
        item, match, positions = entry
        lowest = None
        for index in positions:
            total = totals[answer]
            score = supported[answer] / total if total >= MIN_UNITS else None
            answer += 1
            if score is None:
                continue
            lowest = score if lowest is None else min(lowest, score)
            if score < LOW_GROUNDING:
                findings.append({"item_id": item["id"], "kind": "low_grounding", "where": {"message": index, "field": "content"},
                                 "detail": {"score": round(score, 3), "match": match}})
        if lowest is not None:
            scores[item["id"]] = round(lowest, 3)
    return findings
