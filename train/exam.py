"""An exam (schema.exam) scored on a run: base and tuned from the same weights (adapter off/on), each
under three conditions — the questions as written (closed book), the questions removed (blind: what the
options alone give away) and the source slice in the prompt (open book: what putting the docs in the
prompt gives without any tuning) — with the forgetting figure, the coverage of every question by the run's
training data, and the analysis a sceptic asks for (tools.evaluation.analysis: baselines, 95 % intervals,
the paired test, the trained/untrained split). How each condition is scored: train.exam_scoring.

Every run of an exam is kept as a new report (train.exam_reports). torch is imported in functions.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import global_var
from schema.exam import CONDITIONS, Exam, ExamReport, ForgettingFigure, Question, QuestionSource, result_key
from schema.run_state import JobState
from tools.core.errors import UserError
from tools.core.i18n import t
from tools.docs.docsets import slice_docset
from tools.docs.reading import load_document_text, scan_docset
from tools.evaluation.analysis import analyse_report
from tools.evaluation.code import docs_name_index
from tools.evaluation.coverage import question_coverage
from tools.evaluation.sandbox import package_paths, resolve_python
from tools.evaluation.values import same_type, value_type
from tools.generation.exam_leakage import leaked_questions
from train.evaluation import EvaluationStopped, _model_for_run, record_job_outcome
from train.exam_reports import save_exam_report
from train.exam_scoring import (
    NORMALISATIONS,
    CodeRunner,
    ScoringSetup,
    model_context,
    question_excerpts,
    score_model,
    supports_packed_scoring,
)
from train.forgetting import DEFAULT_MARGIN, forgetting_figure
from train.inference import GENERATION_QUEUE, adapter_enabled, validate_generation_params
from train.launcher import attach_running_runs
from train.loading import load_model
from train.runs import ADAPTER_DIR, CONFIG_FILE, load_items, read_json, require_run, run_status

DEFAULT_CONDITIONS = CONDITIONS


# ---------------------------------------------------------------- the tiny model's fact exam


_REWORDINGS_EN = (
    (re.compile(r"^What does (.+) mean\?$"), "Explain what {0} means."),
    (re.compile(r"^What is (.+)\?$"), "Do you know what {0} is?"),
    (re.compile(r"^Which (.+)\?$"), "Tell me which {0}."),
    (re.compile(r"^(How|When|Where|In which) (.+)\?$"), "A quick question: {0} {1}?"),
)
_REWORDINGS_ZH = (("是什么意思？", "代表什么？"), ("是多少？", "为多少？"), ("多少", "几"))


def reword_question(question: str) -> str:
    """A deterministic paraphrase, so an exam does not repeat the training question word for word."""
    if re.search(r"[\u4e00-\u9fff]", question):
        for old, new in _REWORDINGS_ZH:
            if old in question:
                return "请问，" + question.replace(old, new, 1)
        return "请问，" + question
    for pattern, template in _REWORDINGS_EN:
        match = pattern.match(question)
        if match:
            return template.format(*match.groups())
    return "A quick question: " + question


def _fact_section(question: str, lang: str) -> list[str]:
    if "TW-" in question:
        topic = "error codes"
    elif "default" in question or "默认" in question:
        topic = "defaults"
    else:
        topic = "general"
    return ["tidewater facts", lang, topic]


def _variants(value: str) -> list[str]:
    """Altered copies of a number or version of the same form ("300 seconds" -> "600 seconds", "2.3.1" -> "2.3.2")."""
    match = re.fullmatch(r"(\d+)((?:\.\d+)*)(.*)", value)
    if not match:
        return []
    head, rest, unit = int(match.group(1)), match.group(2), match.group(3)
    if rest.count(".") >= 2:  # a version: bump each part
        parts = [int(part) for part in (str(head) + rest).split(".")]
        return [".".join(str(p + (1 if i == k else 0)) for i, p in enumerate(parts)) for k in range(len(parts) - 1, -1, -1)]
    # dict.fromkeys: 1 doubled and 1 plus one are both 2 (duplicate options made the exam invalid)
    numbers = dict.fromkeys(number for number in (head * 2, head + 1, max(1, head // 2), head * 10) if number != head)
    return [f"{number}{rest}{unit}" for number in numbers]


FACT_OPTION_FORMS = ("altered", "values", "answers")


def build_facts_exam(facts: list[dict], name: str = "tidewater-facts", options: int = 4, seed: int = 0,
                     form: str = "altered") -> Exam:
    """A multiple-choice exam from {question, answer[, value]} facts, each question reworded. The options:
      altered   the answer sentence with its value swapped for others of the same type ("The default timeout is
                300 seconds." against "... 600 seconds."): only a model that knows the value picks it
      values    the short values alone ("300 seconds", "2.3.1")
      answers   other facts' answer sentences: a trained sentence is recognised among untrained ones without
                the question (the flaw the question-blind baseline exposes)
    Wrong values are of the right one's type, taken from other facts in the same language (altered numbers and
    versions where too few). A fact without a value gets the answers form. The right option's place is seeded."""
    if form not in FACT_OPTION_FORMS:
        raise ValueError(f"form must be one of {FACT_OPTION_FORMS}")

    def lang_of(text: str) -> str:
        return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"

    questions = []
    for index, fact in enumerate(facts):
        lang = lang_of(fact["question"])
        rng = random.Random(f"{seed}:{index}")
        value = fact.get("value") or ""
        same_lang = [f for f in facts if f is not fact and lang_of(f["question"]) == lang]
        if form == "answers" or not value or (form == "altered" and value not in fact["answer"]):
            right, pool = fact["answer"], sorted({f["answer"] for f in same_lang} - {fact["answer"]})
        else:
            others = sorted({f["value"] for f in same_lang if f.get("value")} - {value})
            typed = [other for other in others if same_type(value_type(value), value_type(other))]
            typed += [other for other in _variants(value) if other not in typed and other != value]
            values = typed if len(typed) >= options - 1 else typed + [other for other in others if other not in typed]
            if form == "altered":
                right, pool = fact["answer"], [fact["answer"].replace(value, other, 1) for other in values]
            else:
                right, pool = value, values
        choices = rng.sample(pool, min(options - 1, len(pool)))
        position = rng.randrange(len(choices) + 1)
        choices.insert(position, right)
        questions.append(Question(
            id=f"fact-{index:03d}", kind="mc", question=reword_question(fact["question"]), options=choices, answer=position,
            source=QuestionSource(source_doc="tests/data/tidewater_facts.jsonl", heading_path=_fact_section(fact["question"], lang))))
    return Exam(name=name, version=1, docset="", lang="en", generator={"builder": "train.exam.build_facts_exam", "seed": seed,
                                                                       "form": form},
                questions=questions)


