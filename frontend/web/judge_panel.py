"""Dataset management's "Score with an LLM judge" part: the rubric judge of tools.quality.judge over the
chosen dataset, in the background, with live progress, Stop, and the scores shown in the items table and
the score histogram once it ends. What `datasets score` does on the command line.

The work is tools.quality.judge (prepare_judge), started by frontend.jobs (start_judge_job); this module
lays the controls out inside the caller's container and wires them. A judging run is a job in global_var's registry (kind "judge", one
per dataset), so a reloaded page finds it again.
"""

from __future__ import annotations

import gradio as gr

import global_var
from frontend.jobs import find_judge_job, start_judge_job
from frontend.web.common import Localizer, language_default, progress_bar, reloaded_choices, user_errors
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.quality.judge import (BUILTIN_TEMPLATES, DEFAULT_TEMPLATE_FOR, JudgeSettings, judge_progress_line, judge_summary_lines,
                                 prepare_judge, validate_judge_template)
from tools.llm.settings import CONCURRENCY_RANGE, DEFAULT_CONCURRENCY

POLL_SECONDS = 1.0


def template_choices(lang: str) -> list[tuple[str, str]]:
    """The built-in judge templates (the page's language first) and the saved templates that can judge
    (those holding {question} and {answer})."""
    builtins = sorted(BUILTIN_TEMPLATES, key=lambda name: name != DEFAULT_TEMPLATE_FOR.get(lang))
    choices = [(f"{name} — {BUILTIN_TEMPLATES[name][1]}", name) for name in builtins]
    prompts = global_var.prompts()
    for name in prompts.names():
        try:
            validate_judge_template(prompts.get(name).content, name)
        except UserError:
            continue
        choices.append((name, name))
    return choices


def refresh_judge(lang: str, provider, template, chosen: bool = False, dataset=None):
    """Providers and judge templates read again (tab opened, a language switch); a built-in template the
    page picked follows the page's language, one the user chose (`chosen`) stays, and so does the one the
    dataset's running judge uses (a switch never changes it under a run)."""
    choices = template_choices(lang)
    names = [name for _, name in choices]
    job = _job_of(dataset)
    in_use = job.prepared.template.name if job is not None and job.is_running() else None
    template = language_default(template, chosen or template == in_use, DEFAULT_TEMPLATE_FOR, lang)
    value = template if template in names else DEFAULT_TEMPLATE_FOR.get(lang, names[0])
    return reloaded_choices(global_var.providers().names(), provider), gr.update(choices=choices, value=value)


def judge_panel_text(lang: str, job) -> str:
    """Markdown of the dataset's judging run: a bar of the items judged out of those to judge, then the
    progress while it runs, the summary after; "" without one."""
    if job is None:
        return ""
    progress = job.progress()
    done, total = progress.processed_items, progress.pending_items
    if not total and not progress.active:
        done = total = 1  # an ended run with nothing left to judge is complete, not of unknown length
    bar = progress_bar(done, total, t("jtab.progress", lang))
    head = t("jtab.head", lang, status=t(f"jtab.status.{progress.status}", lang), name=progress.dataset,
             model=job.prepared.provider.model_id, template=job.prepared.template.name)
    if progress.active:
        return "\n\n".join([bar, head, judge_progress_line(progress, lang)])
    return "\n\n".join([bar, head, *judge_summary_lines(progress, lang)[1:]])


def _job_of(dataset):
    return find_judge_job(dataset) if dataset else None


@user_errors
def start_scoring(lang: str, dataset, provider, template, concurrency):
    """Start judging the dataset in the background; (progress text, timer on)."""
    if not dataset:
        raise UserError("error.field_required", field=t("datasets.select", lang))
    if not provider:
        raise UserError("error.field_required", field=t("jtab.provider", lang))
    try:
        concurrency = int(concurrency if concurrency not in (None, "") else DEFAULT_CONCURRENCY)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field=t("jtab.concurrency", lang), value=concurrency) from None
    prepared = prepare_judge(global_var.workspace(), dataset, provider, template or None, lang,
                             JudgeSettings(concurrency=concurrency))
    for key, params in prepared.notes:
        gr.Info(t(key, lang, **params))
    job = start_judge_job(prepared)
    return judge_panel_text(lang, job), gr.Timer(active=True)


@user_errors
def stop_scoring(lang: str, dataset):
    job = _job_of(dataset)
    if job is None or not job.is_running():
        return t("jtab.nothing_running", lang)
    job.cancel()
    return judge_panel_text(lang, job)


def poll_scoring(lang: str, dataset, shown):
    """Timer tick: the run's progress; once it ends, `ended` becomes the run's key (the caller then shows the
    new scores) and the timer stops. Returns (text, shown key, timer)."""
    job = _job_of(dataset)
    if job is None:
        return gr.skip(), shown, gr.Timer(active=False)
    text = judge_panel_text(lang, job)
    if job.is_running():
        return text, shown, gr.Timer(active=True)
    return text, f"{dataset}@{job.progress().started_at}", gr.Timer(active=False)


def show_for_dataset(lang: str, dataset):
    """The chosen dataset's judging run, if any (another dataset picked, the page reloaded): (text, timer)."""
    job = _job_of(dataset)
    return judge_panel_text(lang, job), gr.Timer(active=job is not None and job.is_running())


def build_judge_panel(L: Localizer, lang_state: gr.State, dataset: gr.Dropdown, tab: gr.Tab) -> gr.State:
    """Lay the controls out in the caller's container and wire them; returns the gr.State that changes
    when a run ends (chain the refresh of scores on its .change)."""
    lang = L.lang
    L(gr.Markdown, "jtab.title")
    L(gr.Markdown, "jtab.note")
    with gr.Row():
        provider = L(gr.Dropdown, "jtab.provider", choices=[], value=None, interactive=True, scale=2, elem_id="datasets-judge-provider")
        template = L(gr.Dropdown, "jtab.template", choices=template_choices(lang), value=None, interactive=True, scale=3,
                     elem_id="datasets-judge-template")
        concurrency = L(gr.Number, "jtab.concurrency", value=DEFAULT_CONCURRENCY, precision=0, minimum=CONCURRENCY_RANGE[0],
                        maximum=CONCURRENCY_RANGE[1], scale=1,
                        elem_id="datasets-judge-concurrency")
    with gr.Row():
        start = L(gr.Button, "jtab.start", variant="primary", elem_id="datasets-judge-start")
        stop = L(gr.Button, "jtab.stop", variant="stop", elem_id="datasets-judge-stop")
    progress = gr.Markdown(elem_id="datasets-judge-progress")
    ended = gr.State(None)  # key of the last run this page saw end
    timer = gr.Timer(POLL_SECONDS, active=False)

    template_chosen = gr.State(False)  # the user picked the template (else it follows the page's language)
    template.input(lambda: True, None, template_chosen, queue=False, show_progress="hidden")
    tab.select(refresh_judge, [lang_state, provider, template, template_chosen, dataset], [provider, template], show_progress="hidden")
    L.on_switch(refresh_judge, [provider, template, template_chosen, dataset], [provider, template])
    start.click(start_scoring, [lang_state, dataset, provider, template, concurrency], [progress, timer])
    stop.click(stop_scoring, [lang_state, dataset], progress)
    timer.tick(poll_scoring, [lang_state, dataset, ended], [progress, ended, timer], show_progress="hidden")
    dataset.change(show_for_dataset, [lang_state, dataset], [progress, timer], show_progress="hidden")
    L.on_switch(lambda lang, name: judge_panel_text(lang, _job_of(name)), [dataset], [progress])
    return ended
