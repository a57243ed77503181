"""Code answers: the code is found, parsed and read by its syntax tree, and run in a limited subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tools.core.errors import UserError
from tools.evaluation.code import (code_grounding, code_parses, docs_name_index, extract_code, name_known,
                                   names_in_code)
from tools.evaluation.sandbox import SandboxLimits, network_namespace_prefix, package_paths, run_many, run_python

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DOCSET = REPO / "workdir" / "docs" / "tidewater"
FAST = SandboxLimits(timeout_s=10.0)
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the sandbox relies on POSIX process groups and rlimits")

# ---------------------------------------------------------------- finding the code of an answer


def test_fenced_python_blocks_are_the_code():
    answer = ("Here it is:\n```python\nfrom tidewater import Tide\n```\nthen\n```\nprint(Tide)\n```\n"
              "and on the shell\n```bash\ntw run x.py:tide\n```\n")
    assert extract_code(answer) == "from tidewater import Tide\nprint(Tide)"
    assert extract_code("```py\nx = 1\n```") == "x = 1"
    assert extract_code("```python\nimport tidewater\nprint(tidewater.__version__") == (
        "import tidewater\nprint(tidewater.__version__")  # cut off mid-answer: still code, for the parse check
    assert extract_code("```bash\ntw run x.py:tide\n```") is None


def test_plain_code_counts_and_prose_does_not():
    assert extract_code("import tidewater\nprint(tidewater.__version__)\n") == (
        "import tidewater\nprint(tidewater.__version__)")
    assert extract_code("result = tide.run()") == "result = tide.run()"
    for prose in ("TW-1001 means the stage timed out.", "Use Tide.run to run it.", "TW-1001", "Tide", "300",
                  "Use `tide.run()` to run it.", "`RetryPolicy.none()`", "", "The default is 4 workers."):
        assert extract_code(prose) is None, prose


def test_code_parses_names_the_syntax_error():
    assert code_parses("x = 1\nprint(x)\n") == (True, None)
    ok, detail = code_parses("x = 1\ndef broken(:\n    pass\n")
    assert ok is False and detail.startswith("SyntaxError") and "line 2" in detail
    assert code_parses("fn main() {}", "rust") == (None, None)


# ---------------------------------------------------------------- names used inside the code

SNIPPET = """\
import json
import os.path
import tidewater as tw
from pathlib import Path
from tidewater import RetryPolicy as RP, stage

@stage(output_type=list[str])
def fetch(_: None) -> list[str]:
    rows = ["  a "]
    return [row.strip() for row in rows]

