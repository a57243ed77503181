import string

import pytest

from tools.core.errors import UserError
from tools.core.i18n import LANGUAGES, STRINGS, t


def _fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


@pytest.mark.parametrize("key", sorted(STRINGS))
def test_every_string_has_both_languages_with_the_same_placeholders(key):
    entry = STRINGS[key]
    assert set(entry) == set(LANGUAGES), f"{key} lacks a language"
    assert all(entry[lang].strip() for lang in LANGUAGES), f"{key} has an empty text"
    assert _fields(entry["zh"]) == _fields(entry["en"]), f"{key}: zh and en expect different placeholders"


def test_user_error_renders_in_either_language_with_translated_noun():
    error = UserError("error.not_found", what="dataset", name="x")
    assert error.render("en") == "No dataset named “x”."
    assert error.render("zh") == "数据集“x”不存在。"


def test_missing_key_shows_the_key_instead_of_crashing():
    assert t("no.such.key", "en") == "no.such.key"


def test_literal_braces_show_single_with_or_without_fields():
    assert UserError("error.template_missing_slice").render("en").count("{document_slice}") == 1
    assert "{{" not in UserError("error.template_missing_slice").render("zh")
    # Where the text itself speaks of doubled braces, they stay doubled.
    assert "Write literal braces as {{ and }}." in t("error.template_syntax", "en", detail="x")