def docset_texts(docset: str) -> list[str]:
    """The texts of a doc set's usable documents (for the grounding index); [] when it has none."""
    if not docset:
        return []
    folder = global_var.workdir().child("docs", docset, what="doc set")
    if not folder.is_dir():
        return []
    texts = []
    for doc in scan_docset(Path(folder)):
        if doc.is_usable:
            try:
                texts.append(load_document_text(Path(folder), doc))
            except (OSError, UserError, ValueError):
                continue
    return texts


def load_exam_file(path: str | Path) -> Exam:
    """An exam from a JSON file, or a UserError that names the file and what is wrong in it."""
    from pydantic import ValidationError

    path = Path(path)
    try:
        return Exam.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("error.exam_file_missing", path=str(path)) from None
    except ValidationError as exc:  # what is wrong and where, not pydantic's headline
        detail = "; ".join(f"{'.'.join(map(str, error['loc'])) or 'exam'}: {error['msg']}" for error in exc.errors()[:3])
        raise UserError("error.exam_file_invalid", path=str(path), detail=detail[:300]) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UserError("error.exam_file_invalid", path=str(path), detail=str(exc).splitlines()[0][:300]) from None


def _load_run_model(run: str, need_adapter: bool):
    """(loaded model, run config): the run's base + adapter (adapter off gives the base), or the bare base."""
    folder = require_run(run)
    config = read_json(folder / CONFIG_FILE)
    if (folder / ADAPTER_DIR / "adapter_config.json").exists():
        return _model_for_run(run, folder, config), config
    if need_adapter:
        raise UserError("error.eval_no_adapter", run=run, state=run_status(run)["state"])
    loaded = global_var.loaded_model()
    if loaded is not None and loaded.model is not None and loaded.adapter_run is None and loaded.source == config["model"]:
        return loaded, config
    return load_model(config["model"], max_seq_length=int(config.get("max_length") or 2048),
                      load_in_4bit=bool(config.get("load_in_4bit")), rope_scaling=config.get("rope_scaling") or None), config


# ---------------------------------------------------------------- what the questions and the run bring


