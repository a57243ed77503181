"""Dataset generation tab: pick documents, template and provider, start a background run, watch it.

The run itself is tools.generation.engine's (a GenerationJob per dataset, registered by frontend.jobs), so a
reloaded page finds it again: selecting the tab re-attaches the progress panel. The panel is polled by a
timer whose every tick reads the page's language, so a switch during a run is followed at once.
"""

from __future__ import annotations

import statistics

import gradio as gr

import global_var
from db.prompt_store import DEFAULT_TEMPLATE_BY_LANGUAGE
from frontend.jobs import find_generation_job, launch_generation, running_generation_jobs
from frontend.web.common import Localizer, headers, language_default, progress_bar, reloaded_choices, user_errors
from frontend.web.prompts_tab import variables_dict
from tools.core.errors import UserError
from tools.docs.docsets import slice_docset_cached
from tools.docs.reading import list_docsets
from tools.generation.engine import GenerationProgress, GenerationSettings
from tools.llm.runner import UnitProgress, failure_reasons, format_duration
from tools.llm.settings import CONCURRENCY_RANGE, DEFAULT_CONCURRENCY
from tools.core.i18n import t
from tools.docs.slicing import DEFAULT_MAX_TOKENS
from tools.generation.docsync import changes_rows, changes_summary, doc_changes
from tools.generation.tool_calls import MAX_TOOL_CALLS, tool_calls_line
from tools.generation.variants import MAX_QUESTION_VARIANTS, rendering_choices, variant_summary
from tools.quality.checks import check_summary_line, load_result, summarize
from tools.quality.judge import generation_scoring_line

FILE_COLUMNS = ("generate.col.path", "generate.col.kind", "generate.col.size", "generate.col.problem")
SLICE_COLUMNS = ("generate.col.index", "generate.col.source", "generate.col.heading", "generate.col.tokens", "generate.col.lines")
VARIABLE_COLUMNS = ("generate.col.variable", "generate.col.value")
DOC_CHANGE_COLUMNS = ("docsync.col.status", "docsync.col.file", "docsync.col.heading", "docsync.col.items")
POLL_INTERVAL_S = 1.0
SLICE_PREVIEW_CHARS = 80


# ---------------------------------------------------------------- helpers


def _docset_folder(docs: str):
    folder = global_var.workdir().child("docs", docs, what="docs")
    if not folder.is_dir():
        raise UserError("error.not_found", what="docs", name=docs)
    return folder


def _whole_number(lang: str, value, key: str) -> int:
    if value is None or value == "":
        raise UserError("error.field_required", field=t(key, lang))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError("error.not_a_number", field=t(key, lang), value=value) from None
    if number != int(number):
        raise UserError("error.not_a_number", field=t(key, lang), value=value)
    return int(number)


def _slices(lang: str, docs: str, max_slice_tokens):
    budget = _whole_number(lang, max_slice_tokens, "generate.max_slice_tokens")
    if not 32 <= budget <= 1_000_000:
        raise UserError("error.number_range", field=t("generate.max_slice_tokens", lang), low=32, high=1_000_000, value=budget)
    # Cached: clicking a slice row must not read and slice the whole doc set again.
    return slice_docset_cached(_docset_folder(docs), budget)


def generated_dataset_names() -> list[str]:
    """Datasets a run can resume: those created by generation."""
    store = global_var.datasets()
    return [name for name in store.names() if store.load(name).meta.get("generated_from")]


def run_panel_lines(lang: str, progress: UnitProgress, label: str, head: str, made: str) -> list[str]:
    """What every panel of a run over units (generation, exam creation) opens with: a bar of the units this
    run processed out of those it had to do, the head line, the units, what it made (`made`), its failures,
    tokens, cost and time."""
    done, total = progress.processed_units, progress.pending_units
    if not total and not progress.active:
        done = total = 1  # an ended run with nothing left to do is complete, not of unknown length
    lines = [progress_bar(done, total, label) + "\n", head,
             t("generate.panel.units", lang, processed=progress.processed_units, pending=progress.pending_units,
               skipped=progress.skipped_units, total=progress.total_units), made]
    reasons = failure_reasons(progress.failures, lang)
    lines.append(t("generate.panel.failures", lang, failed=progress.failed_units, reasons=f" ({reasons})" if reasons else "",
                   retries=progress.retries))
    lines.append(t("generate.panel.tokens", lang, tokens_in=progress.tokens_in, tokens_out=progress.tokens_out))
    if progress.cost is not None:
        lines.append(t("generate.panel.cost", lang, cost=f"{progress.cost:.4f}"))
    lines.append(t("generate.panel.time", lang, elapsed=format_duration(progress.elapsed_s), eta=format_duration(progress.eta_s)))
    return lines


