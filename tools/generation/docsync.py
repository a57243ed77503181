"""Keeping a generated dataset in step with a doc set that changed since its last run (issue 14).

A slice's id is a hash of its file, heading path and text (schema.document.DocumentSlice.make_id), and
each generated item names the unit it came from ("<slice id>:<round>"). Slicing the doc set again with
the dataset's budget therefore tells, for each slice:

  unchanged  its id is still there: its items stand;
  changed    its id is gone, but its file still has a slice under the same heading path: the text
             under that heading changed, so its items may state what is no longer true;
  new        a slice of the doc set that no run into the dataset has planned yet;
  pending    a slice a run planned (the engine keeps their ids in the dataset's meta) that has no item:
             the run was cancelled, killed or failed before it; not a change of the docs, and
             starting the run again generates it;
  gone       its id is gone and so is every slice of its file under its heading path;
  control    a slice without items in a section an exam on the doc set holds out as a control
             (`exam create --control-section`): generation skips it on purpose, so it is not new.

A slice whose unit finished without a new item (every pair a duplicate) stands as unchanged: a resume
skips it too.

Updating the dataset retires the items of changed and gone slices as one version ("docs_sync"), then
a generation run over the doc set makes items for the slices that have none: the changed ones under
their new ids, the new and the pending ones (done units of unchanged slices are skipped, as on any
resume). An item a person edited (provenance.edited_at) is kept when its slice changed, and listed for
a decision; it is retired only when its source is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from db.exam_store import ExamStore

from schema.dataset import first_exchange
from schema.exam import in_sections, section_label
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.core.workdir import validate_name
from tools.docs.docsets import slice_docset
from tools.generation.engine import PLANNED_SLICES, UNIT_DONE, UNIT_FAILED
from tools.workspace import Workspace

STATUSES = ("unchanged", "changed", "new", "pending", "gone", "control")
SYNC_VERSION_KIND = "docs_sync"


@dataclass
class SliceStatus:
    status: str  # one of STATUSES
    source: str
    heading_path: tuple[str, ...]
    slice_id: str  # the current id; for a gone slice the old one
    items: int  # the dataset's items from it (for a changed slice: from its old text)


@dataclass
class DocChanges:
    dataset: str
    docs: str
    slices: list[SliceStatus] = field(default_factory=list)
    retire: list[str] = field(default_factory=list)  # ids of the items an update removes
    kept_edited: list[dict] = field(default_factory=list)  # {id, question, source, heading}: edited, slice changed

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for entry in self.slices:
            counts[entry.status] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        counts = self.counts()
        return bool(counts["changed"] or counts["new"] or counts["gone"])

    def listed(self, *statuses: str) -> list[SliceStatus]:
        return [entry for entry in self.slices if entry.status in statuses]


def _unit_slice(unit) -> str | None:
    """The slice id of a unit key ("<slice id>:<round>")."""
    return unit.rsplit(":", 1)[0] if isinstance(unit, str) and ":" in unit else None


def _slice_of(item: dict) -> str | None:
    return _unit_slice((item.get("provenance") or {}).get("unit"))


def compare_slices(items: list[dict], slices: list, planned=(), done=(), held_out=()) -> tuple[list[SliceStatus], dict[str, str]]:
    """Each slice's status (see the module's docstring) and, per old slice id that changed or is gone,
    that status. `items`: the dataset's items; `slices`: the doc set's DocumentSlices now; `planned`: ids
    of the slices runs planned or tried; `done`: ids of the slices with a finished unit; `held_out`: ids of
    the slices in exams' control sections."""
    old: dict[str, dict] = {}  # old slice id -> {source, heading_path, items}
    for item in items:
        slice_id = _slice_of(item)
        if slice_id is None:
            continue  # imported or added by hand: from no slice
        provenance = item.get("provenance") or {}
        entry = old.setdefault(slice_id, {"source": provenance.get("source_doc") or "",
                                          "heading_path": tuple(provenance.get("heading_path") or ()), "items": 0})
        entry["items"] += 1
    current_ids = {s.slice_id for s in slices}
    by_place: dict[tuple[str, tuple[str, ...]], list] = {}
    for s in slices:
        by_place.setdefault((s.source, tuple(s.heading_path)), []).append(s)

    statuses: list[SliceStatus] = []
    old_status: dict[str, str] = {}
    changed_places: dict[tuple[str, tuple[str, ...]], int] = {}  # place -> items of its old slices
    changed_seen: set[tuple[str, tuple[str, ...]]] = set()
    for slice_id, entry in old.items():
        if slice_id in current_ids:
            continue
        place = (entry["source"], entry["heading_path"])
        if place in by_place:
            old_status[slice_id] = "changed"
            changed_places[place] = changed_places.get(place, 0) + entry["items"]
        else:
            old_status[slice_id] = "gone"
            statuses.append(SliceStatus("gone", entry["source"], entry["heading_path"], slice_id, entry["items"]))
    for s in slices:
        place = (s.source, tuple(s.heading_path))
        if s.slice_id in old:
            statuses.append(SliceStatus("unchanged", s.source, place[1], s.slice_id, old[s.slice_id]["items"]))
        elif s.slice_id in done:
            statuses.append(SliceStatus("unchanged", s.source, place[1], s.slice_id, 0))
        elif place in changed_places:
            # The new text under a heading whose old text had items; a heading cut into several
            # slices counts its old items once, on its first slice.
            statuses.append(SliceStatus("changed", s.source, place[1], s.slice_id, changed_places.pop(place)))
            changed_seen.add(place)
        elif place in changed_seen:
            statuses.append(SliceStatus("changed", s.source, place[1], s.slice_id, 0))
        elif s.slice_id in held_out and s.slice_id not in planned:
            statuses.append(SliceStatus("control", s.source, place[1], s.slice_id, 0))
        else:
            statuses.append(SliceStatus("pending" if s.slice_id in planned else "new", s.source, place[1], s.slice_id, 0))
    order = {status: index for index, status in enumerate(STATUSES)}
    statuses.sort(key=lambda e: (order[e.status], e.source, e.heading_path))
    return statuses, old_status


