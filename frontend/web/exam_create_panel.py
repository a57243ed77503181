"""The "Create an exam" part of the Runs & exams panel: what `python main.py exam create` does, with the same
options, from the page. The creation runs in the background (tools.generation.exams' ExamCreationJob, registered
by frontend.jobs in global_var's registry), so a reloaded page follows it again; its panel shows a progress bar
and the counts.

The work is tools.generation.exams (prepare_exam, the creation job); this module lays the part out and wires it.
"""

from __future__ import annotations

import gradio as gr

import global_var
from frontend.jobs import find_exam_creation_job, running_exam_creations, start_exam_creation_job
from frontend.web.common import PROGRESS_BOX_PX, Localizer, reloaded_choices, user_errors
from frontend.web.generate_tab import failure_lines, run_panel_lines
from schema.exam import DEFAULT_QUESTION_KINDS, QUESTION_KINDS, section_label
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.docs.docsets import slice_docset_cached
from tools.docs.reading import list_docsets
from tools.docs.slicing import DEFAULT_MAX_TOKENS
from tools.generation.exams import ExamSettings, prepare_exam
from tools.llm.runner import UnitProgress
from tools.llm.settings import CONCURRENCY_RANGE

POLL_SECONDS = 2.0
QUESTION_LANGUAGES = ("", "zh", "en")  # "": the docs' own language
MAX_SECTION_CHOICES = 300  # control-section choices offered in the list; any other can be typed


# ---------------------------------------------------------------- choices


def kind_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"exam.kind.{kind}", lang), kind) for kind in QUESTION_KINDS]


def language_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"examcreate.lang.{code or 'docs'}", lang), code) for code in QUESTION_LANGUAGES]


def docset_sections(docset) -> list[str]:
    """What a control section can name in `docset`: each document, then its sections (two heading levels),
    in reading order; [] for no or an unknown doc set."""
    if not docset:
        return []
    folder = global_var.workdir().child("docs", str(docset), what="docs")
    if not folder.is_dir():
        return []
    slices, _ = slice_docset_cached(folder)
    labels: list[str] = []
    for piece in slices:
        for depth in range(0, min(2, len(piece.heading_path)) + 1):
            label = section_label(piece.source, piece.heading_path[:depth])
            if label not in labels:
                labels.append(label)
    return labels[:MAX_SECTION_CHOICES]


def exam_choices(lang: str) -> list[tuple[str, str]]:
    """(label, name) of every exam, its latest version and size in the label (the panel's exam list)."""
    return [(t("runs.exam_choice", lang, name=row["name"], version=row["version"], questions=row["questions"]), row["name"])
            for row in global_var.workspace().exams.summaries()]


def refresh_choices(lang: str, docs, provider):
    """Fresh doc set and provider lists (page load, Refresh, a language switch)."""
    docsets = list_docsets(global_var.workdir().docs)
    return reloaded_choices(docsets, docs), reloaded_choices(global_var.providers().names(), provider)


def sections_for(docset, picked):
    """The control-section list of the picked doc set, the picks that still name something kept."""
    sections = docset_sections(docset)
    return gr.update(choices=sections, value=[value for value in picked or [] if value in sections])


# ---------------------------------------------------------------- the panel's text


def render_creation(lang: str, progress: UnitProgress, exam=None) -> str:
    """The Markdown panel of a creation: a bar and the counts while it runs, the outcome once it ended."""
    lines = run_panel_lines(lang, progress, t("examcreate.title", lang),
                            t("examcreate.panel.head", lang, status=t(f"generate.status.{progress.status}", lang), name=progress.dataset),
                            t("examcreate.panel.questions", lang, questions=progress.items, duplicates=progress.duplicates))
    lines += failure_lines(lang, progress)
    if exam is not None:
        lines += ["", t("examcreate.frozen", lang, name=exam.name, version=exam.version, questions=len(exam.questions))]
    elif progress.status == "cancelled":
        lines += ["", t("examcreate.resume_hint", lang)]
    return "\n".join(lines)


def creation_status(lang: str, name) -> str:
    """The panel of the creation of `name` started in this process (None: the last one), else the idle hint."""
    job = find_exam_creation_job(name or None)
    if job is None:
        return t("examcreate.idle", lang)
    return render_creation(lang, job.progress(), job.exam)


# ---------------------------------------------------------------- handlers


def _number(value, field_key: str, lang: str, cast=int):
    if value in (None, ""):
        raise UserError("error.field_required", field=t(field_key, lang))
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field=t(field_key, lang), value=value) from None


