"""The page's language switch, in as few events as gradio allows.

A switch is ONE event: the labels outside the tabs and of the tab shown, the status lines about past
actions emptied, and the computed texts of the tab shown (its loader and on_switch handlers: tables with
translated headers, summaries). Another tab is relabelled by the one event that opening it sends anyway.

Why so few: gradio's page finds a component by walking the whole component tree (every label update,
every input read, and every loading-status update of every event), so each event costs the page in
proportion to the tree. One event per tab for the relabelling, plus events for labels and status lines,
kept a 2-core machine's browser busy for seconds after a switch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import gradio as gr

from frontend.web.common import Localizer, label_update

log = logging.getLogger("workbench")


@dataclass
class TabTexts:
    """What one tab re-renders in another language: its localized components' labels and its parts
    (loader and on_switch handlers) as (handler, number of inputs after lang, outputs)."""

    name: str
    labelled: list = field(default_factory=list)
    parts: list[tuple[Callable, int, list]] = field(default_factory=list)
    inputs: list = field(default_factory=list)  # the parts' inputs after lang, in order

    @property
    def outputs(self) -> list:
        return unique([*self.labelled, *(component for _, _, outputs in self.parts for component in outputs)])


def unique(components) -> list:
    return list({id(component): component for component in components}.values())


def merged(first, second):
    """Two updates of one component as one (a label update and a re-rendered value)."""
    if first is None:
        return second
    first = first if isinstance(first, dict) else gr.update(value=first)
    second = second if isinstance(second, dict) else gr.update(value=second)
    return {**first, **second}


class PageLanguage:
    """The switch's and the tab openers' handlers for a page built with `L`; `tabs` are (name, loader,
    on_switch handlers) as the tab builders registered them."""

    def __init__(self, L: Localizer, tabs: list[tuple[str, tuple | None, list]]):
        self.L = L
        self.label_keys = {id(component): keys for component, keys in L.entries}
        self.tabs: dict[str, TabTexts] = {}
        for name, loader, switch_handlers in tabs:
            parts = ([loader] if loader else []) + [(handler, [None, *inputs], outputs) for handler, inputs, outputs in switch_handlers]
            self.tabs[name] = TabTexts(name, L.tab_components(name), [(handler, len(inputs) - 1, outputs) for handler, inputs, outputs in parts],
                                       [component for _, inputs, _ in parts for component in inputs[1:]])
        self.outside = L.tab_components(None)  # always visible: header, first-run panel, the tab buttons
        self.outputs = unique([*L.components(), *L.transients, *(c for tab in self.tabs.values() for c in tab.outputs)])
        self.inputs = [component for tab in self.tabs.values() for component in tab.inputs]

    # ---------------------------------------------------------------- rendering

    def _labels(self, components, lang: str, updates: dict) -> None:
        for component in components:
            updates[id(component)] = merged(updates.get(id(component)), label_update(self.label_keys[id(component)], lang))

    def _computed(self, tab: TabTexts, lang: str, values, updates: dict) -> None:
        offset = 0
        for handler, count, outputs in tab.parts:
            args, offset = values[offset:offset + count], offset + count
            try:
                returned = handler(lang, *args)
            except gr.Error:  # the part's own event shows its message; the switch goes on
                continue
            except Exception:  # noqa: BLE001 - one broken part must not leave the page half in the old language
                log.exception("re-rendering %s of the %s tab in %s failed", getattr(handler, "__name__", handler), tab.name, lang)
                continue
            returned = list(returned) if len(outputs) > 1 else [returned]
            for component, value in zip(outputs, returned):
                updates[id(component)] = merged(updates.get(id(component)), value)

    def _tab(self, name: str, lang: str, labelled: dict, rendered: dict, values, updates: dict) -> tuple[dict, dict]:
        """The tab's labels and computed texts into `updates` where they are in another language."""
        tab = self.tabs.get(name)
        if tab is None:
            return labelled, rendered
        if labelled.get(name) != lang:
            self._labels(tab.labelled, lang, updates)
            labelled = {**labelled, name: lang}
        if rendered.get(name) != lang and tab.parts:
            self._computed(tab, lang, values, updates)
            rendered = {**rendered, name: lang}
        return labelled, rendered

    @staticmethod
    def _in_order(outputs: list, updates: dict) -> list:
        return [updates.get(id(component), gr.skip()) for component in outputs]

    # ---------------------------------------------------------------- handlers

    def switch(self, lang: str, shown_tab: str, labelled: dict, rendered: dict, *values):
        """The switch's one event: [lang, labelled, rendered, *self.outputs]."""
        updates: dict = {}
        self._labels(self.outside, lang, updates)
        for component in self.L.transients:
            updates[id(component)] = merged(updates.get(id(component)), gr.update(value=""))
        offset = 0
        tab_values = {}
        for name, tab in self.tabs.items():
            tab_values[name], offset = values[offset:offset + len(tab.inputs)], offset + len(tab.inputs)
        # After a switch only the tab shown is known to be rendered in the new language: events of the other
        # tabs may have rendered in either language since, so each re-renders when it is next opened.
        shown_rendered = {shown_tab: rendered[shown_tab]} if shown_tab in (rendered or {}) else {}
        labelled, rendered = self._tab(shown_tab, lang, dict(labelled or {}), shown_rendered, tab_values.get(shown_tab, ()), updates)
        return [lang, labelled, rendered, *self._in_order(self.outputs, updates)]

    def opener(self, name: str):
        """The handler of opening tab `name`: [name, labelled, rendered, *its outputs], nothing re-rendered
        when the tab is already in the page's language."""
        outputs = self.tabs[name].outputs

        def open_tab(lang: str, labelled: dict, rendered: dict, *values):
            updates: dict = {}
            labelled, rendered = self._tab(name, lang, dict(labelled or {}), dict(rendered or {}), values, updates)
            return [name, labelled, rendered, *self._in_order(outputs, updates)]

        open_tab.__name__ = f"open_{name}_tab"
        return open_tab
