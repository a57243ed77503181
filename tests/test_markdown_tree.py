"""The heading scanner agrees with markdown-it (CommonMark) on document-level headings."""

import random

import pytest
from markdown_it import MarkdownIt

from tools.docs.markdown_tree import outline_markdown, parse_markdown, split_lines

COMMONMARK = MarkdownIt("commonmark")


def reference_headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of markdown-it's top-level headings; nested ones (quotes, list items) are body for us."""
    tokens = COMMONMARK.parse(text)
    return [
        (int(token.tag[1]), _normalize(tokens[index + 1].content))
        for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.level == 0
    ]


def our_headings(text: str) -> list[tuple[int, str]]:
    return [(node.level, _normalize(node.title)) for node in outline_markdown(text).headings()]


def _normalize(title: str) -> str:
    # markdown-it keeps the newlines of a multi-line setext title; we join its lines with spaces.
    return " ".join(title.split())


TRICKY_DOCUMENTS = {
    "hash comment in backtick fence": "# Install\n```bash\n# run this\npip install x\n```\n## Next\n",
    "tilde fence": "~~~python\n# not a heading\n~~~\n# Heading\n",
    "four-backtick fence containing three": "````md\n```\n# inner\n```\n````\n# After\n",
    "closer shorter than opener": "````\n# a\n```\n# b\n````\n# c\n",
    "tilde does not close backticks": "```\n# a\n~~~\n# b\n```\n# c\n",
    "unclosed fence runs to the end": "# Top\n```\n# never a heading\n\nstill code\n",
    "backtick info string with backtick": "``` a`b\n# heading after inline code\n",
    "closing hashes": "# foo ##\n## bar #   \n### baz \\#\n#### C#\n##### x#y #\n",
    "only hashes": "# #\n### ###\n#\n##   \n",
    "hash without space": "#5 bolt\n#hashtag\n",
    "seven hashes": "####### seven\n###### six\n",
    "setext multi-line": "First line\nsecond line\n===\n\nSub\n---\n",
    "thematic break after blank line": "Para\n\n---\n\nText\n***\n",
    "setext after list item is a thematic break": "- item\n---\n\n- item\n===\n",
    "underline after indented code": "    code\n---\n",
    "underline indentation": "Foo\n   ===\n\nBar\n    ---\n",
    "indented code with hash": "    # not a heading\n   # heading\n\t# tab is code\n",
    "leading spaces": " # one\n  ## two\n   ### three\n",
    "empty headings": "#\n# \n##\nText\n",
    "chinese": "# 安装指南\n\n快速开始\n========\n\n## 使用 GPU 训练 ##\n",
    "block quote": "> # quoted\n> text\nlazy\n---\n# real\n",
    "heading inside list item": "- item\n  # nested\n# top\n",
    "fence inside list item closed by outdent": "- ```\n# breaks out\n```\n",
    "raw html block": "<div>\n# inside html\n</div>\n\n# outside\n",
    "html comment across blank lines": "<!--\n\n# commented out\n-->\n# real\n",
    "ordered item cannot interrupt unless 1": "Para\n2. two\n---\n\nPara\n1. one\n---\n",
    "lazy line after deep list item": "10.  x\n    # y\nfoo\n---\n",
    "escaped hash": "\\# not\n# yes\n",
    "tab after hashes": "#\tTabbed\n",
    "crlf line endings": "# One\r\nText\r\nTwo\r\n---\r\n",
}


@pytest.mark.parametrize("text", TRICKY_DOCUMENTS.values(), ids=TRICKY_DOCUMENTS.keys())
def test_headings_match_markdown_it(text):
    assert our_headings(text) == reference_headings(text)


def test_tricky_documents_are_not_trivial():
    # Guard against a case list that accidentally has no headings anywhere.
    assert sum(bool(reference_headings(text)) for text in TRICKY_DOCUMENTS.values()) >= 20


LINE_FRAGMENTS = [
    "# h", "## h2", "   ### h3", "    # code", "#5", "####### x", "# C#", "# x #", "#\tTab", "#  安装  #",
    "foo", "bar baz", "安装", "", "", "", "---", "===", "***", "- - -", "_ _ _", "  ---", "   ===",
    "- item", "* item", "+ plus", "1. one", "2. two", "1)", "-", "*", "  - nested", "  # in", "   - x",
    "      # six", "-     six", "> quote", "> # qh", "> > # deep", "> - y", ">", "  > q", "> ```",
    "```", "```py", "~~~", "````", "   ```", "     ```", "- ```", "1. ```", "` ``", "```` a```", "~~~ a`b",
    "<div>", "</div>", "<!--", "-->", "<pre>", "</pre>", "<span>", "<details>", "<?x", "?>", "\tfoo",
]