def source_excerpts(exam: Exam, questions: list[Question]) -> dict[str, str]:
    """question id -> the text of its source slice: the excerpt kept in the exam, else (an exam written before
    excerpts were kept) the slice of the doc set as it is now, by id; questions without either are left out."""
    found = {q.id: q.source.excerpt for q in questions if q.source.excerpt}
    missing = [q for q in questions if q.id not in found and q.source.slice_id]
    if missing and exam.docset:
        folder = global_var.workdir().child("docs", exam.docset, what="doc set")
        if folder.is_dir():
            budget = (exam.generator or {}).get("max_slice_tokens")
            slices, _ = slice_docset(folder, budget) if budget else slice_docset(folder)
            texts = {s.slice_id: s.text for s in slices}
            found.update({q.id: texts[q.source.slice_id] for q in missing if q.source.slice_id in texts})
    return found


def run_training_items(run: str) -> tuple[list[dict], dict]:
    """(the items the run trained on, with their provenance; a summary of them). Items saved by an older
    version carry no provenance: it is looked up in the run's dataset by item id where the item still exists."""
    folder = require_run(run)
    config = read_json(folder / CONFIG_FILE)
    items = load_items(folder / "data" / "train.jsonl")
    if items and not any(item.get("provenance") for item in items):
        store, dataset = global_var.datasets(), config.get("dataset")
        if dataset and store.exists(dataset):
            known = store.load(dataset).items
            items = [{**item, "provenance": (known.get(item.get("id")) or {}).get("provenance") or {}} for item in items]
    return items, {"dataset": config.get("dataset"), "dataset_version": config.get("dataset_version"), "items": len(items)}


def code_runner_for(exam: Exam, python: str | None, run_code: bool) -> tuple[CodeRunner | None, str]:
    """(a runner for the exam's code answers or None, why not): code runs when the doc set ships its package
    (<docset>/.package) or the user names an interpreter that has the library installed."""
    if not run_code:
        return None, "off"
    if exam.code_language != "python":
        return None, f"language {exam.code_language}"
    paths = []
    if exam.docset:
        folder = global_var.workdir().child("docs", exam.docset, what="doc set")
        paths = package_paths(Path(folder)) if folder.is_dir() else []
    if not paths and not python:
        return None, "no importable library"
    return CodeRunner(paths=list(paths), python=python), ""


def exam_coverage(questions: list[Question], items: list[dict]) -> dict:
    """question id -> QuestionCoverage against the run's training items (near-duplicate questions by
    character 3-grams, then the cloze and answer comparison of tools.evaluation.coverage)."""
    near = {qid: (leak.item_id, leak.similarity or 1.0) for qid, leak in leaked_questions(questions, items).items()}
    return question_coverage(questions, items, near)


# ---------------------------------------------------------------- exams on a run


