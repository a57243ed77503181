"""Slicing keeps every line, in order, within the token budget, without breaking code fences."""

import random
import re
from pathlib import Path

import pytest

from schema.document import DocumentSlice
from tools.docs.docsets import slice_document
from tools.docs.markdown_tree import outline_markdown, split_lines
from tools.docs.slicing import (
    DEFAULT_MAX_TOKENS,
    estimate_tokens,
    slice_by_kind,
    slice_markdown,
    slice_text,
)

SAMPLE_DOCSET = Path(__file__).resolve().parent.parent / "workdir" / "docs" / "tidewater"
FENCE_MARKER_LINE = re.compile(r"[ \t>]*(`{3,}|~{3,}).*")


# --- the invariant checker ----------------------------------------------------------------


def assert_slices_cover_document(
    text: str, slices: list[DocumentSlice], max_tokens: int, markdown: bool = True, check_fences: bool = True
):
    """Every non-blank content line appears, in order, in the slices and inside their line ranges.

    A slice's text lines are whole original lines, fragments of one line (an oversized line cut
    in pieces, which concatenate back to the line), or synthetic fence marker lines (pieces of a
    fence that was too big for one slice). Plain text has no front matter and no fences.
    """
    outline = outline_markdown(text)
    lines = outline.lines
    content_start = outline.content_start if markdown else 0
    check_fences = check_fences and markdown
    expected = [line_no for line_no in range(content_start, len(lines)) if lines[line_no].strip()]
    cursor, offset = 0, 0  # next expected line (index into `expected`) and characters of it already seen
    for piece in slices:
        for text_line in piece.text.split("\n"):
            if not text_line.strip():
                continue
            line_no = expected[cursor] if cursor < len(expected) else None
            original = lines[line_no] if line_no is not None else ""
            in_range = line_no is not None and piece.start_line <= line_no < piece.end_line
            if offset == 0 and text_line == original and in_range:
                cursor += 1
            elif in_range and original.startswith(text_line, offset):
                offset += len(text_line)
                if offset == len(original):
                    cursor, offset = cursor + 1, 0
            elif FENCE_MARKER_LINE.fullmatch(text_line):
                continue  # a synthetic opening/closing line of a split fence
            else:
                raise AssertionError(f"slice {piece.start_line}-{piece.end_line} has {text_line!r}, expected {original[offset:]!r}")
            assert piece.start_line <= line_no < piece.end_line, f"line {line_no} outside slice range {piece.start_line}-{piece.end_line}"
        assert piece.tokens == estimate_tokens(piece.text)
        assert piece.tokens <= max_tokens, f"slice {piece.start_line}-{piece.end_line} has {piece.tokens} tokens"
        assert piece.text.strip(), "empty slice"
        if check_fences:
            assert all(fence.closed for fence in outline_markdown(piece.text).fences), piece.text
    assert cursor == len(expected), f"lines lost from {expected[cursor:cursor + 1]}"
    assert_ranges_tile(slices, content_start if expected else 0, len(lines) if expected else 0)


def assert_ranges_tile(slices: list[DocumentSlice], start: int, end: int):
    if not slices:
        assert start == end
        return
    assert slices[0].start_line == start
    assert slices[-1].end_line == end
    for previous, current in zip(slices, slices[1:]):
        # Fragments of one oversized line share that line.
        assert previous.end_line - 1 <= current.start_line <= previous.end_line, (previous, current)


# --- random Markdown documents ------------------------------------------------------------

WORDS = "tide water pump valve flow gauge config install runtime 潮汐 水泵 安装 配置".split()


def random_sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))).capitalize() + "."


def random_block(rng: random.Random) -> str:
    kind = rng.choice(["heading", "heading", "paragraph", "paragraph", "paragraph", "fence", "list", "long", "setext", "quote"])
    if kind == "heading":
        return "#" * rng.randint(1, 4) + " " + random_sentence(rng).rstrip(".")
    if kind == "setext":
        return random_sentence(rng).rstrip(".") + "\n" + rng.choice(["===", "---"])
    if kind == "paragraph":
        return "\n".join(random_sentence(rng) for _ in range(rng.randint(1, 6)))
    if kind == "long":
        return " ".join(random_sentence(rng) for _ in range(rng.randint(20, 80)))  # one very long line
    if kind == "list":
        return "\n".join(f"- {random_sentence(rng)}" for _ in range(rng.randint(1, 8)))
    if kind == "quote":
        return "\n".join(f"> {random_sentence(rng)}" for _ in range(rng.randint(1, 3)))
    marker = rng.choice(["```", "~~~", "````"])
    body = []
    for _ in range(rng.randint(1, 60)):
        roll = rng.random()
        body.append("# a comment" if roll < 0.15 else "" if roll < 0.3 else f"value_{rng.randint(0, 999)} = compute({rng.random():.6f})")
    return "\n".join([marker + rng.choice(["", "python", "bash"]), *body, marker])


def random_document(rng: random.Random) -> str:
    blocks = [random_block(rng) for _ in range(rng.randint(1, 25))]
    front_matter = "---\ntitle: random\n---\n" if rng.random() < 0.3 else ""
    return front_matter + "\n\n".join(blocks) + rng.choice(["", "\n", "\n\n"])