def failure_lines(lang: str, progress: UnitProgress) -> list[str]:
    """Why a run stopped, and its last failed units."""
    lines = [t("generate.panel.message", lang, message=progress.message)] if progress.message else []
    if progress.recent_failures:
        lines.append(t("generate.panel.recent", lang))
        lines += [f"  - `{f['unit']}` {f['source']}: {f['reason']}: {f['detail']}" for f in progress.recent_failures[-5:]]
    return lines


def render_progress(lang: str, progress: GenerationProgress) -> str:
    """The Markdown progress panel of a live or finished run: the bar, then the counts."""
    lines = run_panel_lines(lang, progress, t("generate.progress", lang),
                            t("generate.panel.head", lang, status=t(f"generate.status.{progress.status}", lang), name=progress.dataset),
                            t("generate.panel.items", lang, items=progress.items, duplicates=progress.duplicates))
    if not progress.json_mode:
        lines.append(t("generate.panel.no_json_mode", lang))
    if progress.scoring:
        lines.append("- " + generation_scoring_line(progress.scoring, lang))
    if progress.variants:
        lines.append(t("variants.panel", lang, summary=variant_summary(progress.variants, lang)))
    if progress.tool_calls:
        lines.append(t("toolgen.panel", lang, line=tool_calls_line(progress.tool_calls, lang)))
    lines += failure_lines(lang, progress)
    if not progress.active and progress.items:
        # An item of the list: a bare line would run on from the one above in the rendered Markdown.
        lines.append("- " + check_summary_line(progress.checks, progress.dataset, lang))
    return "\n".join(lines)


def progress_from_summary(dataset: str, summary: dict) -> GenerationProgress:
    """A finished run's stored summary as a progress object, so one panel renders both."""
    units = summary.get("units") or {}
    tokens = summary.get("tokens") or {}
    duration = float(summary.get("duration_s") or 0)
    return GenerationProgress(
        dataset=dataset, status=summary.get("status") or "finished", total_units=units.get("total", 0),
        skipped_units=units.get("skipped", 0), done_units=units.get("done", 0), failed_units=units.get("failed", 0),
        items=summary.get("items", 0), duplicates=summary.get("duplicates", 0), retries=summary.get("retries", 0),
        failures=dict(summary.get("failures") or {}), recent_failures=list(summary.get("failed_units") or [])[-10:],
        tokens_in=tokens.get("in", 0), tokens_out=tokens.get("out", 0), cost=summary.get("cost"),
        json_mode=summary.get("json_mode", True), started_at=0.0, finished_at=duration, message=summary.get("message") or "",
        variants=summary.get("variants"), tool_calls=summary.get("tool_calls"),
    )


def _saved_checks(store, dataset: str) -> dict | None:
    """The dataset's saved check result as the automatic checks' summary (None when there is none)."""
    result = load_result(store, dataset, allow_stale=True)
    if result is None:
        return None
    summary = summarize(result["findings"])
    return {"items": result["stats"]["items"], "flagged_items": summary["flagged_items"], "by_kind": summary["by_kind"],
            "seconds": round(result.get("seconds") or sum(result.get("timings_s", {}).values()), 2)}


def progress_panel(lang: str, dataset: str | None) -> str:
    """The running job's panel, else the last stored run of the dataset, else a hint."""
    job = find_generation_job(dataset)
    if job is not None:
        return render_progress(lang, job.progress())
    store = global_var.datasets()
    if dataset and store.exists(dataset):
        summary = store.load(dataset).meta.get("generation")
        if summary:
            progress = progress_from_summary(dataset, summary)
            progress.checks = _saved_checks(store, dataset)
            return render_progress(lang, progress)
    return t("generate.no_run", lang)