def held_out_slices(exams: ExamStore, docs: str, slices: list) -> set[str]:
    """Ids of the slices of `docs` inside a section some exam on it holds out as a control."""
    sections = list(exams.control_sections(docs))
    if not sections:
        return set()
    return {s.slice_id for s in slices if in_sections(section_label(s.source, s.heading_path), sections)}


def doc_changes(workspace: Workspace, dataset: str) -> DocChanges:
    """What changed in the doc set since dataset `dataset` was generated from it, and what an update
    would retire. Refused for a dataset that was not generated from a doc set, or whose doc set is gone."""
    store = workspace.datasets
    name = validate_name(dataset, "dataset name")
    if not store.exists(name):
        raise UserError("error.not_found", what="dataset", name=name)
    view = store.load(name)
    source = view.meta.get("generated_from") or {}
    docs, budget = source.get("docs"), source.get("max_slice_tokens")
    if not docs or not budget:
        raise UserError("error.generate_not_generated", name=name)
    slices, _files = slice_docset(workspace.docs_folder(docs), budget)
    items = list(view.items.values())
    # Tried slices count as planned too: a dataset from before the engine kept its plan knows only those.
    done = {_unit_slice(e.get("unit")) for e in view.events if e.get("type") == UNIT_DONE}
    tried = done | {_unit_slice(e.get("unit")) for e in view.events if e.get("type") == UNIT_FAILED}
    planned = set(view.meta.get(PLANNED_SLICES) or ()) | tried
    statuses, old_status = compare_slices(items, slices, planned, done, held_out_slices(workspace.exams, docs, slices))
    changes = DocChanges(dataset=name, docs=docs, slices=statuses)
    for item in items:
        status = old_status.get(_slice_of(item) or "")
        if status is None:
            continue
        provenance = item.get("provenance") or {}
        if status == "changed" and provenance.get("edited_at"):
            question = first_exchange(item["messages"])[0]
            changes.kept_edited.append({"id": item["id"], "question": question, "source": provenance.get("source_doc") or "",
                                        "heading": " > ".join(provenance.get("heading_path") or ())})
        else:
            changes.retire.append(item["id"])
    return changes


def retire_outdated(workspace: Workspace, dataset: str) -> tuple[DocChanges, dict | None]:
    """Remove the items of changed and gone slices (edited items of changed slices kept) as one version,
    holding the dataset's writer lock (refused while a generation run or an import writes to it).
    Returns (the changes as found under the lock, the version record or None when nothing was retired)."""
    store = workspace.datasets
    lock = store.writer_lock(dataset).acquire()
    try:
        changes = doc_changes(workspace, dataset)
        if not changes.retire:
            return changes, None
        counts = changes.counts()
        version = store.delete_items(changes.dataset, changes.retire, kind=SYNC_VERSION_KIND, docs=changes.docs,
                                     changed=counts["changed"], gone=counts["gone"], kept_edited=len(changes.kept_edited))
        return changes, version
    finally:
        lock.release()


def changes_summary(changes: DocChanges, lang: str | None = None) -> str:
    """One line: how many slices are unchanged, changed, new and gone, which ones an earlier run left
    without items, and what an update does."""
    counts = changes.counts()
    line = t("docsync.summary", lang, docs=changes.docs, name=changes.dataset, **counts)
    pending = " " + t("docsync.pending", lang, count=counts["pending"]) if counts["pending"] else ""
    held_out = " " + t("docsync.control", lang, count=counts["control"]) if counts["control"] else ""
    if not changes.has_changes:
        return line + (pending or " " + t("docsync.up_to_date", lang)) + held_out
    line += held_out
    line += pending
    if counts["pending"]:
        line += " " + t("docsync.update_does_pending", lang, retire=len(changes.retire), generate=counts["changed"] + counts["new"],
                        pending=counts["pending"])
    else:
        line += " " + t("docsync.update_does", lang, retire=len(changes.retire), generate=counts["changed"] + counts["new"])
    if changes.kept_edited:
        line += " " + t("docsync.kept_edited", lang, count=len(changes.kept_edited))
    return line


def changes_rows(changes: DocChanges, lang: str | None = None, include_unchanged: bool = False) -> list[list]:
    """Table rows (status, file, heading path, items) of the slices that are not unchanged (or all)."""
    return [[t(f"docsync.status.{entry.status}", lang), entry.source, " > ".join(entry.heading_path) or "-", entry.items]
            for entry in changes.slices if include_unchanged or entry.status != "unchanged"]
