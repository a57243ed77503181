"""One string table per area of the app; tools.core.i18n merges them. Keys are unique across tables."""


def s(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}