@user_errors
def start_creation(lang: str, name, docs, provider, kinds, per_slice, question_lang, controls, slice_ids, temperature,
                   max_tokens, max_slice_tokens, max_attempts, concurrency, backoff, restart):
    """Check the request as `exam create` does (prepare_exam is the one check) and start it in the background.
    Returns (panel, the exam name the panel follows)."""
    if not str(name or "").strip():
        raise UserError("error.field_required", field=t("examcreate.name", lang))
    if not docs:
        raise UserError("error.field_required", field=t("examcreate.docs", lang))
    if not provider:
        raise UserError("error.field_required", field=t("examcreate.provider", lang))
    if not kinds:
        raise UserError("error.field_required", field=t("examcreate.kinds", lang))
    settings = ExamSettings(per_slice=_number(per_slice, "examcreate.per_slice", lang),
                            concurrency=_number(concurrency, "examcreate.concurrency", lang),
                            temperature=_number(temperature, "examcreate.temperature", lang, float),
                            max_tokens=_number(max_tokens, "examcreate.max_tokens", lang),
                            max_slice_tokens=_number(max_slice_tokens, "examcreate.max_slice_tokens", lang),
                            max_attempts=_number(max_attempts, "examcreate.max_attempts", lang),
                            backoff_base_s=_number(backoff, "examcreate.backoff", lang, float))
    wanted_slices = [part.strip() for part in str(slice_ids or "").replace("\n", ",").split(",") if part.strip()]
    prepared = prepare_exam(global_var.workspace(), str(name).strip(), docs, provider,
                            [kind for kind in QUESTION_KINDS if kind in kinds], settings, wanted_slices or None,
                            question_lang or None, restart=bool(restart), control_sections=list(controls or []))
    job = start_exam_creation_job(prepared)
    for key, params in prepared.notes:
        gr.Info(t(key, lang, **params))
    gr.Info(t("examgen.started", lang, name=prepared.name, units=len(prepared.units), slices=len(prepared.slices),
              kinds=", ".join(t(f"exam.kind.{kind}", lang) for kind in prepared.kinds), language=prepared.lang))
    return render_creation(lang, job.progress()), prepared.name


@user_errors
def stop_creation(lang: str, name):
    job = find_exam_creation_job(name or None)
    if job is None or not job.running:
        return t("examcreate.nothing_running", lang)
    job.cancel()
    return render_creation(lang, job.progress()) + "\n\n" + t("examcreate.stopping", lang)


def exam_list_update(lang: str, selected):
    """The exam dropdown of the panel after a creation: the new version in the list (and picked)."""
    exams = exam_choices(lang)
    names = [value for _, value in exams]
    return gr.update(choices=exams, value=selected if selected in names else None), (t("runs.exam_none", lang) if not exams else "")


def poll(lang: str, watched, exam_value):
    """Timer tick: the creation's panel; when it has ended, the exam list (the new exam picked) and the timer off."""
    job = find_exam_creation_job(watched or None)
    if job is None:
        return t("examcreate.idle", lang), gr.skip(), gr.skip(), gr.Timer(active=False)
    panel = render_creation(lang, job.progress(), job.exam)
    if job.running:
        return panel, gr.skip(), gr.skip(), gr.Timer(active=True)
    exams, note = exam_list_update(lang, job.exam.name if job.exam is not None else exam_value)
    return panel, exams, note, gr.Timer(active=False)


def followed_on_load(lang: str):
    """A (re)loaded page follows a creation still running in this process: (panel, watched name, timer)."""
    running = running_exam_creations()
    if not running:
        return gr.skip(), None, gr.Timer(active=False)
    job = running[-1]
    return render_creation(lang, job.progress()), job.prepared.name, gr.Timer(active=True)


def relabel(lang: str, kinds, question_lang, watched):
    """The kind and language choices and the panel in a new language, the picks kept."""
    return (gr.update(choices=kind_choices(lang), value=list(kinds or [])),
            gr.update(choices=language_choices(lang), value=question_lang or ""),
            creation_status(lang, watched) if watched else t("examcreate.idle", lang))


# ---------------------------------------------------------------- layout


