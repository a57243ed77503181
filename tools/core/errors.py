"""The one error type that is shown to the user: it names a message key, rendered in the UI language."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; `str()` gives the message in the current default language."""

    def __init__(self, key: str, **params):
        self.key = key
        self.params = params
        super().__init__(key)

    def render(self, lang: str | None = None) -> str:
        from tools.core.i18n import t

        return t(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render()