# ---------------------------------------------------------------- handlers


@user_errors
def refresh_choices(lang: str, docs, template, provider, dataset):
    """Fresh lists for the dropdowns; a page without a dataset picks up a running job's."""
    if not dataset:
        running = running_generation_jobs()
        dataset = running[0].dataset if running else dataset
    return (
        reloaded_choices(list_docsets(global_var.workdir().docs), docs, empty_allowed=False),
        # An empty page starts with the built-in template of its language.
        reloaded_choices(global_var.prompts().names(), template, empty_allowed=False, default=global_var.prompts().default_name(lang)),
        reloaded_choices(global_var.providers().names(), provider, empty_allowed=False),
        gr.update(choices=generated_dataset_names(), value=dataset),
        progress_panel(lang, dataset),
    )


def template_in_use(dataset) -> str | None:
    """The template a run of `dataset` uses: the running job's, else the one its last run used (a resume
    goes on with it); None for a dataset without a run."""
    job = find_generation_job(dataset)
    if job is not None and job.running:
        return job.prepared.template.name
    store = global_var.datasets()
    try:
        if not dataset or not store.exists(str(dataset)):
            return None
        return (store.load(str(dataset)).meta.get("generation") or {}).get("template")
    except UserError:
        return None  # a name that cannot be a dataset's


def follow_language(lang: str, template, chosen: bool, dataset=None):
    """A language switch: the built-in template the page picked becomes the new language's (an English
    page must not generate Chinese data because the Chinese page started it); the user's choice stays,
    and so does the template a run of the page's dataset uses (a switch never changes it under a run)."""
    in_use = template_in_use(dataset)
    value = language_default(template, chosen or template == in_use, DEFAULT_TEMPLATE_BY_LANGUAGE, lang)
    return gr.skip() if value == template or value not in global_var.prompts().names() else gr.update(value=value)


@user_errors
def load_docset(lang: str, docs, max_slice_tokens):
    """Files (with problems) and the slice preview of a document set."""
    if not docs:
        empty = gr.update(value=[], headers=headers(lang, *FILE_COLUMNS))
        return empty, t("generate.no_docs", lang), gr.update(value=[], headers=headers(lang, *SLICE_COLUMNS)), ""
    slices, files = _slices(lang, docs, max_slice_tokens)
    file_rows = [[f.path, f.kind or t("generate.unsupported", lang), f.size, f.error or ""] for f in files]
    slice_rows = [[index, s.source, s.heading_label, s.tokens, f"{s.start_line + 1}-{s.end_line}"] for index, s in enumerate(slices, 1)]
    sizes = [s.tokens for s in slices] or [0]
    usable = sum(1 for f in files if f.error is None and f.kind is not None)
    summary = t("generate.slice_summary", lang, slices=len(slices), usable=usable, files=len(files), min=min(sizes),
                median=int(statistics.median(sizes)), max=max(sizes), total=sum(sizes))
    problems = len(files) - usable
    if problems:
        summary += "  \n" + t("generate.file_problems", lang, count=problems)
    first_text = slices[0].text if slices else ""
    return (gr.update(value=file_rows, headers=headers(lang, *FILE_COLUMNS)), summary,
            gr.update(value=slice_rows, headers=headers(lang, *SLICE_COLUMNS)), first_text)


def clear_docset(lang: str):
    """After load_docset failed: no tables of the doc set shown before, and a summary that says so.

    Without it the page kept the previous doc set's files, slices and summary under the new choice.
    """
    return (gr.update(value=[], headers=headers(lang, *FILE_COLUMNS)), t("docs.docset_not_loaded", lang),
            gr.update(value=[], headers=headers(lang, *SLICE_COLUMNS)), "")


def relabel_docset(lang: str, docs, max_slice_tokens):
    """The doc set's tables and summary in a new language; the slice being read stays."""
    files, summary, slices, _first_text = load_docset(lang, docs, max_slice_tokens)
    return files, summary, slices