def build_exam_create_panel(L: Localizer, lang_state: gr.State, exam: gr.Dropdown, exam_none: gr.Markdown) -> None:
    """Lay the part out inside the caller's container and wire it; a finished creation refreshes `exam`
    (the Runs & exams panel's exam list) and `exam_none`."""
    lang = L.lang
    defaults = ExamSettings()
    watched = gr.State(None)  # the exam whose creation this page follows
    with L(gr.Accordion, "examcreate.title", open=False, elem_id="exam-create-box"):
        L(gr.Markdown, "examcreate.note")
        with gr.Row():
            name = L(gr.Textbox, "examcreate.name", info="examcreate.name_info", placeholder="mylib-exam", scale=2,
                     elem_id="exam-create-name")
            docs = L(gr.Dropdown, "examcreate.docs", choices=[], value=None, interactive=True, scale=2, elem_id="exam-create-docs")
            provider = L(gr.Dropdown, "examcreate.provider", choices=[], value=None, interactive=True, scale=2,
                         elem_id="exam-create-provider")
        with gr.Row():
            kinds = L(gr.CheckboxGroup, "examcreate.kinds", info="examcreate.kinds_info", choices=kind_choices(lang),
                      value=list(DEFAULT_QUESTION_KINDS), scale=3, elem_id="exam-create-kinds")
            per_slice = L(gr.Number, "examcreate.per_slice", info="examcreate.per_slice_info", value=defaults.per_slice,
                          precision=0, minimum=1, maximum=20, scale=1, elem_id="exam-create-per-slice")
            question_lang = L(gr.Radio, "examcreate.question_lang", choices=language_choices(lang), value="", scale=2,
                              elem_id="exam-create-lang")
        controls = L(gr.Dropdown, "examcreate.controls", info="examcreate.controls_info", choices=[], value=[], multiselect=True,
                     allow_custom_value=True, interactive=True, elem_id="exam-create-controls")
        with L(gr.Accordion, "examcreate.more", open=False, elem_id="exam-create-more"):
            with gr.Row():
                slice_ids = L(gr.Textbox, "examcreate.slices", info="examcreate.slices_info", value="", scale=2,
                              elem_id="exam-create-slices")
                restart = L(gr.Checkbox, "examcreate.restart", info="examcreate.restart_info", value=False, scale=1,
                            elem_id="exam-create-restart")
            with gr.Row():
                temperature = L(gr.Number, "examcreate.temperature", value=defaults.temperature, minimum=0, maximum=2, step=0.1,
                                elem_id="exam-create-temperature")
                max_tokens = L(gr.Number, "examcreate.max_tokens", value=defaults.max_tokens, precision=0, minimum=16,
                               maximum=1_000_000, elem_id="exam-create-max-tokens")
                max_slice_tokens = L(gr.Number, "examcreate.max_slice_tokens", value=DEFAULT_MAX_TOKENS, precision=0, minimum=32,
                                     maximum=1_000_000, elem_id="exam-create-max-slice-tokens")
                max_attempts = L(gr.Number, "examcreate.max_attempts", value=defaults.max_attempts, precision=0, minimum=1,
                                 maximum=20, elem_id="exam-create-max-attempts")
                concurrency = L(gr.Number, "examcreate.concurrency", info="examcreate.concurrency_info",
                                value=defaults.concurrency, precision=0, minimum=CONCURRENCY_RANGE[0], maximum=CONCURRENCY_RANGE[1],
                                elem_id="exam-create-concurrency")
                backoff = L(gr.Number, "examcreate.backoff", value=defaults.backoff_base_s, minimum=0, maximum=600, step=0.5,
                            elem_id="exam-create-backoff")
        with gr.Row():
            create_button = L(gr.Button, "examcreate.create", variant="primary", elem_id="exam-create-start")
            stop_button = L(gr.Button, "examcreate.stop", variant="stop", elem_id="exam-create-stop")
        status = gr.Markdown(t("examcreate.idle", lang), min_height=PROGRESS_BOX_PX, elem_id="exam-create-status")
    timer = gr.Timer(POLL_SECONDS, active=False)

    inputs = [name, docs, provider, kinds, per_slice, question_lang, controls, slice_ids, temperature, max_tokens,
              max_slice_tokens, max_attempts, concurrency, backoff, restart]
    create_button.click(start_creation, [lang_state, *inputs], [status, watched], show_progress_on=status).success(
        lambda: gr.Timer(active=True), None, timer, queue=False, show_progress="hidden")
    stop_button.click(stop_creation, [lang_state, watched], status, show_progress_on=status)
    docs.change(sections_for, [docs, controls], controls, show_progress="hidden")
    timer.tick(poll, [lang_state, watched, exam], [status, exam, exam_none, timer], show_progress="hidden", queue=False)
    L.on_load(refresh_choices, [lang_state, docs, provider], [docs, provider])
    L.on_load(followed_on_load, [lang_state], [status, watched, timer])
    L.on_switch(refresh_choices, [docs, provider], [docs, provider])
    L.on_switch(relabel, [kinds, question_lang, watched], [kinds, question_lang, status])