def run_exam(exam: Exam, run: str, base_only: bool = False, normalise: str = "mean", batch_size: int = 8,
             judge_provider: str | None = None, max_new_tokens: int = 128, drop_leaked: bool = False,
             forgetting: bool = True, margin: float | None = None, lang: str | None = None, list_options: bool = True,
             conditions: tuple[str, ...] | list[str] = DEFAULT_CONDITIONS, python: str | None = None, run_code: bool = True,
             seed: int = 0, progress: Callable[[dict], None] | None = None,
             stop_event: threading.Event | None = None) -> ExamReport:
    """Score `exam` on the run's base model (adapter off) and, unless `base_only`, tuned (adapter on), under
    each of `conditions`; measure the forgetting figure when both ran; analyse and keep the report."""
    if normalise not in NORMALISATIONS:
        raise UserError("error.exam_run_normalise", value=normalise, choices=", ".join(NORMALISATIONS))
    conditions = validate_conditions(conditions)
    margin = DEFAULT_MARGIN if margin is None else validate_margin(margin)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError("error.exam_run_batch", value=batch_size)
    max_new_tokens = validate_generation_params(max_new_tokens=max_new_tokens).max_new_tokens
    questions = exam.usable_questions(drop_leaked)
    if not questions:
        raise UserError("error.exam_run_empty", exam=exam.name)
    judge = global_var.providers().get(judge_provider) if judge_provider else None
    runner, no_run = code_runner_for(exam, python, run_code) if any(q.kind == "code" for q in questions) else (None, "no code")
    global_var.refuse_while_device_busy("run an exam")
    report_progress = progress or (lambda update: None)
    report_progress({"phase": "load", "done": 0, "total": 1})
    loaded, config = _load_run_model(run, need_adapter=not base_only)
    model, tokenizer = loaded.model, loaded.tokenizer
    has_adapter = hasattr(model, "disable_adapter")
    evidence = source_excerpts(exam, questions)
    context = model_context(model, getattr(loaded, "max_seq_length", None))
    excerpts, cut = question_excerpts(tokenizer, questions, evidence, context, exam.lang, max(max_new_tokens, 256))
    setup = ScoringSetup(lang=exam.lang, normalise=normalise, batch_size=batch_size, list_options=list_options, judge=judge,
                         max_new_tokens=max_new_tokens, excerpts=excerpts, evidence=evidence, code_language=exam.code_language,
                         code_runner=runner, reply_lang=lang,
                         name_index=docs_name_index(docset_texts(exam.docset)) if any(q.kind == "code" for q in questions) else set())
    variants = [("base", False)] + ([] if base_only else [("tuned", True)])
    report = ExamReport(exam=exam.name, exam_version=exam.version, run=run, base_model=str(config.get("model") or ""),
                        scoring={"choices": "option log-likelihood", "normalise": normalise, "list_options": list_options,
                                 "tf": "calibrated", "conditions": list(conditions), "drop_leaked": drop_leaked,
                                 "judge": judge.name if judge is not None else None, "max_new_tokens": max_new_tokens,
                                 "code_run": runner is not None, "code": runner.describe() if runner else {"not_run": no_run},
                                 "packed": None, "context": context, "open_book_cut": cut, "seed": seed,
                                 "adapter": None if base_only else run})

    report.scoring["packed"] = supports_packed_scoring(model)
    was_training = model.training
    model.eval()
    try:
        with GENERATION_QUEUE.slot(stop_event) as held:
            if not held:
                raise EvaluationStopped()
            for variant, enabled in variants:
                with adapter_enabled(model, enabled if has_adapter else None):
                    for condition in conditions:
                        report.results[result_key(variant, condition)] = score_model(
                            model, tokenizer, questions, variant, condition, setup,
                            lambda done, total, v=variant, c=condition: report_progress(
                                {"phase": "questions", "model": v, "condition": c, "done": done, "total": total}),
                            stop_event)
            if forgetting and not base_only and has_adapter:
                report_progress({"phase": "forgetting", "done": 0, "total": 1})
                report.forgetting = ForgettingFigure(**forgetting_figure(model, tokenizer, margin, batch_size=batch_size, seed=seed))
    finally:
        if was_training:
            model.train()
    items, report.training = run_training_items(run)
    report.coverage = exam_coverage(questions, items) if items else {}
    report.training.update({"slices_with_questions": len({q.source.slice_id for q in questions if q.source.slice_id}),
                            "provenance": any(item.get("provenance") for item in items)})
    report.analysis, report.flags = analyse_report(questions, report.results, report.coverage, seed)
    path = save_exam_report(report)
    report_progress({"phase": "done", "done": 1, "total": 1, "path": str(path)})
    return report


def validate_conditions(value) -> tuple[str, ...]:
    """The conditions to score, closed book always first; UserError naming an unknown one."""
    parts = value.split(",") if isinstance(value, str) else list(value or [])
    wanted = {str(part).strip().lower() for part in parts if str(part).strip()}
    unknown = sorted(wanted - set(CONDITIONS))
    if unknown:
        raise UserError("error.exam_run_conditions", value=", ".join(unknown), choices=", ".join(CONDITIONS))
    return tuple(c for c in CONDITIONS if c in wanted | {"closed"})


def validate_margin(value) -> float:
    """The forgetting margin as a fraction 0 < m <= 10 (0.1 = warn when general perplexity rises over 10 %)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError("error.exam_run_margin", value=value) from None
    if isinstance(value, bool) or not 0 < number <= 10:
        raise UserError("error.exam_run_margin", value=value)
    return number


def resolve_exam(reference: str) -> Exam:
    """An exam by path of its JSON file, or by name from the exam store when it has one."""
    path = Path(reference).expanduser()
    if path.suffix.lower() == ".json" or path.is_file():
        return load_exam_file(path)
    return global_var.workspace().exams.load(reference)


# ---------------------------------------------------------------- the background job (the page's exam runs)

EXAM_JOB_KIND = "exam"  # global_var's registry kind: a device job, one model job at a time with training, evaluation, export


@dataclass
class ExamOptions:
    """How an exam is scored: what `exam run` takes on the command line, and the page's exam options."""

    normalise: str = "mean"
    judge_provider: str | None = None
    max_new_tokens: int = 128
    drop_leaked: bool = False
    forgetting: bool = True
    margin: float | None = None
    list_options: bool = True
    conditions: tuple[str, ...] = DEFAULT_CONDITIONS
    python: str | None = None  # an interpreter with the library installed, to run code answers
    run_code: bool = True

    def checked(self) -> "ExamOptions":
        """The options with every value checked (UserError naming the bad one): a job refuses at its start,
        not minutes later in its thread."""
        if self.normalise not in NORMALISATIONS:
            raise UserError("error.exam_run_normalise", value=self.normalise, choices=", ".join(NORMALISATIONS))
        margin = None if self.margin in (None, "") else validate_margin(self.margin)
        max_new_tokens = validate_generation_params(max_new_tokens=self.max_new_tokens).max_new_tokens
        judge = str(self.judge_provider or "").strip() or None
        if judge:
            global_var.providers().get(judge)  # UserError when no provider has that name
        python = str(self.python or "").strip() or None
        if python:
            python = resolve_python(python)
        return ExamOptions(self.normalise, judge, max_new_tokens, bool(self.drop_leaked), bool(self.forgetting), margin,
                           bool(self.list_options), validate_conditions(self.conditions), python, bool(self.run_code))

    def run_kwargs(self) -> dict:
        """The options as run_exam's keyword arguments."""
        return {"normalise": self.normalise, "judge_provider": self.judge_provider, "max_new_tokens": self.max_new_tokens,
                "drop_leaked": self.drop_leaked, "forgetting": self.forgetting, "margin": self.margin,
                "list_options": self.list_options, "conditions": self.conditions, "python": self.python,
                "run_code": self.run_code}


