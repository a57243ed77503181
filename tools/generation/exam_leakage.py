"""The leakage check of an exam version against a training dataset: which questions repeat a dataset item's
question (exactly, or nearly by tools.quality.duplicates' rules), recorded with the version; with `drop`, the
next version without them. Exam creation is tools.generation.exams.
"""

from __future__ import annotations

from dataclasses import dataclass

from schema.dataset import first_exchange, normalize_question
from schema.exam import Exam, Leakage, Question
from tools.core.errors import UserError
from tools.core.workdir import validate_name
from tools.evaluation.coverage import question_coverage
from tools.llm.runner import now_iso
from tools.quality.duplicates import BANDS, NEAR_THRESHOLD, NUMBER, ROWS, SHINGLE, first_question, minhash_signatures
from tools.quality.text import char_shingles, jaccard, normalize_for_shingles
from tools.workspace import Workspace


def leaked_questions(questions: list[Question], items: list[dict], threshold: float | None = None) -> dict[str, Leakage]:
    """question id -> Leakage for the exam questions that repeat a dataset item's question, exactly (the same
    `normalize_question` key) or nearly, by the rules of tools.quality.duplicates: MinHash over character
    3-grams with LSH banding for candidates, each verified by Jaccard >= threshold with the same numbers.
    Only exam x dataset pairs are looked at (the dataset's own duplicates are the quality check's business),
    so the cost is one signature per item: 50,000 items take seconds, not the minute a full duplicate scan takes."""
    import numpy as np

    threshold = NEAR_THRESHOLD if threshold is None else threshold
    flags: dict[str, Leakage] = {}
    if not questions or not items:
        return flags
    texts = [first_question(item)[1] for item in items]
    exact = {}
    for item, text in zip(items, texts):
        exact.setdefault(normalize_question(text), item["id"])
    for question in questions:
        found = exact.get(normalize_question(question.question))
        if found is not None and normalize_question(question.question):
            flags[question.id] = Leakage(flagged=True, similarity=1.0, item_id=found)
    rest = [q for q in questions if q.id not in flags]
    if not rest:
        return flags
    exam_norm = [normalize_for_shingles(q.question) for q in rest]
    item_norm = [normalize_for_shingles(text) for text in texts]

    def band_keys(signatures: np.ndarray) -> np.ndarray:
        wide = signatures.astype(np.uint64)
        keys = np.zeros((signatures.shape[0], BANDS), dtype=np.uint64)
        for band in range(BANDS):
            for row in range(band * ROWS, (band + 1) * ROWS):
                keys[:, band] = keys[:, band] * np.uint64(0x100000001B3) + wide[:, row]
        return keys

    exam_signatures, item_signatures = minhash_signatures(exam_norm), minhash_signatures(item_norm)
    exam_keys, item_keys = band_keys(exam_signatures), band_keys(item_signatures)
    # Candidate pairs: an item and an exam question that agree on all rows of a band (searchsorted per band).
    pair_codes = []
    for band in range(BANDS):
        order = np.argsort(exam_keys[:, band], kind="stable")
        ordered = exam_keys[order, band]
        left = np.searchsorted(ordered, item_keys[:, band], "left")
        right = np.searchsorted(ordered, item_keys[:, band], "right")
        counts = right - left
        hit = np.flatnonzero(counts)
        if not len(hit):
            continue
        repeats = counts[hit]
        offsets = np.arange(int(repeats.sum())) - np.repeat(np.cumsum(repeats) - repeats, repeats)
        exam_index = order[np.repeat(left[hit], repeats) + offsets]
        pair_codes.append(exam_index.astype(np.int64) * len(items) + np.repeat(hit, repeats))
    if not pair_codes:
        return flags
    codes = np.unique(np.concatenate(pair_codes))
    exam_of, item_of = codes // len(items), codes % len(items)
    # The signatures' agreement estimates the Jaccard similarity (standard error about 0.06 with 64 hashes):
    # only pairs within 0.2 of the threshold are verified exactly, in Python.
    estimate = np.concatenate([(exam_signatures[exam_of[i:i + 65536]] == item_signatures[item_of[i:i + 65536]]).mean(axis=1)
                               for i in range(0, len(codes), 65536)])
    keep = estimate >= threshold - 0.2
    exam_shingles = [char_shingles(text, SHINGLE) for text in exam_norm]
    exam_numbers = [NUMBER.findall(q.question) for q in rest]
    item_numbers: dict[int, list[str]] = {}
    item_shingles: dict[int, set[str]] = {}
    best: dict[int, tuple[float, int]] = {}
    for exam_index, item_index in zip(exam_of[keep].tolist(), item_of[keep].tolist()):
        # Numbers are facts: "error TW-1202" and "error TW-1203" are two questions however alike (and the
        # comparison is cheap, so it goes first).
        numbers = item_numbers.get(item_index)
        if numbers is None:
            numbers = item_numbers[item_index] = NUMBER.findall(texts[item_index])
        if numbers != exam_numbers[exam_index]:
            continue
        shingles = item_shingles.get(item_index)
        if shingles is None:
            shingles = item_shingles[item_index] = char_shingles(item_norm[item_index], SHINGLE)
        similarity = jaccard(exam_shingles[exam_index], shingles)
        if similarity >= threshold and similarity > best.get(exam_index, (-1.0, 0))[0]:
            best[exam_index] = (similarity, item_index)
    for exam_index, (similarity, item_index) in best.items():
        flags[rest[exam_index].id] = Leakage(flagged=True, similarity=round(min(1.0, similarity), 3), item_id=items[item_index]["id"])
    return flags


