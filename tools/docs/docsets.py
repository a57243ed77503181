"""A whole doc set (or one of its files) read and sliced: the join of reading and slicing."""

from __future__ import annotations

from pathlib import Path

from schema.document import DocumentFile, DocumentSlice
from tools.docs.reading import DocumentReadError, describe_file, load_document_text, scan_docset
from tools.docs.slicing import DEFAULT_MAX_TOKENS, slice_by_kind


def slice_docset(folder: Path, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[list[DocumentSlice], list[DocumentFile]]:
    """Slices of every usable file in the docset, and all its files (with the reason for each one that failed)."""
    folder = Path(folder)
    slices: list[DocumentSlice] = []
    files: list[DocumentFile] = []
    for document in scan_docset(folder):
        if document.error is None and document.kind is not None:
            try:
                text = load_document_text(folder, document)
            except DocumentReadError as exc:
                document = document.model_copy(update={"error": str(exc)})
            else:
                slices.extend(slice_by_kind(text, document.kind, document.path, max_tokens))
        files.append(document)
    return slices, files


def slice_document(path: Path, root: Path, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[DocumentSlice]:
    """Read one file of a docset folder `root` and slice it; raises DocumentReadError when it cannot be read."""
    root, path = Path(root), Path(path)
    if not path.is_absolute() and (root / path).exists():
        path = root / path  # a path relative to the docset folder, as in DocumentFile.path
    document = describe_file(path, root)
    if document.error is not None or document.kind is None:
        raise DocumentReadError(f"{document.path}: {document.error}")
    text = load_document_text(root, document)
    return slice_by_kind(text, document.kind, document.path, max_tokens)