@pytest.mark.parametrize("seed", range(8))
def test_random_documents_keep_every_line_within_budget(seed):
    rng = random.Random(seed)
    for _ in range(12):
        text = random_document(rng)
        max_tokens = rng.choice([40, 80, 150, 400, DEFAULT_MAX_TOKENS])
        slices = slice_markdown(text, "random.md", max_tokens)
        assert_slices_cover_document(text, slices, max_tokens)


def test_random_plain_text_keeps_every_line_within_budget():
    rng = random.Random(99)
    for _ in range(20):
        text = "\n\n".join(random_block(rng) for _ in range(rng.randint(1, 20)))
        max_tokens = rng.choice([30, 100, 500])
        slices = slice_text(text, "notes.txt", max_tokens)
        assert_slices_cover_document(text, slices, max_tokens, markdown=False)
        assert all(piece.heading_path == [] for piece in slices)


# --- specific behaviour --------------------------------------------------------------------


def test_estimate_tokens():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("安装指南") == 4
    assert estimate_tokens("安装 GPU") == 2 + 1  # two CJK characters, then " GPU" is 4 other characters
    assert estimate_tokens("こんにちは、세계") == 8


def test_small_document_is_one_slice_with_heading_path():
    text = "# Guide\n\nWelcome.\n\n## Install\n\nRun pip.\n"
    (only,) = slice_markdown(text, "guide.md")
    assert only.text == text.rstrip("\n")
    assert only.heading_path == ["Guide"]  # common ancestor of the merged sections
    assert (only.start_line, only.end_line) == (0, 7)
    assert only.heading_label == "Guide"


def test_sections_get_their_heading_paths():
    body = "word " * 200  # about 250 tokens: not tiny for a budget of 300
    text = f"# Guide\n\n{body}\n\n## Install\n\n{body}\n\n### GPU\n\n{body}\n\n## Usage\n\n{body}\n"
    slices = slice_markdown(text, "guide.md", max_tokens=300)
    assert [piece.heading_path for piece in slices] == [
        ["Guide"], ["Guide", "Install"], ["Guide", "Install", "GPU"], ["Guide", "Usage"]
    ]
    assert slices[2].text.startswith("### GPU\n\nword")  # the heading line is part of the slice
    assert slices[2].heading_label == "Guide -> Install -> GPU"
    assert_slices_cover_document(text, slices, 300)


def test_tiny_sections_merge_under_common_ancestor():
    text = "# Guide\n\n## A\n\nshort a\n\n## B\n\nshort b\n\n# Other\n\n" + "word " * 300 + "\n"
    slices = slice_markdown(text, "guide.md", max_tokens=400)
    assert slices[0].heading_path == []  # "Guide" and "Other" have no common heading
    assert slices[0].text.startswith("# Guide") and "word" in slices[0].text
    slices = slice_markdown(text, "guide.md", max_tokens=100)
    assert slices[0].heading_path == ["Guide"]
    assert slices[0].text == "# Guide\n\n## A\n\nshort a\n\n## B\n\nshort b"
    assert all(piece.heading_path == ["Other"] for piece in slices[1:])


def test_long_section_splits_at_paragraphs_not_inside_fences():
    paragraphs = [" ".join(["alpha"] * 40) for _ in range(6)]
    code = "```bash\n# step one\n\npip install tidewater\n\n# step two\n```"
    text = "# Setup\n\n" + "\n\n".join(paragraphs[:3] + [code] + paragraphs[3:]) + "\n"
    slices = slice_markdown(text, "setup.md", max_tokens=120)
    assert len(slices) > 3
    assert any(code in piece.text for piece in slices)  # the fence stayed whole
    assert all(piece.heading_path == ["Setup"] for piece in slices)
    assert_slices_cover_document(text, slices, 120)


def test_oversized_fence_is_split_into_valid_fences():
    code_lines = [f"print({index})  # line {index}" for index in range(200)]
    text = "# Code\n\n~~~~python\n" + "\n".join(code_lines) + "\n~~~~\n\nAfter.\n"
    slices = slice_markdown(text, "code.md", max_tokens=100)
    fence_pieces = [piece for piece in slices if "print(" in piece.text]
    assert len(fence_pieces) > 3
    for piece in fence_pieces:
        piece_lines = piece.text.split("\n")
        assert piece_lines[0] in ("~~~~python",) or piece.text.startswith("# Code")
        assert piece_lines[-1] == "~~~~"
    assert_slices_cover_document(text, slices, 100)


def test_heading_leads_an_oversized_fence_or_line():
    code = "\n".join(f"step_{index}()" for index in range(300))
    text = f"# API\n\n## Example\n\n```py\n{code}\n```\n\n## Prose\n\n" + "Water flows downhill. " * 200 + "\n"
    slices = slice_markdown(text, "api.md", max_tokens=120)
    example = [piece for piece in slices if piece.heading_path == ["API", "Example"]]
    prose = [piece for piece in slices if piece.heading_path == ["API", "Prose"]]
    assert example[0].text.startswith("## Example\n\n```py\nstep_0()")
    assert prose[0].text.startswith("## Prose\n\nWater flows downhill.")
    assert not any(piece.text.strip() in ("## Example", "## Prose") for piece in slices)
    assert_slices_cover_document(text, slices, 120)


