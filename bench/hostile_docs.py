"""Hostile documents (issues 13 and 29): time and peak memory of slicing each pathological input at one or two sizes.

Run: .venv/bin/python -m bench.hostile_docs [--code-root DIR] [--timeout S] [--memory-gb G] [--only NAME] [--markdown-it]

Each measurement runs in a child process of its own, against the code in --code-root (default:
this checkout), under a wall-clock timeout and an address-space limit, so the code before the fix
(run it from a `git worktree add /tmp/old <commit>` checkout) can be measured too: a run that is
cut off is reported as "> N s" or "killed at N GB". Peak memory is the child's peak resident set
(resource.getrusage) above what it held before slicing, so lxml's and zlib's memory counts too.
Time is wall clock with the child's CPU time beside it: a busy machine inflates the first only.
The inputs are generated here, in a temporary folder. With --markdown-it the child also times
markdown-it-py's CommonMark parse of the same Markdown files (the reference our heading scanner is
tested against; a parser, not a slicer, so a yardstick, not a target) after the slicing, inside
the same timeout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DOCSET = REPO / "workdir" / "docs" / "tidewater"
MB = 1024 * 1024


# --- the inputs ---------------------------------------------------------------------------


def nested_list_markers(n: int) -> str:
    return "- " * n + "x\n"


def nested_quotes(n: int) -> str:
    return ">" * n + " x\n"


def indented_list(levels: int) -> str:
    return "".join("  " * level + "- a\n" for level in range(levels))


def backtick_fence(n: int) -> str:
    return "`" * n + "\ncode\n" + "`" * (n - 1) + "\n"


def spaces_in_heading(n: int) -> str:
    return "# a" + " " * n + "b\n"


def docx_bomb(path: Path, inflated_bytes: int) -> None:
    """A .docx whose word/document.xml is `inflated_bytes` of empty paragraphs and whitespace (about 1 MB packed per GB).

    No text node is long enough for lxml's own limit, so python-docx reads it all: no text, no error.
    """
    prefix = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>')
    suffix = b"</w:body></w:document>"
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    relationships = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="word/document.xml"/></Relationships>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", relationships)
        padding = inflated_bytes - len(prefix) - len(suffix)
        with archive.open("word/document.xml", "w", force_zip64=inflated_bytes >= 2**31 - 1) as entry:
            entry.write(prefix)
            unit = b"<w:p/>" + b" " * 1018  # whitespace between elements is dropped by the parser
            chunk = unit * (MB // len(unit))
            for _ in range(padding // len(chunk)):
                entry.write(chunk)
            entry.write(b" " * (padding % len(chunk)) + suffix)


def bare_headings(size: int) -> str:
    """`size` bytes of lines holding a lone "#": each one an empty ATX heading."""
    return "#\n" * (size // 2)


def undecodable_names(folder: Path, count: int) -> None:
    """One good file and `count` files whose names are not UTF-8 (as a Latin-1 or GBK zip leaves them on Linux)."""
    _write(folder / "good.md", "# Good\n\nA file with a UTF-8 name.\n")
    for index in range(count):
        _write(Path(os.fsdecode(os.fsencode(folder) + b"/bad%d\xff.md" % index)), "# Bad\n\ntext\n")


def docx_with_doctype(path: Path, doctype: str, body_text: str) -> None:
    """A real .docx (python-docx) whose word/document.xml starts with `doctype` and says `body_text` (entity references)."""
    import docx

    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("PLACEHOLDER")
    document.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                declaration, rest = data.split(b"?>", 1)
                data = declaration + b"?>" + doctype.encode() + rest.replace(b"PLACEHOLDER", body_text.encode())
            archive.writestr(info.filename, data)


def billion_laughs(levels: int) -> tuple[str, str]:
    """(doctype, body) of the billion-laughs DTD: `levels` entities, each ten of the one before (10**levels "lol")."""
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, levels + 1)]
    return f"<!DOCTYPE w:document [{''.join(entities)}]>", f"&lol{levels};"


XXE = ('<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")


# (name, sizes, label of a size, how to lay out the doc set folder)
CASES = {
    "nested list markers": ((500, 50_000), "{:,} markers", lambda folder, n: _write(folder / "deep.md", nested_list_markers(n))),
    "nested quotes": ((1_000, 100_000), "{:,} `>`", lambda folder, n: _write(folder / "deep.md", nested_quotes(n))),
    "list indented N levels": ((1_000, 3_000), "{:,} levels", lambda folder, n: _write(folder / "deep.md", indented_list(n))),
    "backtick fence": ((10_000, 100_000), "{:,} backticks", lambda folder, n: _write(folder / "ticks.md", backtick_fence(n))),
    "spaces in a heading": ((10_000, 100_000), "{:,} spaces", lambda folder, n: _write(folder / "heading.md", spaces_in_heading(n))),
    "docx bomb": ((100 * MB, 1024 * MB), "{:,.0f} MB inflated", lambda folder, n: docx_bomb(folder / "bomb.docx", n)),
    "clicking a slice row": ((1, 10), "tidewater x{}", lambda folder, n: _copy_sample(folder, n)),
    "sample doc set": ((1, 10), "tidewater x{}", lambda folder, n: _copy_sample(folder, n)),
    "bare # lines": ((2 * MB, 4 * MB), "{:,.0f} MB", lambda folder, n: _write(folder / "hashes.md", bare_headings(n))),
    "one-letter lines (control)": ((2 * MB, 4 * MB), "{:,.0f} MB", lambda folder, n: _write(folder / "letters.md", "a\n" * (n // 2))),
    "undecodable file name": ((1,), "{} of 2 files", undecodable_names),
    "xxe docx": ((1,), "file:///etc/passwd", lambda folder, n: docx_with_doctype(folder / "xxe.docx", *XXE)),
    "billion laughs docx": ((9,), "10^{} lol", lambda folder, n: docx_with_doctype(folder / "laughs.docx", *billion_laughs(n))),
}
MEGABYTE_SIZES = ("docx bomb", "bare # lines", "one-letter lines (control)")
MARKDOWN_IT_VARIABLE = "BENCH_HOSTILE_MARKDOWN_IT"  # tells the child to time markdown-it-py too


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _copy_sample(folder: Path, copies: int) -> None:
    for index in range(copies):
        shutil.copytree(SAMPLE_DOCSET, folder / f"copy{index}")


# --- the child: one measurement -----------------------------------------------------------


def child(case: str, folder: Path) -> dict:
    """Slice the doc set in `folder` with the code on PYTHONPATH; what happened, how long, how much memory."""
    from tools.core.i18n import set_default_language
    from tools.docs import docsets

    set_default_language("en")
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu_started = time.perf_counter(), time.process_time()
    result: dict = {}
    if case == "clicking a slice row":
        # What the Dataset generation tab runs per click: slice_docset before, the cached one after.
        slice_for_click = getattr(docsets, "slice_docset_cached", docsets.slice_docset)
        slice_for_click(folder)  # the doc set was loaded when it was picked
        clicks = 10
        started = time.perf_counter()
        for _ in range(clicks):
            slices, files = slice_for_click(folder)
        seconds = (time.perf_counter() - started) / clicks
        result["per"] = "click"
    else:
        try:
            slices, files = docsets.slice_docset(folder)
        except BaseException as exc:  # noqa: BLE001 - the outcome is what is measured
            slices, files = [], []
            result["exception"] = type(exc).__name__
        seconds = time.perf_counter() - started
        result["cpu_s"] = time.process_time() - cpu_started  # what a busy machine does not inflate
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    problems = [document.error if document.error.startswith(document.path) else f"{document.path}: {document.error}"
                for document in files if document.error]
    result.update(seconds=seconds, peak_mb=(peak_kb - baseline_kb) / 1024, slices=len(slices),
                  max_tokens=max((piece.tokens for piece in slices), default=0),
                  slice_chars=sum(len(piece.text) for piece in slices), problems=problems)
    markdown_files = sorted(folder.rglob("*.md")) if os.environ.get(MARKDOWN_IT_VARIABLE) else []
    if markdown_files:
        result["markdown_it_s"] = _markdown_it_seconds(markdown_files)
    return result


def _markdown_it_seconds(paths: list[Path]) -> float | None:
    """markdown-it-py's CommonMark parse of the files, in seconds (None without the package)."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return None
    parser = MarkdownIt("commonmark")
    texts = [path.read_text(encoding="utf-8") for path in paths]
    started = time.perf_counter()
    for text in texts:
        parser.parse(text)
    return time.perf_counter() - started


