"""The faster slicer (issue 28) cuts what it cut before: every slice (id, so its text; heading path; line
range; token estimate) of the sample docs and of a generated corpus is compared with the output of the
implementation before the change, frozen in tests/fixtures/slicing_equivalence.json (regenerate only for
a deliberate change of slicing: `.venv/bin/python -m tests.test_slicing_speed_equivalence --write`).

The generated corpus mixes English and Chinese prose, one-line paragraphs longer than a slice, fences
too big for one (some with huge markers), front matter, lone "#" lines, setext headings, block quotes,
lists, raw HTML, tiny sections that merge, blank runs, tabs and CRLF, at budgets from 12 to 800 tokens.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import pytest

from tools.docs.slicing import CJK_CHARACTER, estimate_tokens, slice_markdown, slice_text

FIXTURE = Path(__file__).parent / "fixtures" / "slicing_equivalence.json"
SAMPLE_DOCSET = Path(__file__).resolve().parent.parent / "workdir" / "docs" / "tidewater"
BUDGETS = (12, 60, 200, 800)

ENGLISH = ("The tide runs every night.", "Each stage retries twice; then it fails!", "Why? Because the pool is full:",
           "Use `Tide.run()` with care.", "See the [guide](guide.md) for more.", "A word", "x" * 90)
CHINESE = ("模型训练需要很多显存。", "每个阶段都会重试两次！", "为什么？因为队列已满；", "请参考指南。", "使用 `lora_r` 参数",
           "数据集" * 40, "𠀀𠀁")
BLOCK_LINES = ("# Title", "## 安装", "### Deep ###", "#", "##   ", "Setext", "===", "---", "***", "- item", "* 列表项",
               "1. one", "2) two", "  - nested", "> quote", "> # quoted heading", ">", "<div>", "</div>", "<!--", "-->",
               "    indented code", "\tTabbed", "", "", "", "   ", "| a | b |", "| --- | --- |", "# C#", "#5 not")


def _prose(rng: random.Random, sentences: int) -> str:
    pool = CHINESE if rng.random() < 0.5 else ENGLISH
    joiner = "" if pool is CHINESE and rng.random() < 0.7 else " "
    return joiner.join(rng.choice(pool) for _ in range(sentences))


def _fence(rng: random.Random) -> list[str]:
    marker = rng.choice(("```", "~~~", "````", "`" * 60))
    body = [rng.choice(("x = 1", "# 注释", "print('hi')", "", "    deep()", "y" * rng.randint(1, 400)))
            for _ in range(rng.randint(0, 60))]
    closer = [marker] if rng.random() < 0.85 else []
    prefix = rng.choice(("", "", "> ", "- ", "  "))
    return [prefix + marker + rng.choice(("", "python", " bash extra"))] + [prefix + line for line in body] + \
        [prefix + line for line in closer]


def generated_document(rng: random.Random) -> str:
    lines = ["---", "title: t", "---"] if rng.random() < 0.2 else []
    for _ in range(rng.randint(1, 40)):
        kind = rng.random()
        if kind < 0.35:
            lines.append(rng.choice(BLOCK_LINES))
        elif kind < 0.6:
            lines.append(_prose(rng, rng.randint(1, 6)))
        elif kind < 0.7:
            lines.append(_prose(rng, rng.randint(30, 120)))  # one line longer than most budgets
        elif kind < 0.8:
            lines.extend(_fence(rng))
        elif kind < 0.85:
            lines.append(" " * rng.randint(50, 900))  # a run of spaces longer than a slice
        elif kind < 0.9:
            lines.append(f"{'#' * rng.randint(1, 6)} {_prose(rng, rng.randint(1, 3))}")
        else:
            lines.extend(_prose(rng, rng.randint(1, 3)) for _ in range(rng.randint(5, 30)))
    newline = "\r\n" if rng.random() < 0.1 else "\n"
    return newline.join(lines) + (newline if rng.random() < 0.8 else "")


def generated_corpus(count: int = 100, seed: int = 28) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"generated/{index:03d}.md", generated_document(rng)) for index in range(count)]


def sample_corpus() -> list[tuple[str, str]]:
    return [(path.relative_to(SAMPLE_DOCSET).as_posix(), path.read_text(encoding="utf-8"))
            for path in sorted(SAMPLE_DOCSET.rglob("*.md"))]


def _describe(slices) -> list[list]:
    # The id is a digest of the source, the heading path and the text; the path is kept as a short
    # digest too (a setext title can be thousands of characters, repeated in every slice under it).
    return [[piece.slice_id, _digest(piece.heading_path), piece.start_line, piece.end_line, piece.tokens, len(piece.text)]
            for piece in slices]


def _digest(heading_path: list[str]) -> str:
    return hashlib.sha1("\x00".join(heading_path).encode("utf-8")).hexdigest()[:10]


def _frozen_form(slices, rows: bool) -> dict:
    """Count and digest of the slices' descriptions; the descriptions themselves where `rows` (kept small)."""
    described = _describe(slices)
    digest = hashlib.sha256(json.dumps(described, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]
    return {"count": len(described), "digest": digest, **({"rows": described} if rows else {})}


def current_output() -> dict[str, dict]:
    output = {}
    for name, text in sample_corpus():
        for budget in BUDGETS[1:]:
            output[f"sample/{name}@{budget}"] = _frozen_form(slice_markdown(text, name, budget), rows=True)
    for name, text in generated_corpus():
        for budget in BUDGETS:
            output[f"{name}@{budget}"] = _frozen_form(slice_markdown(text, name, budget), rows=budget == BUDGETS[-1])
        output[f"{name}@text@{BUDGETS[1]}"] = _frozen_form(slice_text(text, name, BUDGETS[1]), rows=False)
    return output


@pytest.fixture(scope="module")
def frozen() -> dict[str, list[list]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_slices_are_the_frozen_ones(frozen):
    output = current_output()
    assert output.keys() == frozen.keys()
    differing = [key for key in output if output[key] != frozen[key]]
    assert not differing, f"{len(differing)} documents slice differently, first {differing[0]}: " \
                          f"{output[differing[0]]} != {frozen[differing[0]]}"


def test_the_fixture_exercises_the_hard_paths(frozen):
    # Guard against a corpus that slips into only easy cases: many slices, cut lines, merged sections, CJK.
    assert sum(entry["count"] for entry in frozen.values()) > 50_000
    rows = [row for entry in frozen.values() for row in entry.get("rows", [])]
    assert len(rows) > 1000
    assert sum(1 for row in rows if row[2] + 1 == row[3]) > 50  # pieces of one line
    assert sum(1 for entry in frozen.values() for a, b in zip(entry.get("rows", []), entry.get("rows", [])[1:])
               if a[2] == b[2]) > 20  # fragments of one line
    assert any(len(CJK_CHARACTER.findall(text)) > 1000 for _, text in generated_corpus())


@pytest.mark.parametrize("text", ["", "a", "安装", "𠀀", "a\n安装指南。\n", "é" * 9, "\u3000\uff01\uffef\uf900", "x" * 4001])
def test_token_estimate_counts_cjk_like_the_pattern(text):
    cjk = len(CJK_CHARACTER.findall(text))
    assert estimate_tokens(text) == cjk + -(-(len(text) - cjk) // 4)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.test_slicing_speed_equivalence --write")
    FIXTURE.write_text(json.dumps(current_output(), ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE}")
