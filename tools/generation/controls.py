"""Control sections: the parts of a doc set an exam holds out of training, so that the exam can show what
tuning did not teach. Generation and continued pre-training leave their slices out; this module is apart from
the generation engine so that the training worker takes it without the engine's imports (SQLModel, asyncio)."""

from __future__ import annotations

from db.exam_store import ExamStore
from schema.document import DocumentSlice
from schema.exam import in_sections, section_label
from tools.core.errors import UserError


def without_control_sections(slices: list[DocumentSlice], docs: str, notes: list[tuple[str, dict]],
                             exams: ExamStore) -> list[DocumentSlice]:
    """The slices outside every control section an exam on `docs` holds out (noted when any is skipped)."""
    controls = exams.control_sections(docs)
    if not controls:
        return slices
    sections = sorted(controls)
    kept = [s for s in slices if not in_sections(section_label(s.source, s.heading_path), sections)]
    if len(kept) < len(slices):
        exams = sorted({name for names in controls.values() for name in names})
        notes.append(("generate.control_skipped", {"slices": len(slices) - len(kept), "sections": "; ".join(sections),
                                                   "exams": ", ".join(exams)}))
    if not kept:
        raise UserError("error.generate_only_control", docs=docs, exams=", ".join(sorted({n for v in controls.values() for n in v})))
    return kept