# --- the parent ---------------------------------------------------------------------------


def measure(case: str, size: int, code_root: Path, timeout_s: float, memory_gb: float, markdown_it: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docset"
        folder.mkdir()
        CASES[case][2](folder, size)
        limit = int(memory_gb * 1024 * MB)

        def limit_memory() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        env = {**os.environ, "PYTHONPATH": str(code_root), MARKDOWN_IT_VARIABLE: "1" if markdown_it else ""}
        command = [sys.executable, str(Path(__file__).resolve()), "--child", case, str(folder)]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=code_root, env=env, capture_output=True, text=True,
                                  timeout=timeout_s, preexec_fn=limit_memory)
        except subprocess.TimeoutExpired:
            return {"outcome": f"> {timeout_s:.0f} s (timed out)"}
        wall = time.perf_counter() - started
        if done.returncode != 0:
            if "MemoryError" in done.stderr or done.returncode < 0:
                return {"outcome": f"killed at {memory_gb:g} GB after {wall:.0f} s"}
            return {"outcome": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1][:120]}"}
        return json.loads(done.stdout.strip().splitlines()[-1])


def describe(result: dict) -> tuple[str, str, str]:
    """(time, peak memory, what came out) for a table row."""
    if "outcome" in result:
        return result["outcome"], "-", "-"
    time_text = _seconds(result["seconds"])
    if result.get("cpu_s") is not None:
        time_text += f" (CPU {_seconds(result['cpu_s'])})"
    if result.get("per"):
        time_text += f" per {result['per']}"
    outcome = (f"raised {result['exception']}" if result.get("exception")
               else f"{result['slices']:,} slices, largest {result['max_tokens']:,} tokens, {result['slice_chars'] / 1e6:.2f} MB of text")
    if result["problems"]:
        outcome += "; " + "; ".join(problem[:160] for problem in result["problems"])
    if result.get("markdown_it_s") is not None:
        outcome += f" (markdown-it-py parses it in {_seconds(result['markdown_it_s'])})"
    # A file name that is not UTF-8 must not break the table (older code reported it undecoded).
    outcome = outcome.encode("utf-8", "backslashreplace").decode("utf-8")
    return time_text, f"{result['peak_mb']:,.1f} MB", outcome


def _seconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-root", type=Path, default=REPO, help="checkout whose tools/docs is measured")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one measurement may run")
    parser.add_argument("--memory-gb", type=float, default=4, help="address space one measurement may use")
    parser.add_argument("--only", choices=sorted(CASES), action="append", help="measure only these inputs")
    parser.add_argument("--markdown-it", action="store_true", help="also time markdown-it-py's parse of the Markdown files")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    print(f"code: {args.code_root.resolve()}; limits: {args.timeout:.0f} s, {args.memory_gb:g} GB per run\n")
    print("| input | size | time | peak memory | result |")
    print("| --- | --- | ---: | ---: | --- |")
    for case, (sizes, label, _) in CASES.items():
        if args.only and case not in args.only:
            continue
        for size in sizes:
            shown = label.format(size / MB if case in MEGABYTE_SIZES else size)
            time_text, memory_text, outcome = describe(measure(case, size, args.code_root, args.timeout, args.memory_gb, args.markdown_it))
            print(f"| {case} | {shown} | {time_text} | {memory_text} | {outcome} |", flush=True)


if __name__ == "__main__":
    main()
