"""A Number field whose out-of-range message names the field, in the page's language.

gradio checks a Number's bounds before any handler runs and answers in English without the field's
name ("Value 99999999 is greater than maximum value 1048576."), also on the Chinese page.

The class has a module of its own because gradio may write a type stub (number_field.pyi, ignored by
git) next to the module of a component class it sees.
"""

from __future__ import annotations

import re

import gradio as gr

from tools.core.i18n import t

CJK = re.compile(r"[\u3400-\u9fff]")


class Number(gr.Number):
    """gr.Number with the range message of `range_message`. The label says the page's language: a language
    switch relabels this session's copy of the component, and that copy's preprocess runs for the
    session's events."""

    def get_block_name(self) -> str:
        return "number"  # the browser draws it as gradio's own Number

    def preprocess(self, payload):
        low, high = self.minimum, self.maximum
        if payload is not None and ((low is not None and payload < low) or (high is not None and payload > high)):
            label = str(self.label or "")
            raise gr.Error(range_message(label, payload, low, high), title=t("ui.error_title", label_language(label)),
                           print_exception=False)
        return super().preprocess(payload)


def label_language(label: str) -> str:
    return "zh" if CJK.search(label) else "en"


def range_message(label: str, value, low, high) -> str:
    """What a Number outside [low, high] says, in the language its label is written in."""
    lang = label_language(label)
    shown = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if high is None:
        return t("error.number_min", lang, field=label, low=low, value=shown)
    if low is None:
        return t("error.number_max", lang, field=label, high=high, value=shown)
    return t("error.number_range", lang, field=label, low=low, high=high, value=shown)