def test_random_documents_match_markdown_it():
    """Random mixes of tricky lines; a fixed seed keeps failures reproducible."""
    rng = random.Random(20240601)
    for _ in range(1000):
        text = "\n".join(rng.choice(LINE_FRAGMENTS) for _ in range(rng.randint(3, 14))) + "\n"
        if text.startswith("---"):
            continue  # front matter: markdown-it does not know it
        assert our_headings(text) == reference_headings(text), text


def test_front_matter_is_metadata_not_content():
    text = "---\ntitle: Guide\ntags: [a]\n---\n# Real\nbody\n"
    outline = outline_markdown(text)
    assert outline.front_matter == "title: Guide\ntags: [a]"
    assert outline.content_start == 4
    assert our_headings(text) == [(1, "Real")]
    assert outline.root.start_line == 4
    # Without the front matter markdown-it sees the same headings.
    assert our_headings(text) == reference_headings("\n".join(split_lines(text)[4:]))


def test_front_matter_may_end_with_dots():
    outline = outline_markdown("---\na: 1\n...\nTitle\n===\n")
    assert outline.front_matter == "a: 1"
    assert [(node.level, node.title) for node in outline.headings()] == [(1, "Title")]


def test_front_matter_needs_a_closing_line():
    outline = outline_markdown("---\nFoo\n---\n")
    assert outline.front_matter == "Foo"  # closed: front matter, even though it would render as a heading
    outline = outline_markdown("---\n# Heading\n")
    assert outline.front_matter is None
    assert [node.title for node in outline.headings()] == ["Heading"]


def test_tree_structure_and_line_ranges():
    text = "intro\n# A\na\n## A1\n### A1x\n## A2\n# B\nb\n#### deep\n"
    root, lines = parse_markdown(text)
    assert lines == split_lines(text)
    assert (root.level, root.start_line, root.end_line) == (0, 0, 9)
    section_a, section_b = root.children
    assert (section_a.title, section_a.start_line, section_a.end_line) == ("A", 1, 6)
    assert [(child.title, child.start_line, child.end_line) for child in section_a.children] == [("A1", 3, 5), ("A2", 5, 6)]
    assert [(child.title, child.start_line, child.end_line) for child in section_a.children[0].children] == [("A1x", 4, 5)]
    # A skipped level still nests under the nearest higher heading.
    assert (section_b.start_line, section_b.end_line) == (6, 9)
    assert [(child.level, child.title) for child in section_b.children] == [(4, "deep")]


def test_setext_heading_starts_at_its_first_paragraph_line():
    root, _ = parse_markdown("text\n\nLine one\nline two\n---\nbody\n")
    (heading,) = root.children
    assert (heading.level, heading.title, heading.start_line, heading.end_line) == (2, "Line one line two", 2, 6)


def test_fences_and_opaque_lines_are_recorded():
    text = "# A\n```py\ncode\n\n# comment\n```\n\n~~~\nopen\n"
    outline = outline_markdown(text)
    first, second = outline.fences
    assert (first.start_line, first.end_line, first.marker, first.closed) == (1, 6, "```", True)
    assert (second.start_line, second.end_line, second.closed) == (7, 9, False)
    assert set(range(1, 6)) | {7, 8} == outline.opaque_lines
    assert first.reopen_line == "```py" and first.close_line == "```"


def test_fence_reopen_lines_inside_containers():
    outline = outline_markdown("- ```js\n  x\n  ```\n\n> ~~~~\n> y\n")
    list_fence, quote_fence = outline.fences
    assert (list_fence.reopen_line, list_fence.close_line) == ("  ```js", "  ```")
    assert (quote_fence.reopen_line, quote_fence.close_line) == ("> ~~~~", "> ~~~~")


def test_line_splitting():
    assert split_lines("a\r\nb\rc\n") == ["a", "b", "c"]
    assert split_lines("a\n\n") == ["a", ""]
    assert split_lines("") == []
