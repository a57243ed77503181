"""Every user-visible string, in Chinese and English, and the function that picks one."""

from __future__ import annotations

import string

LANGUAGES = ("zh", "en")
_default_language = "zh"


def set_default_language(lang: str) -> None:
    global _default_language
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    _default_language = lang


def default_language() -> str:
    return _default_language


def status_word(status: str, key_prefix: str, lang: str | None = None) -> str:
    """A run's status for a terminal summary: in English the word the run uses ("finished"), which
    scripts read; in Chinese the string `<key_prefix>.<status>` says it in words."""
    return status if (lang or _default_language) == "en" else t(f"{key_prefix}.{status}", lang)


def t(key: str, lang: str | None = None, **params) -> str:
    """The string `key` in `lang` (default: the process default), formatted with `params`."""
    lang = lang or _default_language
    entry = STRINGS.get(key)
    if entry is None:
        # A missing key is a bug; show the key rather than crash the page.
        return key if not params else f"{key} {params}"
    template = entry.get(lang) or entry["en"]
    if not params:
        # Every string is a format string, so literal braces are written doubled even where there is
        # nothing to fill in ("{{document_slice}}" once reached the page as it was written).
        return template.replace("{{", "{").replace("}}", "}") if "{{" in template or "}}" in template else template
    # Nouns passed as {what} ("dataset", "provider name") are translated too.
    what = params.get("what")
    if isinstance(what, str) and f"noun.{what}" in STRINGS:
        params = {**params, "what": STRINGS[f"noun.{what}"].get(lang) or what}
    # So are actions passed as {action} ("load a model"), so no message mixes two languages.
    action = params.get("action")
    if isinstance(action, str) and f"action.{action}" in STRINGS:
        params = {**params, "action": STRINGS[f"action.{action}"].get(lang) or action}
    return template.format(**params)


def placeholders(key: str) -> set[str]:
    """The {names} a string expects; the tests check zh and en agree."""
    found = set()
    for lang in LANGUAGES:
        for _, field, _, _ in string.Formatter().parse(STRINGS[key][lang]):
            if field:
                found.add((lang, field))
    return found


def _load_tables() -> dict[str, dict[str, str]]:
    """Merge every area's table; a key defined twice is a bug caught at import."""
    import importlib
    import pkgutil

    import tools.core.locales as package  # not deferred: this runs once, as this module loads

    merged: dict[str, dict[str, str]] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        table = importlib.import_module(f"tools.core.locales.{module_info.name}").STRINGS
        duplicated = merged.keys() & table.keys()
        if duplicated:
            raise RuntimeError(f"string keys defined twice: {sorted(duplicated)}")
        merged.update(table)
    return merged


STRINGS: dict[str, dict[str, str]] = _load_tables()
