"""The one error type that is shown to the user: it names a message key, rendered in the UI language."""

from __future__ import annotations

from tools.core.i18n import t


class Message:
    """A message key with its parameters, rendered once the language is known: a text kept for later, or a
    part of another message (`UserError("error.x", reason=Message("why.y"))`), which is then written in
    that message's language (rendered beforehand, it was in the server's language inside an error in the
    page's)."""

    def __init__(self, key: str, **params):
        self.key = key
        self.params = params

    def render(self, lang: str | None = None) -> str:
        params = {name: value.render(lang) if isinstance(value, (Message, UserError)) else value
                  for name, value in self.params.items()}
        return t(self.key, lang, **params)

    def __str__(self) -> str:
        return self.render()


class UserError(Exception):
    """A problem the user can fix; `str()` gives the message in the current default language."""

    def __init__(self, key: str, **params):
        self.key = key
        self.params = params
        super().__init__(key)

    def render(self, lang: str | None = None) -> str:
        return Message(self.key, **self.params).render(lang)

    def __str__(self) -> str:
        return self.render()