@user_errors
def show_slice(lang: str, docs, max_slice_tokens, evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    slices, _ = _slices(lang, docs, max_slice_tokens)
    if not 0 <= row < len(slices):
        return ""
    chosen = slices[row]
    return f"{chosen.source} — {chosen.heading_label}\n\n{chosen.text}" if chosen.heading_label else chosen.text


@user_errors
def template_changed(lang: str, template, variables):
    """One row per variable of the template, keeping values already typed."""
    typed = variables_dict(variables)
    names = global_var.prompts().get(template).variables if template else []
    return gr.update(value=[[name, typed.get(name, "")] for name in names], headers=headers(lang, *VARIABLE_COLUMNS))


@user_errors
def provider_changed(lang: str, provider, concurrency, announce: bool = False):
    """Show the provider's limits and keep the concurrency within its maximum; with `announce` (the user
    picked the provider) say so when it was lowered. Not on a page load or a refresh: a message before the
    user has done anything is a surprise."""
    if not provider:
        return t("generate.no_providers", lang), gr.update()
    record = global_var.providers().get(provider)
    prices = ""
    if record.price_input_per_m is not None or record.price_output_per_m is not None:
        prices = t("generate.provider_prices", lang, input=record.price_input_per_m or 0, output=record.price_output_per_m or 0)
    info = t("generate.provider_info", lang, model=record.model_id, limit=record.max_concurrency, timeout=record.timeout_s, prices=prices)
    try:
        wanted = int(concurrency)
    except (TypeError, ValueError):
        return info, gr.update(value=record.max_concurrency, maximum=record.max_concurrency)
    if wanted <= record.max_concurrency:
        # The value is left out: this answer may arrive after the user typed another (a value read before
        # the typing, sent back, overwrote it: the test's concurrency 1 became 8 on a busy machine).
        return info, gr.update(maximum=record.max_concurrency)
    if announce:
        gr.Info(t("generate.concurrency_clamped", lang, requested=wanted, limit=record.max_concurrency, provider=record.name))
    return info, gr.update(value=record.max_concurrency, maximum=record.max_concurrency)


@user_errors
def start_generation(lang: str, docs, template, variables, provider, rounds, pairs, concurrency, temperature,
                     max_tokens, max_slice_tokens, dataset, update=False, score_with="", question_variants=1, renderings=None,
                     tool_calls=0):
    """Check the inputs and start the background run; the progress panel then follows it. With
    `update`, a dataset generated before first loses the items of changed and gone slices; with
    `score_with` (a provider), the judge scores each unit's new items as they are written; `question_variants`
    and `renderings` ask for more phrasings of each question and renderings of each slice's facts; `tool_calls`
    for conversations calling the functions the docs document."""
    if not docs:
        raise UserError("error.field_required", field=t("generate.docs", lang))
    if not template:
        raise UserError("error.field_required", field=t("generate.template", lang))
    if not provider:
        raise UserError("error.generate_no_provider")
    if not dataset or not str(dataset).strip():
        raise UserError("error.field_required", field=t("generate.dataset", lang))
    settings = GenerationSettings(
        rounds=_whole_number(lang, rounds, "generate.rounds"),
        pairs_per_call=_whole_number(lang, pairs, "generate.pairs"),
        concurrency=_whole_number(lang, concurrency, "generate.concurrency"),
        temperature=0.7 if temperature is None else float(temperature),
        max_tokens=_whole_number(lang, max_tokens, "generate.max_tokens"),
        max_slice_tokens=_whole_number(lang, max_slice_tokens, "generate.max_slice_tokens"),
        question_variants=_whole_number(lang, question_variants, "variants.question_variants"),
        renderings=tuple(renderings or ()),
        tool_calls=_whole_number(lang, 0 if tool_calls in (None, "") else tool_calls, "toolgen.tool_calls"),
    )
    launch = launch_generation(global_var.workspace(), docs, str(dataset), provider, template, variables_dict(variables),
                               settings, score_with=score_with or None, lang=lang, update=bool(update))
    prepared = launch.prepared
    if launch.retired is not None:
        gr.Info(t("docsync.retired", lang, name=prepared.dataset, count=len(launch.retired.retire), version=launch.retired_version["n"])
                if launch.retired_version else t("docsync.nothing_retired", lang))
    job = launch.start()
    for key, params in prepared.notes:
        gr.Info(t(key, lang, **params))
    gr.Info(t("generate.started", lang, name=prepared.dataset, units=len(prepared.units), concurrency=prepared.settings.concurrency))
    return (render_progress(lang, job.progress()), gr.update(choices=generated_dataset_names(), value=prepared.dataset),
            prepared.settings.concurrency)


def score_with_choices(lang: str, current):
    """"No scoring" and the providers, for the score-as-it-goes option."""
    names = global_var.providers().names()
    return gr.update(choices=[(t("generate.no_scoring", lang), "")] + [(name, name) for name in names],
                     value=current if current in names else "")


def relabel_renderings(lang: str, chosen):
    """The renderings' labels in a new language; the ticked ones stay."""
    return gr.update(choices=rendering_choices(lang), value=list(chosen or []))


def show_doc_changes(lang: str, docs, dataset):
    """For a dataset generated from `docs` before: which slices changed since (summary line and the
    table of the changed, new and gone ones); for a new dataset, or one a run writes into now, a hint;
    else nothing."""
    hidden = gr.update(value=[], headers=headers(lang, *DOC_CHANGE_COLUMNS), visible=False)
    if not docs or not dataset:
        return "", hidden
    job = find_generation_job(str(dataset))
    if job is not None and job.running:
        # Slices it has not reached yet are neither new nor left over: read when it ends.
        return t("docsync.while_running", lang, name=dataset), hidden
    workspace = global_var.workspace()
    try:
        if not workspace.datasets.exists(str(dataset)):
            return t("docsync.not_generated_yet", lang, name=dataset), hidden
        changes = doc_changes(workspace, str(dataset))
    except UserError:
        return "", hidden  # not generated, or its doc set is gone: the start says so
    if changes.docs != docs:
        return "", hidden
    rows = changes_rows(changes, lang)
    summary = changes_summary(changes, lang)
    if changes.kept_edited:
        # Listed for a decision (keep, edit or delete them in Dataset management).
        summary += "\n\n" + t("docsync.kept_header", lang) + "\n" + "\n".join(
            f"- `{entry['id']}` {entry['source']} · {entry['heading'] or '-'}: {entry['question'][:120]}" for entry in changes.kept_edited)
    return (summary,
            gr.update(value=rows, headers=headers(lang, *DOC_CHANGE_COLUMNS), visible=bool(rows)))


def poll_progress(lang: str, dataset, ended):
    """Timer tick (and the tab opened, a dataset picked): the dataset's progress panel in the page's language
    as it is now, so a switch during a run is followed at the next tick. The timer runs while the job does;
    when it has ended, `ended` becomes the run's key (the doc changes are then read again). Returns
    (panel, ended, timer)."""
    job = find_generation_job(dataset)
    if job is None:
        try:
            panel = progress_panel(lang, dataset)
        except UserError:
            panel = ""  # a name that cannot be a dataset's: the start says what is wrong with it
        return panel, ended, gr.Timer(active=False)
    running = job.running  # read before the progress: a job seen ended has its final progress
    panel = render_progress(lang, job.progress())
    if running:
        return panel, ended, gr.Timer(active=True)
    return panel, f"{dataset}@{job.progress().started_at}", gr.Timer(active=False)


@user_errors
def cancel_generation(lang: str, dataset):
    job = find_generation_job(dataset)
    if job is None or not job.running:
        raise UserError("generate.no_job", name=dataset or "")
    job.cancel()
    gr.Info(t("generate.cancel_requested", lang, name=dataset))
    return render_progress(lang, job.progress())


# ---------------------------------------------------------------- layout


def build_generate_tab(L: Localizer, lang_state: gr.State, tab: gr.Tab):
    lang = L.lang
    L(gr.Markdown, "generate.title")
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                docs = L(gr.Dropdown, "generate.docs", info="generate.docs_info", choices=[], value=None, interactive=True, elem_id="generate-docs")
                max_slice_tokens = L(gr.Number, "generate.max_slice_tokens", value=DEFAULT_MAX_TOKENS, precision=0, minimum=32, elem_id="generate-max-slice-tokens")
                refresh = L(gr.Button, "common.refresh", size="sm", elem_id="generate-refresh")
            slice_summary = gr.Markdown(elem_id="generate-slice-summary")
            with L(gr.Accordion, "generate.files", open=False, elem_id="generate-files-box"):
                files_table = gr.Dataframe(value=[], headers=headers(lang, *FILE_COLUMNS), interactive=False, wrap=True, elem_id="generate-files")
                L.register(files_table, label="generate.files")
            slices_table = gr.Dataframe(value=[], headers=headers(lang, *SLICE_COLUMNS), interactive=False, wrap=True,
                                        max_height=320, label=t("generate.slices", lang), elem_id="generate-slices",
                                        column_widths=["7%", "27%", "40%", "11%", "15%"])
            L.register(slices_table, label="generate.slices")
            slice_text = L(gr.Textbox, "generate.slice_text", lines=8, max_lines=16, interactive=False, elem_id="generate-slice-text")
        with gr.Column(scale=2):
            template = L(gr.Dropdown, "generate.template", choices=[], value=None, interactive=True, elem_id="generate-template")
            variables = gr.Dataframe(value=[], headers=headers(lang, *VARIABLE_COLUMNS), interactive=True,
                                     column_count=(2, "fixed"), label=t("generate.variables", lang), elem_id="generate-variables")
            L.register(variables, label="generate.variables")
            provider = L(gr.Dropdown, "generate.provider", choices=[], value=None, interactive=True, elem_id="generate-provider")
            provider_info = gr.Markdown(elem_id="generate-provider-info")
            with gr.Row():
                rounds = L(gr.Number, "generate.rounds", value=1, precision=0, minimum=1, maximum=100, elem_id="generate-rounds")
                pairs = L(gr.Number, "generate.pairs", value=3, precision=0, minimum=1, maximum=50, elem_id="generate-pairs")
                concurrency = L(gr.Number, "generate.concurrency", info="generate.concurrency_info", value=DEFAULT_CONCURRENCY, precision=0,
                                minimum=CONCURRENCY_RANGE[0], maximum=CONCURRENCY_RANGE[1], elem_id="generate-concurrency")
            with gr.Row():
                temperature = L(gr.Slider, "generate.temperature", minimum=0, maximum=2, step=0.05, value=0.7, elem_id="generate-temperature")
                max_tokens = L(gr.Number, "generate.max_tokens", value=2048, precision=0, minimum=16, elem_id="generate-max-tokens")
            with gr.Row():
                question_variants = L(gr.Number, "variants.question_variants", info="variants.question_variants_info", value=1,
                                      precision=0, minimum=1, maximum=MAX_QUESTION_VARIANTS, scale=1,
                                      elem_id="generate-question-variants")
                renderings = L(gr.CheckboxGroup, "variants.renderings_label", info="variants.renderings_info",
                               choices=rendering_choices(lang), value=[], scale=2, elem_id="generate-renderings")
            tool_calls = L(gr.Number, "toolgen.tool_calls", info="toolgen.tool_calls_info", value=0, precision=0, minimum=0,
                           maximum=MAX_TOOL_CALLS, elem_id="generate-tool-calls")
            dataset = L(gr.Dropdown, "generate.dataset", info="generate.dataset_info", choices=[], value=None,
                        allow_custom_value=True, interactive=True, elem_id="generate-dataset")
            doc_changes_line = gr.Markdown(elem_id="generate-doc-changes")
            doc_changes_table = gr.Dataframe(value=[], headers=headers(lang, *DOC_CHANGE_COLUMNS), interactive=False, wrap=True,
                                             max_height=240, visible=False, elem_id="generate-doc-changes-table")
            with gr.Row():
                update = L(gr.Checkbox, "docsync.update", info="docsync.update_info", value=False, elem_id="generate-update")
                score_with = L(gr.Dropdown, "generate.score_with", info="generate.score_with_info",
                               choices=[(t("generate.no_scoring", lang), "")], value="", interactive=True, elem_id="generate-score-with")
            with gr.Row():
                start = L(gr.Button, "generate.start", variant="primary", elem_id="generate-start")
                cancel = L(gr.Button, "generate.cancel", variant="stop", elem_id="generate-cancel")
            progress = gr.Markdown(elem_id="generate-progress")
    timer = gr.Timer(POLL_INTERVAL_S, active=False)  # runs while the shown dataset's job does
    ended = gr.State(None)  # key of the last run this page saw end

    choice_inputs = [lang_state, docs, template, provider, dataset]
    choice_outputs = [docs, template, provider, dataset, progress]
    docset_outputs = [files_table, slice_summary, slices_table, slice_text]
    poll_inputs, poll_outputs = [lang_state, dataset, ended], [progress, ended, timer]
    tab.select(refresh_choices, choice_inputs, choice_outputs).then(poll_progress, poll_inputs, poll_outputs, show_progress="hidden")
    # A tick only reads counters: let every page run one at once.
    timer.tick(poll_progress, poll_inputs, poll_outputs, concurrency_limit=None, show_progress="hidden")
    dataset.change(poll_progress, poll_inputs, poll_outputs, show_progress="hidden")
    ended.change(show_doc_changes, [lang_state, docs, dataset], [doc_changes_line, doc_changes_table], show_progress="hidden")
    docset_inputs = [lang_state, docs, max_slice_tokens]
    # A doc set that fails to load leaves none of the previous one's tables under the new choice (a refused
    # budget leaves them alone: they are still the chosen doc set's).
    refresh.click(refresh_choices, choice_inputs, choice_outputs).then(load_docset, docset_inputs, docset_outputs).failure(
        clear_docset, lang_state, docset_outputs, show_progress="hidden")
    docs.change(load_docset, docset_inputs, docset_outputs).failure(clear_docset, lang_state, docset_outputs, show_progress="hidden")
    max_slice_tokens.submit(load_docset, docset_inputs, docset_outputs)
    max_slice_tokens.blur(load_docset, docset_inputs, docset_outputs)
    slices_table.select(show_slice, [lang_state, docs, max_slice_tokens], slice_text)
    template.change(template_changed, [lang_state, template, variables], variables)
    provider.change(provider_changed, [lang_state, provider, concurrency], [provider_info, concurrency])
    provider.input(provider_changed, [lang_state, provider, concurrency, gr.State(True)], [provider_info, concurrency],
                   show_progress="hidden")
    L.on_switch(relabel_docset, [docs, max_slice_tokens], [files_table, slice_summary, slices_table])
    template_chosen = gr.State(False)  # the user picked the template (else it follows the page's language)
    template.input(lambda: True, None, template_chosen, queue=False, show_progress="hidden")
    # A new template value fires template.change, which shows its variables.
    L.on_switch(follow_language, [template, template_chosen, dataset], [template])
    L.on_switch(template_changed, [template, variables], [variables])
    L.on_switch(provider_changed, [provider, concurrency], [provider_info, concurrency])
    for trigger in (docs.change, dataset.change):
        trigger(show_doc_changes, [lang_state, docs, dataset], [doc_changes_line, doc_changes_table], show_progress="hidden")
    L.on_switch(show_doc_changes, [docs, dataset], [doc_changes_line, doc_changes_table])
    tab.select(score_with_choices, [lang_state, score_with], score_with, show_progress="hidden")
    L.on_switch(score_with_choices, [score_with], [score_with])
    L.on_switch(relabel_renderings, [renderings], [renderings])
    start.click(
        start_generation,
        [lang_state, docs, template, variables, provider, rounds, pairs, concurrency, temperature, max_tokens, max_slice_tokens,
         dataset, update, score_with, question_variants, renderings, tool_calls],
        [progress, dataset, concurrency],
    ).success(poll_progress, poll_inputs, poll_outputs, show_progress="hidden")
    cancel.click(cancel_generation, [lang_state, dataset], progress, concurrency_limit=None)
    return refresh_choices, choice_inputs, choice_outputs