def exam_leaks(questions: list[Question], items: list[dict], threshold: float | None = None) -> dict[str, Leakage]:
    """question id -> Leakage for the questions a training item gives away: a near-duplicate question
    (leaked_questions), or the same question words with the answer (a cloze asked with another lead-in,
    tools.evaluation.coverage)."""
    flags = {qid: leak.model_copy(update={"match": "question"}) for qid, leak in leaked_questions(questions, items, threshold).items()}
    for qid, coverage in question_coverage([q for q in questions if q.id not in flags], items).items():
        if coverage.coverage == "verbatim":
            flags[qid] = Leakage(flagged=True, similarity=coverage.similarity, item_id=coverage.item_id, match="cloze")
    return flags


@dataclass
class LeakageResult:
    exam: str
    version: int  # the version checked
    dataset: str
    checked: int
    flagged: list[dict]  # {"id", "question", "similarity", "item_id", "item_question"}
    new_version: int | None = None  # with drop: the version written without the flagged questions


def check_exam_leakage(workspace: Workspace, name: str, dataset: str, version: int | None = None, drop: bool = False,
                       threshold: float | None = None) -> LeakageResult:
    """Flag the exam's questions that are near-duplicates of `dataset`'s questions and record the check with the
    version; with `drop`, freeze a new version without them (the checked one stays as it was)."""
    store, datasets = workspace.exams, workspace.datasets
    dataset = validate_name(dataset, "dataset name")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 < float(threshold) <= 1.0):
        raise UserError("error.examgen_threshold", value=threshold)
    if not datasets.exists(dataset):
        raise UserError("error.not_found", what="dataset", name=dataset)
    exam = store.load(name, version, with_leakage=False)
    items = list(datasets.load(dataset).items.values())
    flags = exam_leaks(exam.questions, items, threshold)
    by_id = {item["id"]: item for item in items}
    flagged = []
    for question in exam.questions:
        leak = flags.get(question.id)
        if leak is None:
            continue
        leak.dataset = dataset
        other = by_id.get(leak.item_id or "")
        flagged.append({"id": question.id, "question": question.question, "similarity": leak.similarity,
                        "item_id": leak.item_id, "item_question": first_exchange(other["messages"])[0] if other else ""})
    check = {"dataset": dataset, "threshold": threshold, "checked_at": now_iso(), "questions": len(exam.questions),
             "flags": {qid: leak.model_dump() for qid, leak in flags.items()}}
    result = LeakageResult(exam=exam.name, version=exam.version, dataset=dataset, checked=len(exam.questions), flagged=flagged)
    with store.lock(exam.name).acquire():
        store.save_leakage(exam.name, exam.version, check)
        if drop and flags:
            kept = [q for q in exam.questions if q.id not in flags]
            if not kept:
                raise UserError("error.examgen_all_leaked", name=exam.name, dataset=dataset)
            generator = {**exam.generator, "derived_from": exam.version, "dropped": sorted(flags),
                         "dropped_for": dataset}
            derived = store.save_new_version(Exam(name=exam.name, docset=exam.docset, lang=exam.lang,
                                                  generator=generator, questions=kept))
            store.save_leakage(exam.name, derived.version, {**check, "flags": {}, "derived_from": exam.version})
            result.new_version = derived.version
    return result