@dataclass
class ExamJob(global_var.StoppableJob):
    """An exam scored on a run in a background thread (registry kind "exam"); the page polls its fields."""

    exam: str
    version: int
    run: str
    base_only: bool
    options: ExamOptions = field(default_factory=ExamOptions)
    state: JobState = JobState.RUNNING  # ends FINISHED, STOPPED or FAILED
    last_update: dict = field(default_factory=dict)
    done: int = 0
    total: int = 0
    error: str | None = None
    exam_report: ExamReport | None = None
    report_path: str = ""
    lang: str | None = None

    def progress_line(self, lang: str | None = None) -> str:
        return t("runs.exam_running", lang, exam=self.exam, run=self.run, line=exam_phase_line(self.last_update, lang))


def exam_phase_line(update: dict | None, lang: str | None = None) -> str:
    """One line for the latest progress update of `run_exam`."""
    phase = (update or {}).get("phase")
    if phase == "questions":
        return t("exam.run.phase.questions", lang, model=t(f"exam.run.{update.get('model', 'tuned')}", lang),
                 condition=t(f"exam.condition.{update.get('condition', 'closed')}", lang),
                 done=update["done"], total=update["total"])
    if phase == "forgetting":
        return t("exam.run.phase.forgetting", lang)
    if phase == "done":
        return t("runs.exam_phase_done", lang)
    return t("exam.run.phase.load", lang)


def current_exam_job() -> ExamJob | None:
    """The exam job started last in this process when it is the latest model-scoring job, else None."""
    job = global_var.find_job(EXAM_JOB_KIND)
    return job if isinstance(job, ExamJob) else None


def start_exam_job(exam_name: str, run: str, base_only: bool = False, lang: str | None = None,
                   options: ExamOptions | None = None) -> ExamJob:
    """Check the inputs now (errors reach the caller), then score the exam on the run in a background thread."""
    options = (options or ExamOptions()).checked()
    exam = resolve_exam(exam_name)
    folder = require_run(run)
    if not base_only and not (folder / ADAPTER_DIR / "adapter_config.json").exists():
        raise UserError("error.eval_no_adapter", run=run, state=run_status(run)["state"])
    if not exam.usable_questions(options.drop_leaked):
        raise UserError("error.exam_run_empty", exam=exam.name)
    attach_running_runs()  # a training started from a terminal or before a restart blocks the exam too
    job = ExamJob(exam=exam.name, version=exam.version, run=run, base_only=bool(base_only), options=options, lang=lang)

    def update(progress: dict) -> None:
        job.last_update, job.done, job.total = progress, progress.get("done", 0), progress.get("total", 0)

    def score() -> None:
        job.exam_report = run_exam(exam, run, base_only=bool(base_only), lang=lang, progress=update, stop_event=job.stop_event,
                                   **options.run_kwargs())
        job.report_path = str(job.last_update.get("path") or "")

    def work() -> None:
        record_job_outcome(job, score, JobState.FINISHED, f"exam {exam.name} on {run}", lang)

    # The thread is known before the job is registered: run_exam lets its own job's thread load the model.
    job.thread = threading.Thread(target=work, name=f"exam-{exam.name}-{run}", daemon=True)
    global_var.start_job(EXAM_JOB_KIND, run, job)
    job.thread.start()
    return job
