"""Continued pre-training (stage cpt) and doc_mix: a doc set's slices as running-text items.

Each slice of the doc set (tools.docs.docsets: heading-aware, within one file) becomes one text item
{"id", "text", "context", "source", "kind": "doc", "provenance"}. `context` is where the slice sits
("guide/install.md > Install > GPU"); tokenization (train.data.text_rows) writes it and a blank line before the
text, adds the tokenizer's BOS/EOS, trains on every token and splits a text longer than max_length into windows
that each open with the context again. cpt trains on these items (an eval_ratio share of the slices held out,
seeded) with `general_mix` of general running text (train.forgetting.general_texts) against forgetting; sft mixes
`doc_mix` of them into its question/answer items. The launcher writes the mixed items into the run folder
(data/train.jsonl), so a resumed run trains on the same ones.
"""

from __future__ import annotations

import random
from pathlib import Path

import global_var
from db.exam_store import ExamStore
from schema.document import DocumentSlice
from tools.core.errors import UserError
from tools.core.workdir import WorkDir
from tools.docs.docsets import slice_docset_cached
from tools.generation.controls import without_control_sections
from train.config import STAGES, TrainConfig
from train.forgetting import general_mix_count, general_texts, mix_pool_items

DOC_KIND = "doc"  # a slice of the run's doc set
GENERAL_KIND = "general"  # general running text (cpt's general_mix)
GENERAL_ID_PREFIX = "general-"  # ids of every general item: text (cpt) and chat (sft, mixed in by the worker)


def doc_set_names(workdir: WorkDir) -> list[str]:
    """The doc sets of a work directory: the folders under workdir/docs."""
    root = workdir.docs
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def docs_folder(workdir: WorkDir, docs: str) -> Path:
    """workdir/docs/<docs>; a UserError naming it (and the doc sets there are) when there is no such folder."""
    folder = workdir.child("docs", docs, what="docs")
    if not folder.is_dir():
        raise UserError("error.cpt_docs_missing", docs=docs, known=", ".join(doc_set_names(workdir)) or "-")
    return folder


def slice_item(piece: DocumentSlice) -> dict:
    """One slice as a text item; its provenance lets an exam tell the slices a run trained on."""
    return {
        "id": f"doc-{piece.slice_id}",
        "text": piece.text,
        "context": " > ".join([piece.source, *piece.heading_path]),
        "source": piece.source,
        "kind": DOC_KIND,
        "provenance": {"source_doc": piece.source, "heading_path": list(piece.heading_path), "unit": f"{piece.slice_id}:text",
                       "origin": "docs"},
    }


def _exams() -> ExamStore | None:
    """The app's exam store; None where no work directory is open (a script slicing a folder)."""
    try:
        return global_var.workspace().exams
    except RuntimeError:
        return None


def doc_items(folder: Path, docs: str, exams: ExamStore | None = None) -> list[dict]:
    """The text items of doc set `docs` (in `folder`), in slicing order, without the sections an exam on it holds
    out as its control (as generation leaves them out: a control section trained as text would no longer be
    untrained; `exams`: the exam store that knows them); a UserError naming it when it has none."""
    slices, _ = slice_docset_cached(Path(folder))
    if exams is not None:
        slices = without_control_sections(slices, docs, [], exams)
    items = [slice_item(piece) for piece in slices if piece.text.strip()]
    if not items:
        raise UserError("error.cpt_docs_empty", docs=docs)
    return items


def split_slices(items: list[dict], config: TrainConfig) -> tuple[list[dict], list[dict]]:
    """(train, eval): a seeded eval_ratio share of the slices held out (at least one), none at eval_ratio 0."""
    if config.eval_ratio <= 0:
        return list(items), []
    shuffled = list(items)
    random.Random(config.seed).shuffle(shuffled)
    eval_count = max(1, round(len(items) * config.eval_ratio))
    if eval_count >= len(items):
        raise UserError("error.cpt_split_too_small", docs=config.docs, count=len(items), ratio=config.eval_ratio)
    return shuffled[eval_count:], shuffled[:eval_count]


def cpt_items(folder: Path, config: TrainConfig) -> tuple[list[dict], list[dict]]:
    """(train, eval) of a cpt run: the doc set's slices split by eval_ratio, general text mixed into the train
    side at general_mix; seeded, so the same config gives the same items."""
    train, held_out = split_slices(doc_items(folder, config.docs, _exams()), config)
    return mix_pool_items(train, list(general_texts()), config.general_mix, config.seed), held_out


def mix_doc_items(items: list[dict], folder: Path, config: TrainConfig) -> list[dict]:
    """sft with doc_mix: the question/answer `items` plus doc text items making up doc_mix of the result (seeded)."""
    return mix_pool_items(items, doc_items(folder, config.docs, _exams()), config.doc_mix, config.seed)


def is_text_item(item: dict) -> bool:
    return "text" in item


def mix_counts(items: list[dict]) -> dict[str, int]:
    """How many question/answer, doc-text and general items `items` holds."""
    docs = sum(1 for item in items if item.get("kind") == DOC_KIND)
    general = sum(1 for item in items if item.get("kind") == GENERAL_KIND
                  or (not is_text_item(item) and str(item.get("id") or "").startswith(GENERAL_ID_PREFIX)))
    return {"qa_items": len(items) - docs - general, "doc_items": docs, "general_items": general}


def planned_counts(items: list[dict], config: TrainConfig) -> dict[str, int]:
    """mix_counts of the items a run is started with, plus the general chat items its worker mixes into a
    question/answer run (general_mix outside cpt, train.trainer.run_job): what it will train on."""
    counts = mix_counts(items)
    if STAGES[config.stage].data != "docs":
        counts["general_items"] += general_mix_count(len(items), config.general_mix)
    return counts
