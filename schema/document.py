"""Models describing documentation files, their heading trees and the slices sent to the LLM."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, Field

DocumentKind = Literal["markdown", "text", "html", "pdf", "docx"]


class HeadingNode(BaseModel):
    """One heading and the lines it governs; the tree root has level 0 and an empty title."""

    level: int = Field(ge=0, le=6)
    title: str
    start_line: int = Field(ge=0, description="0-based line of the heading (first paragraph line for setext)")
    end_line: int = Field(ge=0, description="exclusive: where the next heading of the same or a higher rank starts")
    children: list[HeadingNode] = Field(default_factory=list)

    def walk(self) -> list[HeadingNode]:
        """This node and all its descendants in document order."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


class DocumentFile(BaseModel):
    """A file found in a docset folder; `error` says why it cannot be used, if it cannot."""

    path: str = Field(description="POSIX path relative to the docset folder")
    kind: DocumentKind | None = Field(default=None, description="None when the file type is unsupported")
    size: int = Field(ge=0)
    error: str | None = None

    @property
    def is_usable(self) -> bool:
        return self.kind is not None and self.error is None


class DocumentSlice(BaseModel):
    """A piece of one document small enough for a single generation prompt."""

    slice_id: str
    source: str = Field(description="POSIX path of the document relative to its docset folder")
    heading_path: list[str] = Field(default_factory=list, description="heading titles from the top down")
    text: str
    start_line: int = Field(ge=0)
    end_line: int = Field(ge=0, description="exclusive")
    tokens: int = Field(ge=0)

    @property
    def heading_label(self) -> str:
        return " -> ".join(self.heading_path)

    @staticmethod
    def make_id(source: str, heading_path: list[str], text: str) -> str:
        """Stable id: the same text under the same headings of the same file keeps its id across runs."""
        digest = hashlib.sha1()
        # NUL separators so that ("ab", ["c"]) and ("a", ["bc"]) cannot collide.
        for part in (source, "\x00".join(heading_path), text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00\x01")
        return digest.hexdigest()[:16]
