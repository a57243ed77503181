import os

import pytest

from tools.core.errors import UserError
from tools.core.workdir import SAMPLE_DOCSET, WorkDir, atomic_write_text, validate_name


@pytest.mark.parametrize("bad", ["", "   ", "../x", "a/b", "a\\b", "/etc/passwd", "x\x00y", "..", ".hidden", "a:b", "tab\there"])
def test_names_that_could_leave_their_folder_are_refused(bad):
    with pytest.raises(UserError) as info:
        validate_name(bad, "dataset name")
    assert "dataset name" in str(info.value)


@pytest.mark.parametrize("good", ["demo", "数据集-一", "my data v2.1", "Ünïcode_name"])
def test_ordinary_and_chinese_names_are_allowed(good):
    assert validate_name(good) == good.strip()


def test_child_path_stays_inside_its_area(tmp_path):
    wd = WorkDir(tmp_path).ensure()
    assert wd.child("models", "tiny").parent == wd.models
    with pytest.raises(UserError):
        wd.child("models", "../../etc")


def test_first_run_creates_layout_and_copies_sample_docs(tmp_path):
    wd = WorkDir(tmp_path / "new").ensure()
    for area in ("docs", "models", "dataset", "db", "training"):
        assert (wd.root / area).is_dir()
    sample = wd.docs / SAMPLE_DOCSET
    assert any(p.suffix == ".md" for p in sample.rglob("*")), "sample docs were not copied"
    # Deleting the samples is respected on the next start.
    import shutil

    shutil.rmtree(sample)
    WorkDir(tmp_path / "new").ensure()
    assert not sample.exists()


def test_crash_between_temp_write_and_replace_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "data.json"
    atomic_write_text(target, "old")

    def crash(*args, **kwargs):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"], "temp file left behind"
