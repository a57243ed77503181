"""The automatic checks after a generation run, in a process of their own once the run's summary is out.

The command line's `generate` ends when its summary is printed; the checks without an LLM (tools.quality.checks)
then run in a detached copy of the process (a double fork: it outlives the command and is nobody's zombie) and
save their result beside the journal, as they do after a run in the page. The copy inherits what the run already
read (the dataset as the store last loaded it, the doc set's slices: tools.docs.docsets.slice_docset_cached), and
imports nothing the command has imported. Its result is the one `check_after_change` gives, written whole (tools.core.workdir.atomic_write_text): a
copy that is killed leaves no result, never half of one, and the page or `datasets check` then checks again.
The caller forks once the run's own thread has ended (a fork copies only the calling thread; CPython re-creates
the logging and import locks in the copy). Where a process cannot be forked the checks run here before the
command ends, as they did before.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tools.quality.checks import check_after_change


def start_background_checks(dataset: str, store, docs_root: Path | None) -> int | None:
    """Run the checks of `dataset` in a detached process; returns its pid, or None when no process could be
    started (then nothing ran: the caller checks in this process)."""
    if not hasattr(os, "fork"):
        return None
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # a buffer copied into the child must not be written twice
    reader, writer = os.pipe()
    try:
        child = os.fork()
    except OSError:
        os.close(reader)
        os.close(writer)
        return None
    if child == 0:  # the intermediate process: starts the checker in a session of its own, then leaves
        os.close(reader)
        try:
            os.setsid()
            checker = os.fork()
            if checker == 0:
                os.close(writer)
                _run_detached(dataset, store, docs_root)
            os.write(writer, str(checker).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as answer:
        text = answer.read().decode() or ""
    os.waitpid(child, 0)
    return int(text) if text.isdigit() else None


def _run_detached(dataset: str, store, docs_root: Path | None) -> None:
    """The checker: no terminal (its output would land after the shell's prompt), the checks, then exit without
    running the parent's exit handlers."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for descriptor in (0, 1, 2):
            os.dup2(null, descriptor)
        check_after_change(dataset, store, docs_root)
        code = 0
    finally:
        os._exit(code)
