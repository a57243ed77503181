"""The first-run checklist at the top of the page: the steps from an empty work directory to a first answer of
a tuned model, each ticked off as the work directory shows it done, shown until that first answer.

What counts as done is read from the stores (providers, datasets, models, runs, saved chats), so the list is
right after a restart, in another browser, and when a step was done from the command line.
"""

from __future__ import annotations

import gradio as gr

import global_var
from frontend.web.chat_tab import chat_store
from frontend.web.models_tab import has_models
from tools.core.i18n import t
from train.runs import list_runs

STEPS = ("provider", "dataset", "model", "run", "chat")  # in the order the tabs take them

# Work directories (by root) whose checklist has been completed: it never comes back, and the chats are
# not read again at every tab switch.
_completed: set[str] = set()


def _tuned_chat_exists() -> bool:
    """A saved chat in which a model carrying a run's adapter answered (the tuned side of compare mode too)."""
    for record in chat_store().list():
        answers = record.tuned_messages if record.mode == "compare" else record.messages
        if record.adapter and any(m.role == "assistant" and m.content.strip() for m in answers):
            return True
    return False


def steps_done() -> dict[str, bool]:
    """Which steps the work directory shows done."""
    root = str(global_var.workdir().root)
    if root in _completed:
        return dict.fromkeys(STEPS, True)
    done = {
        "provider": bool(global_var.providers().names()),
        "dataset": any(global_var.datasets().count(name) for name in global_var.datasets().names()),
        "model": has_models(),
        "run": any(run["has_adapter"] for run in list_runs()),
    }
    done["chat"] = done["run"] and _tuned_chat_exists()
    if all(done.values()):
        _completed.add(root)
    return done


def checklist_markdown(lang: str, done: dict[str, bool]) -> str:
    """The list, each step ticked or open, an arrow at the next one to do. Once a step is done, one line:
    the count and the next step (the whole list stood above every tab for the rest of the first hour and
    pushed Fine-tuning's Start button out of a 900-pixel window)."""
    following = next((step for step in STEPS if not done[step]), None)
    if any(done.values()) and following is not None:
        return t("first.compact", lang, done=sum(done.values()), total=len(STEPS), number=STEPS.index(following) + 1,
                 step=t(f"first.step.{following}", lang))
    lines = [t("first.title", lang, done=sum(done.values()), total=len(STEPS))]
    for number, step in enumerate(STEPS, 1):
        text = t(f"first.step.{step}", lang)
        # Marks in the text fonts (an emoji font is not on every machine: a headless Chromium drew boxes).
        if done[step]:
            lines.append(f"{number}. ✓ ~~{text}~~")
        elif step == following:
            lines.append(f"{number}. → {text}")
        else:
            lines.append(f"{number}. ○ {text}")
    return "\n".join(lines)


def checklist_update(lang: str):
    """(panel visibility, the list, the demo-model row's visibility): the panel stays until a tuned model
    has answered in Chat; the demo button and its progress box show while there is no model."""
    done = steps_done()
    return gr.update(visible=not all(done.values())), checklist_markdown(lang, done), gr.update(visible=not done["model"])