tide = tw.Tide("names", stages=[fetch])
result = tide.run(max_workers=2)
print(json.dumps(result.output), os.path.join("a", "b"), Path(".").name, len(rows))
print(RP.none(), tw.Tide("other").add_stage(fetch), tide.explode())
"""


def test_names_in_code_resolves_aliases_and_skips_locals_builtins_and_stdlib():
    assert names_in_code(SNIPPET) == [
        "tidewater", "tidewater.RetryPolicy", "tidewater.RetryPolicy.none", "tidewater.Tide",
        "tidewater.Tide.add_stage", "tidewater.Tide.explode", "tidewater.Tide.run", "tidewater.stage"]


def test_names_in_code_without_imports_and_on_broken_code():
    assert names_in_code("tide = Tide('x')\nTide('y').add_stage(s)\nprint(tide.run().status)") == [
        "Tide", "Tide.add_stage", "Tide.run", "s"]
    assert names_in_code("from tidewater import *\nx = RetryPolicy.none()") == [
        "tidewater", "tidewater.RetryPolicy.none"]
    assert names_in_code("def f(:") == []


def test_code_grounding_against_the_sample_docs():
    texts = [path.read_text(encoding="utf-8") for path in SAMPLE_DOCSET.rglob("*.md")]
    index = docs_name_index(texts)
    assert name_known("tidewater.RetryPolicy.none", index) and name_known("tw.Tide", index)
    share, names, unknown = code_grounding(SNIPPET, index)
    assert unknown == ["tidewater.Tide.explode"]
    assert share == pytest.approx(1 - 1 / len(names))
    assert code_grounding("print(1 + 1)", index) == (None, [], [])


# ---------------------------------------------------------------- the sandbox


@posix_only
def test_a_passing_snippet_prints_and_the_scratch_folder_is_its_home():
    result = run_python("import os\nprint('hello')\nprint(os.getcwd() == os.environ['HOME'] == os.environ['TMPDIR'])",
                        limits=FAST)
    assert result.ok and result.exit_code == 0 and result.error_line() is None
    assert result.stdout.splitlines() == ["hello", "True"]
    assert result.blocked == [] and not result.timed_out


@posix_only
def test_a_failing_snippet_names_its_exception_at_the_answers_line():
    result = run_python("x = 1\ny = 0\nprint(x / y)\n", limits=FAST)
    assert not result.ok and result.exit_code == 1
    assert result.error_line() == "ZeroDivisionError: division by zero"
    assert 'File "<answer>", line 3' in result.stderr and "runner" not in result.stderr


@posix_only
def test_an_endless_loop_is_killed_with_its_process_group():
    result = run_python("import os, sys\nprint(os.getpid(), flush=True)\nwhile True:\n    pass\n",
                        limits=SandboxLimits(timeout_s=1.5))
    assert result.timed_out and not result.ok
    assert "timed out after 1.5 s" == result.error_line()
    with pytest.raises(ProcessLookupError):
        os.kill(int(result.stdout.split()[0]), 0)


@posix_only
def test_a_memory_hog_is_refused_by_the_address_space_limit():
    result = run_python("data = bytearray(2 * 1024 ** 3)\nprint(len(data))", limits=SandboxLimits(memory_mb=256))
    assert not result.ok and "MemoryError" in result.error_line()
    assert result.stdout == ""


@posix_only
def test_network_use_is_blocked_and_reported():
    code = ("import socket\ntry:\n    socket.socket().connect(('1.2.3.4', 80))\n"
            "except PermissionError:\n    print('refused')\n")
    result = run_python(code, limits=FAST)
    assert result.stdout.strip() == "refused"  # the report went to the side channel, not to stdout
    assert result.blocked == ["network: connect 1.2.3.4:80"]
    assert not result.ok and result.error_line() == "blocked: network: connect 1.2.3.4:80"


@pytest.mark.skipif(not network_namespace_prefix(), reason="no network namespace here (no unshare, or not permitted)")
def test_where_unshare_works_the_run_has_its_own_network_namespace():
    result = run_python("import os\nprint(os.readlink('/proc/self/ns/net'))", limits=FAST)
    assert result.ok and result.stdout.strip() != os.readlink("/proc/self/ns/net")


@posix_only
def test_output_past_the_cap_is_cut_and_flagged():
    result = run_python("print('x' * 200000)", limits=SandboxLimits(max_output_bytes=1000))
    assert result.ok and len(result.stdout) == 1000 and result.output_truncated


@posix_only
def test_writes_outside_the_scratch_folder_are_blocked(tmp_path):
    target = tmp_path / "escaped.txt"
    result = run_python(f"open({str(target)!r}, 'w').write('x')", limits=FAST)
    assert not target.exists()
    assert result.blocked == [f"write outside scratch: {target.resolve()}"]
    assert "PermissionError" in result.stderr


@posix_only
def test_writes_inside_the_scratch_folder_are_allowed():
    code = ("from pathlib import Path\nPath('out').mkdir()\nPath('out/a.txt').write_text('kept')\n"
            "print(Path('out/a.txt').read_text())\nPath('out/a.txt').unlink()")
    result = run_python(code, limits=FAST)
    assert result.ok and result.stdout.strip() == "kept"


@posix_only
def test_new_processes_are_blocked():
    result = run_python("import subprocess\nsubprocess.run(['echo', 'escaped'])", limits=FAST)
    assert not result.ok and "escaped" not in result.stdout
    assert result.blocked and result.blocked[0].startswith("subprocess:")


@posix_only
def test_the_sample_library_is_importable_from_the_docsets_package_folder():
    code = """\
import inspect
from tidewater import RetryPolicy, Tide, stage, __version__

@stage(output_type=list[str])
def load(_: None) -> list[str]:
    return ["a", "b"]

@stage(input_type=str, output_type=str, map=True, timeout=30)
def shout(word: str) -> str:
    return word.upper()

result = Tide("shouts", stages=[load, shout]).run()
print(__version__, result.status, result.output)
print(RetryPolicy().delays(), inspect.signature(RetryPolicy).parameters["max_backoff"].default)
"""
    assert package_paths(SAMPLE_DOCSET) == [SAMPLE_DOCSET / ".package"]
    assert package_paths(SAMPLE_DOCSET / "guide") == []
    result = run_python(code, paths=package_paths(SAMPLE_DOCSET), limits=FAST)
    assert result.ok, result.stderr
    assert result.stdout.splitlines() == ["2.3.1 succeeded ['A', 'B']", "[1.5, 3.0] 60.0"]


@posix_only
def test_run_many_keeps_the_order():
    snippets = [f"import time\ntime.sleep({(4 - i) * 0.05})\nprint({i})" for i in range(5)]
    results = run_many(snippets, limits=FAST, workers=3)
    assert [r.stdout.strip() for r in results] == ["0", "1", "2", "3", "4"]
    assert all(r.ok for r in results)


def test_a_bad_interpreter_path_is_a_user_error(tmp_path):
    not_executable = tmp_path / "python"
    not_executable.write_text("")
    for python in (tmp_path / "missing" / "python", not_executable):
        with pytest.raises(UserError) as error:
            run_python("print(1)", python=str(python))
        assert error.value.key == "error.sandbox_python" and str(python) in error.value.render("en")
    with pytest.raises(UserError):
        run_many(["print(1)"], python=str(not_executable))