def test_unclosed_fence_pieces_are_closed():
    text = "# Code\n\n```\n" + "\n".join(f"line {index} of code" for index in range(100)) + "\n"
    slices = slice_markdown(text, "open.md", max_tokens=60)
    assert_slices_cover_document(text, slices, 60)


def test_oversized_line_is_split_at_sentences():
    sentence = "The pump moves water from the lower basin. "
    text = "# Long\n\n" + sentence * 100 + "\n"
    slices = slice_markdown(text, "long.md", max_tokens=50)
    body_pieces = slices[1:] if slices[0].text == "# Long" else slices
    assert all(piece.text.rstrip().endswith(".") for piece in body_pieces)
    assert_slices_cover_document(text, slices, 50)


def test_unbreakable_line_is_hard_split():
    text = "x" * 1000 + "\n" + "安" * 300 + "\n"
    slices = slice_text(text, "blob.txt", max_tokens=64)
    assert "".join(piece.text for piece in slices) == "x" * 1000 + "安" * 300
    assert_slices_cover_document(text, slices, 64, markdown=False)


def test_oversized_fence_line_is_fragmented_inside_markers():
    text = "```json\n" + '{"key": "' + "v" * 2000 + '"}\n```\n'
    slices = slice_markdown(text, "data.md", max_tokens=100)
    assert all(piece.text.startswith("```json\n") and piece.text.endswith("\n```") for piece in slices)
    assert_slices_cover_document(text, slices, 100)


def test_front_matter_is_excluded():
    text = "---\ntitle: Secret\n---\n\n# Visible\n\nBody.\n"
    (only,) = slice_markdown(text, "fm.md")
    assert "title: Secret" not in only.text
    assert only.text == "# Visible\n\nBody."
    assert only.heading_path == ["Visible"]  # the blank line after the front matter has no heading
    assert (only.start_line, only.end_line) == (3, 7)


def test_blank_and_empty_documents_have_no_slices():
    assert slice_markdown("", "empty.md") == []
    assert slice_markdown("\n\n  \n", "blank.md") == []
    assert slice_markdown("---\na: 1\n---\n\n", "only-front-matter.md") == []
    assert slice_text("\n \n", "blank.txt") == []


def test_slice_ids_are_stable_and_distinct():
    text = "# A\n\none\n\n# B\n\n" + "two " * 300
    first = slice_markdown(text, "doc.md", max_tokens=200)
    second = slice_markdown(text, "doc.md", max_tokens=200)
    assert [piece.slice_id for piece in first] == [piece.slice_id for piece in second]
    assert len({piece.slice_id for piece in first}) == len(first)
    assert all(re.fullmatch(r"[0-9a-f]{16}", piece.slice_id) for piece in first)
    assert slice_markdown(text, "other.md", max_tokens=200)[0].slice_id != first[0].slice_id


def test_start_and_end_lines_match_text():
    text = "Intro line\n\n# A\n\nalpha\n\n# B\n\n" + "\n\n".join(["beta " * 30] * 5) + "\n"
    lines = split_lines(text)
    for piece in slice_markdown(text, "doc.md", max_tokens=60):
        content = [line for line in lines[piece.start_line:piece.end_line] if line.strip()]
        assert [line for line in piece.text.split("\n") if line.strip()] == content


def test_invalid_budget_is_rejected():
    with pytest.raises(ValueError, match="max_tokens"):
        slice_markdown("# x", "x.md", max_tokens=0)


def test_slice_by_kind_uses_headings_only_for_markdown_kinds():
    text = "# Title\n\nbody\n"
    assert slice_by_kind(text, "html", "a.html")[0].heading_path == ["Title"]
    assert slice_by_kind(text, "text", "a.txt")[0].heading_path == []


def test_slice_document_reads_a_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.md").write_text("# Page\n\nHello.\n", encoding="utf-8")
    (only,) = slice_document(tmp_path / "sub" / "page.md", tmp_path)
    assert only.source == "sub/page.md"
    assert only.heading_path == ["Page"]
    assert slice_document(Path("sub/page.md"), tmp_path) == [only]  # relative to the docset folder


@pytest.mark.skipif(not SAMPLE_DOCSET.is_dir(), reason="sample docset workdir/docs/tidewater not present")
@pytest.mark.parametrize("max_tokens", [100, DEFAULT_MAX_TOKENS])
def test_sample_docset_holds_invariants(max_tokens):
    markdown_files = sorted(SAMPLE_DOCSET.rglob("*.md"))
    if not markdown_files:
        pytest.skip("sample docset has no Markdown files yet")
    for path in markdown_files:
        text = path.read_text(encoding="utf-8")
        slices = slice_markdown(text, path.name, max_tokens)
        assert_slices_cover_document(text, slices, max_tokens)
