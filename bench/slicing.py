"""Slicing speed (issue 28): our heading tree and tree plus slices against markdown-it-py's parse, on one corpus.

Run: .venv/bin/python -m bench.slicing [--code-root DIR ...] [--repeat N] [--max-tokens T]

The corpus is every Markdown file the installed packages ship (.venv/lib/python*/site-packages),
the sample doc set workdir/docs/tidewater, and a generated Chinese share (fixed seed) of about the
same size as the English part: several MB in all. Each --code-root (default: this checkout; give
a `git worktree add /tmp/before <commit>` checkout to measure older code) is measured in a child
process of its own that imports `tools` from there, so two versions print side by side from one
run. Each figure is the CPU time of the best of N rounds (the machine is shared: CPU time leaves out
the waits for other processes, and the best round is the one least disturbed), and markdown-it-py is
timed in the same child, in the same rounds, so the ratios compare like with like.
The check column says whether every file's slices tile its lines (front matter excepted) and
every section heading is kept (in a slice's heading path or text), and whether our headings are
markdown-it's document-level headings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DOCSET = REPO / "workdir" / "docs" / "tidewater"
CHILD_FLAG = "--child"

# --- the corpus ---------------------------------------------------------------------------

CHINESE_WORDS = (
    "模型", "训练", "数据集", "参数", "学习率", "批量", "显存", "梯度", "检查点", "评估", "推理", "量化",
    "微调", "适配器", "分词器", "样本", "损失", "验证", "导出", "服务器", "配置", "文件", "目录", "日志",
    "我们", "可以", "需要", "使用", "通过", "如果", "因为", "所以", "然后", "每个", "这个", "那些",
)
CHINESE_ENDS = ("。", "！", "？", "；", "，")
CODE_LINES = (
    "python -m pip install -r requirements.txt", "model = AutoModel.from_pretrained(path)",
    "for step, batch in enumerate(loader):", "    loss = model(**batch).loss", "    loss.backward()",
    "# 注释：保存检查点", "optimizer.step()", "print(f\"步骤 {step}: {loss:.4f}\")",
)


def _chinese_sentence(rng: random.Random, words: int) -> str:
    text = "".join(rng.choice(CHINESE_WORDS) for _ in range(words))
    if rng.random() < 0.3:
        text += f" `{rng.choice(('lora_r', 'batch_size', 'lr', 'max_len'))}` " + rng.choice(CHINESE_WORDS)
    return text + rng.choice(CHINESE_ENDS)


def chinese_document(rng: random.Random, target_chars: int) -> str:
    """A Chinese guide: headings at several levels, paragraphs (some longer than a slice), lists, fences, tables."""
    parts = ["---", "title: 生成的指南", "---", ""] if rng.random() < 0.3 else []
    size = 0
    while size < target_chars:
        kind = rng.random()
        if kind < 0.15:
            level = rng.choice((1, 2, 2, 3, 3, 4))
            title = "".join(rng.choice(CHINESE_WORDS) for _ in range(rng.randint(2, 5)))
            block = f"{'#' * level} {title}" if rng.random() < 0.9 else f"{title}\n{'=' if level == 1 else '-'}---"
        elif kind < 0.55:
            block = "".join(_chinese_sentence(rng, rng.randint(4, 20)) for _ in range(rng.randint(1, 8)))
        elif kind < 0.59:
            # Longer than an 800-token slice, on lines of a few sentences: cut between lines.
            block = "\n".join("".join(_chinese_sentence(rng, rng.randint(10, 30)) for _ in range(rng.randint(1, 4)))
                              for _ in range(rng.randint(20, 40)))
        elif kind < 0.6:
            # Longer than a slice on one line: the slicer has to cut it between sentences.
            block = "".join(_chinese_sentence(rng, rng.randint(10, 30)) for _ in range(rng.randint(60, 120)))
        elif kind < 0.75:
            block = "\n".join(f"{rng.choice(('-', '*', '1.'))} {_chinese_sentence(rng, rng.randint(3, 10))}"
                              for _ in range(rng.randint(2, 8)))
        elif kind < 0.88:
            body = "\n".join(rng.choice(CODE_LINES) for _ in range(rng.randint(2, 300 if rng.random() < 0.1 else 20)))
            block = f"```{rng.choice(('python', 'bash', ''))}\n{body}\n```"
        elif kind < 0.95:
            rows = [f"| {rng.choice(CHINESE_WORDS)} | {rng.randint(1, 999)} | {_chinese_sentence(rng, 3)} |"
                    for _ in range(rng.randint(2, 10))]
            block = "\n".join(["| 名称 | 数值 | 说明 |", "| --- | --- | --- |", *rows])
        else:
            block = "> " + _chinese_sentence(rng, rng.randint(5, 15)) + "\n> # 引用中的标题\n> " + _chinese_sentence(rng, 5)
        parts.append(block)
        parts.append("")
        size += len(block) + 1
    return "\n".join(parts)


def package_markdown_files() -> list[Path]:
    """The Markdown files the installed packages ship, in a stable order."""
    return sorted(path for path in (REPO / ".venv" / "lib").glob("python*/site-packages/**/*.md") if path.is_file())


def build_corpus(seed: int = 28) -> list[tuple[str, str]]:
    """(name, text) of every corpus file: the packages' Markdown, the sample docs, then the Chinese share."""
    corpus = []
    for path in [*package_markdown_files(), *sorted(SAMPLE_DOCSET.rglob("*.md"))]:
        corpus.append((path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8", errors="replace")))
    english_chars = sum(len(text) for _, text in corpus)
    rng = random.Random(seed)
    generated = 0
    while generated < english_chars:
        text = chinese_document(rng, rng.choice((2_000, 8_000, 30_000, 120_000)))
        corpus.append((f"generated/zh{len(corpus):04d}.md", text))
        generated += len(text)
    return corpus


# --- the measurement (in the child) -------------------------------------------------------


def _best_seconds(work, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def _check(corpus: list[tuple[str, str]], max_tokens: int) -> dict:
    """Lines and headings kept by every file's slices; our headings against markdown-it's."""
    from markdown_it import MarkdownIt

    from tools.docs.markdown_tree import outline_markdown
    from tools.docs.slicing import slice_markdown

    parser = MarkdownIt("commonmark")
    problems: list[str] = []
    headings = slices = 0
    for name, text in corpus:
        outline = outline_markdown(text)
        pieces = slice_markdown(text, name, max_tokens)
        slices += len(pieces)
        position = outline.content_start if pieces else len(outline.lines)
        for piece in pieces:
            if piece.start_line > position or piece.end_line < position:
                problems.append(f"{name}: lines {position}..{piece.start_line} lost")
            position = max(position, piece.end_line)
        if position != len(outline.lines):
            problems.append(f"{name}: slices end at line {position} of {len(outline.lines)}")
        for heading in outline.section_headings():
            headings += 1
            holders = [piece for piece in pieces if piece.start_line <= heading.start_line < piece.end_line]
            if not any(heading.title in piece.heading_path or heading.title in piece.text for piece in holders):
                problems.append(f"{name}: heading {heading.title!r} (line {heading.start_line}) lost")
        if not outline.front_matter:
            tokens = parser.parse(text)
            theirs = [(int(token.tag[1]), token.map[0]) for token in tokens if token.type == "heading_open" and token.level == 0]
            ours = [(heading.level, heading.start_line) for heading in outline.headings()]
            if ours != theirs:
                problems.append(f"{name}: headings differ from markdown-it's")
    return {"headings": headings, "slice_count": slices, "problems": problems}


SHARES = ("all", "English", "Chinese")  # the whole corpus, then its two parts


def _share(name: str) -> str:
    return "Chinese" if name.startswith("generated/") else "English"


def measure(repeat: int, max_tokens: int) -> dict:
    from markdown_it import MarkdownIt

    from tools.docs.markdown_tree import outline_markdown
    from tools.docs.slicing import slice_markdown

    corpus = build_corpus()
    parser = MarkdownIt("commonmark")

    def tree(files):
        for _, text in files:
            outline_markdown(text).root  # noqa: B018 - the tree is built on first use

    def slices(files):
        for name, text in files:
            slice_markdown(text, name, max_tokens)

    def markdown_it(files):
        for _, text in files:
            parser.parse(text)

    files_of = {share: [item for item in corpus if share == "all" or _share(item[0]) == share] for share in SHARES}
    best = {share: {"markdown_it": float("inf"), "tree": float("inf"), "tree_slices": float("inf")} for share in SHARES}
    # Interleaved rounds: a burst of load on the shared machine hits all three alike.
    for _ in range(repeat):
        for share, files in files_of.items():
            for key, work in (("markdown_it", markdown_it), ("tree", tree), ("tree_slices", slices)):
                best[share][key] = min(best[share][key], _best_seconds(lambda: work(files), 1))
    return {
        "files": {share: len(files) for share, files in files_of.items()},
        "bytes": {share: sum(len(text.encode("utf-8")) for _, text in files) for share, files in files_of.items()},
        "lines": sum(text.count("\n") + 1 for _, text in corpus),
        "best": best,
        **_check(corpus, max_tokens),
    }


# --- the parent ---------------------------------------------------------------------------


def run_child(code_root: Path, repeat: int, max_tokens: int) -> dict:
    # The script's own folder comes first on sys.path, then PYTHONPATH: `tools` is code_root's.
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, str(repeat), str(max_tokens)],
        cwd=code_root, env=env, capture_output=True, text=True, check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{code_root}: the measurement failed\n{completed.stderr}")
    return json.loads(completed.stdout)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        print(json.dumps(measure(int(argv[1]), int(argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-root", type=Path, action="append", help="checkout whose tools/ is measured (repeatable)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; each figure is the best round")
    parser.add_argument("--max-tokens", type=int, default=800, help="slice budget")
    args = parser.parse_args(argv)
    roots = [root.resolve() for root in args.code_root or [REPO]]
    rows = [(root, run_child(root.resolve(), args.repeat, args.max_tokens)) for root in roots]
    first = rows[0][1]
    print(f"corpus: {first['files']['all']} files, {first['bytes']['all'] / 1e6:.1f} MB, {first['lines']:,} lines: "
          f"English {first['files']['English']} files / {first['bytes']['English'] / 1e6:.1f} MB (installed packages' "
          f"Markdown, workdir/docs/tidewater), Chinese {first['files']['Chinese']} files / "
          f"{first['bytes']['Chinese'] / 1e6:.1f} MB (generated); CPU seconds, best of {args.repeat}")
    print(f"{'code':<28} {'share':<8} {'markdown-it':>11} {'tree':>8} {'tree+slices':>11} {'md-it/tree':>10} "
          f"{'md-it/slices':>12}")
    for root, row in rows:
        for share in SHARES:
            best = row["best"][share]
            print(f"{str(root)[-28:]:<28} {share:<8} {best['markdown_it']:>10.3f}s {best['tree']:>7.3f}s "
                  f"{best['tree_slices']:>10.3f}s {best['markdown_it'] / best['tree']:>9.1f}x "
                  f"{best['markdown_it'] / best['tree_slices']:>11.1f}x")
        check = "ok" if not row["problems"] else f"{len(row['problems'])} problems: {row['problems'][:3]}"
        print(f"{str(root)[-28:]:<28} {row['slice_count']} slices, {row['headings']} section headings; lines and "
              f"headings kept, headings as markdown-it's: {check}")

if __name__ == "__main__":
    main()
