"""Exam scoring benchmark and the tiny-model proof (issues 15 and 23).

    python -m bench.exam                 # 200-question multiple-choice exam on the tiny model, CPU
    python -m bench.exam --proof         # also the honest proof: (1) the tiny model tuned on 30 of 40 facts, examined on
                                         #   all 40 (the 10 held out are the control) in three option forms; (2) the whole
                                         #   loop on the sample docs against tests/fact_server.py, three docs held out as
                                         #   control sections: baselines, 95 % intervals, paired tests, open book
    python -m bench.exam --model PATH    # a real local model instead of the tiny one

Timing: the whole scoring (tokenizing + forward passes + choosing) of 200 questions with 4 options;
then the forward passes alone, three ways over the same questions:
  packed    one row per question: prompt + its 4 options, a 4D mask (what train.exam uses)
  plain     the SAME token rows through a plain causal forward (2D padding mask, no scoring): the
            cost of one ordinary forward pass per question, the floor packing is measured against
  rowwise   one row per option (prompt repeated 4 times), the simple way
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tools.core.workdir import REPO_ROOT

FACTS = REPO_ROOT / "tests" / "data" / "tidewater_facts.jsonl"
# The settings of tests/fixtures_train.py's facts run (~150 steps, the tiny model memorises most facts).
FACTS_TRAINING = dict(max_steps=150, batch_size=8, grad_accum=1, learning_rate=1e-2, lora_r=32, lora_alpha=32,
                      warmup_ratio=0.05, scheduler="linear", save_steps=1000, logging_steps=10, seed=42)


def load_facts() -> list[dict]:
    return [json.loads(line) for line in FACTS.read_text(encoding="utf-8").splitlines() if line.strip()]


def exam_of(questions: int, seeds_from: int = 0):
    """`questions` multiple-choice questions: the 40 facts with different distractors and orders per seed."""
    from schema.exam import Exam
    from train.exam import build_facts_exam

    facts, out, seed = load_facts(), [], seeds_from
    while len(out) < questions:
        for q in build_facts_exam(facts, seed=seed).questions:
            out.append(q.model_copy(update={"id": f"s{seed}-{q.id}"}))
        seed += 1
    return Exam(name="bench", questions=out[:questions])


def _timed(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def bench_scoring(model, tokenizer, questions: int, batch_size: int, repeat: int) -> dict:
    import torch

    from train.exam_scoring import (choice_messages, encode_choice, packed_option_logprobs, rowwise_option_logprobs,
                            score_choice_questions)

    exam = exam_of(questions)
    qs = exam.questions
    pad = tokenizer.pad_token_id
    score_choice_questions(model, tokenizer, qs[:batch_size], batch_size=batch_size)  # warm-up
    total = _timed(lambda: score_choice_questions(model, tokenizer, qs, batch_size=batch_size), repeat)
    encodings = [encode_choice(tokenizer, choice_messages(q), q.options) for q in qs]
    batches = [encodings[i:i + batch_size] for i in range(0, len(encodings), batch_size)]

    def packed() -> None:
        for batch in batches:
            packed_option_logprobs(model, batch, pad)

    def rowwise() -> None:
        for batch in batches:
            rowwise_option_logprobs(model, batch, pad)

    plain_inputs = []
    for batch in batches:
        width = max(e.tokens for e in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, e in enumerate(batch):
            flat = e.prompt + [t for option in e.options for t in option]
            ids[row, :len(flat)] = torch.tensor(flat)
            mask[row, :len(flat)] = 1
        plain_inputs.append((ids, mask))

    def plain() -> None:
        with torch.inference_mode():
            for ids, mask in plain_inputs:
                model(input_ids=ids, attention_mask=mask)

    times = {"packed": _timed(packed, repeat), "plain": _timed(plain, repeat), "rowwise": _timed(rowwise, repeat)}
    tokens = sum(e.tokens for e in encodings)
    option_rows = sum(len(e.options) for e in encodings)
    return {
        "questions": len(qs), "options": option_rows, "batch_size": batch_size, "tokens_packed": tokens,
        "total_s": round(total, 3), "questions_per_s": round(len(qs) / total, 1),
        "packed_s": round(times["packed"], 3), "plain_s": round(times["plain"], 3), "rowwise_s": round(times["rowwise"], 3),
        "packed_passes_per_s": round(len(qs) / times["packed"], 1),
        "plain_passes_per_s": round(len(qs) / times["plain"], 1),
        "rowwise_rows_per_s": round(option_rows / times["rowwise"], 1),
        "rowwise_questions_per_s": round(len(qs) / times["rowwise"], 1),
        "packed_vs_plain": round(times["plain"] / times["packed"], 3),
    }


def _train(facts: list[dict], name: str) -> str:
    import global_var
    from schema.dataset import qa_messages

    store = global_var.datasets()
    store.create(name)
    store.append_items(name, [(qa_messages(f["question"], f["answer"]), {"origin": "bench"}) for f in facts])
    return _train_on(name, FACTS_TRAINING)


def _train_on(dataset: str, settings: dict) -> str:
    from train.config import TrainConfig
    from train.launcher import start_training

    job = start_training(TrainConfig(model="tiny", dataset=dataset, max_length=512, **settings))
    if not job.wait(1200):
        raise SystemExit("training did not finish in 20 minutes")
    job.raise_if_failed()
    return job.run_name


def _group_figures(group) -> dict:
    """A GroupAnalysis as the figures the proof prints."""
    def estimate(model):
        found = group.closed.get(model)
        return None if found is None else {"value": found.value, "ci95": [found.low, found.high]}

    test = group.test
    return {"n": group.n, "chance": group.chance, "majority": group.majority, "question_removed": group.blind,
            "base": estimate("base"), "tuned": estimate("tuned"),
            "open_book": {model: found.value for model, found in group.open_book.items()},
            "gain": None if test is None else {"points": test.gain, "ci95": [test.gain_low, test.gain_high],
                                                "discordant": f"{test.better}:{test.worse}", "p": test.p_value,
                                                "test": test.test, "significant": test.significant}}


def facts_proof(work: Path, tiny: Path) -> dict:
    """Trained on 30 of the 40 facts (every fourth held out as the control), examined on all 40 in three
    option forms; figures on the trained facts and on the held-out ones."""
    import global_var
    from tools.evaluation.analysis import analyse_group
    from train.exam import FACT_OPTION_FORMS, build_facts_exam, run_exam

    global_var.reset()
    global_var.init(work)
    (global_var.workdir().models / "tiny").symlink_to(tiny, target_is_directory=True)
    facts = load_facts()
    held = set(range(3, len(facts), 4))
    run = _train([f for i, f in enumerate(facts) if i not in held], "facts-30")
    results = {}
    for form in FACT_OPTION_FORMS:
        exam = build_facts_exam(facts, name=f"facts-{form}", form=form)
        report = run_exam(exam, run, conditions=("closed", "blind"), forgetting=form == "altered")
        by_key = {key: {s.id: s for s in result.questions} for key, result in report.results.items()}
        results[form] = {
            "trained facts": _group_figures(analyse_group([q for i, q in enumerate(exam.questions) if i not in held], by_key)),
            "held-out facts (control)": _group_figures(analyse_group([q for i, q in enumerate(exam.questions) if i in held], by_key))}
        if report.forgetting is not None:
            f = report.forgetting
            results["forgetting"] = {"rise": f.rise, "band95": [f.rise_low, f.rise_high], "base_ppl": f.base_perplexity,
                                     "tuned_ppl": f.tuned_perplexity, "texts": f.texts, "warning": f.warning}
    global_var.reset()
    return results


def facts_table(results: dict) -> str:
    """The facts proof as one aligned table: a row per option form and split."""
    from frontend.cli.exam_run import format_table

    def percent(value) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    def estimate(found) -> str:
        return "-" if not found else f"{percent(found['value'])} [{percent(found['ci95'][0])}–{percent(found['ci95'][1])}]"

    rows = []
    for form in ("altered", "values", "answers"):
        for split, group in results[form].items():
            blind = group["question_removed"]
            gain = group["gain"]
            rows.append([form, split, str(group["n"]), percent(group["chance"]), percent(group["majority"]),
                         f"{percent(blind.get('base'))}/{percent(blind.get('tuned'))}", estimate(group["base"]),
                         estimate(group["tuned"]), gain["discordant"], "<0.0001" if gain["p"] < 0.0001 else f"{gain['p']:.4f}"])
    return format_table(["options", "facts", "n", "chance", "majority", "no question (base/tuned)", "base [95% CI]",
                         "tuned [95% CI]", "McNemar", "p"], rows)


DOCS_CONTROLS = ("guide/errors.md", "guide/installation.md", "notes/design.txt")
DOCS_TRAINING = dict(max_steps=300, batch_size=8, grad_accum=1, learning_rate=1e-2, lora_r=32, lora_alpha=32,
                     warmup_ratio=0.05, scheduler="linear", save_steps=1000, logging_steps=50, seed=42, eval_ratio=0.0)


def docs_proof(work: Path, tiny: Path, seed: int = 0) -> dict:
    """The whole loop on the sample docs against a test server that knows the truth: an exam with three
    documents held out as control sections, a dataset generated from the others, the tiny model trained on
    it, the exam run under every condition. Returns the report's tables and figures."""
    import global_var
    from frontend.cli.exam_run import format_table
    from tests.fact_server import FactResponder
    from tests.openai_test_server import OpenAITestServer
    from tools.generation.engine import GenerationSettings, prepare_generation, run_generation
    from tools.generation.exams import ExamSettings, prepare_exam, run_exam_creation
    from train.exam import run_exam
    from train.exam_reports import score_rows, split_rows

    global_var.reset()
    global_var.init(work)
    (global_var.workdir().models / "tiny").symlink_to(tiny, target_is_directory=True)
    responder = FactResponder(seed=seed, docs=global_var.workdir().child("docs", "tidewater"))
    with OpenAITestServer(responder=responder) as server:
        provider = global_var.providers().add(name="facts", base_url=server.base_url, model_id="test-model", api_key="k",
                                              max_concurrency=32, timeout_s=30)
        workspace = global_var.workspace()
        prepared = prepare_exam(workspace, "docs", "tidewater", provider, "mc,tf,short,code",
                                ExamSettings(per_slice=3, concurrency=32), lang="en", control_sections=list(DOCS_CONTROLS))
        _, exam = run_exam_creation(prepared)
        generation = prepare_generation(workspace, "tidewater", "docs-qa", provider, "default-en",
                                        {"project_name": "Tidewater"}, GenerationSettings(rounds=3, pairs_per_call=5, concurrency=32))
        run_generation(generation)
        run = _train_on("docs-qa", DOCS_TRAINING)
        report = run_exam(exam, run, judge_provider="facts", seed=seed)
    tables = "\n\n".join(format_table(*rows) for rows in (score_rows(report, "en"), split_rows(report, "en")))
    figures = {kind: {**_group_figures(group), "splits": {name: _group_figures(part) for name, part in group.splits.items()},
                      "guessable": group.guessable, "broken": group.broken, "discriminating": group.discriminating}
               for kind, group in report.analysis.items()}
    f = report.forgetting
    global_var.reset()
    return {"tables": tables, "questions": len(exam.questions), "training_items": report.training.get("items"),
            "controls": list(DOCS_CONTROLS), "analysis": figures,
            "forgetting": None if f is None else {"rise": f.rise, "band95": [f.rise_low, f.rise_high], "warning": f.warning}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local model folder (default: the tiny model, built now)")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="timing runs; the best is reported")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--proof", action="store_true", help="also fine-tune the tiny model and print the exam figures")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-exam-") as tmp:
        if args.model:
            model_dir = Path(args.model)
        else:
            from train.tiny_model import build_tiny_model

            model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0, log=lambda line: None)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir))
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        figures = bench_scoring(model, tokenizer, args.questions, args.batch_size, args.repeat)
        figures.update({"device": "cpu", "threads": torch.get_num_threads(), "attention": model.config._attn_implementation})
        print(json.dumps(figures, indent=2))
        if args.proof and not args.model:
            facts = facts_proof(Path(tmp) / "facts-wd", model_dir)
            print("\n## Facts: trained on 30 of 40, every fourth held out as the control\n")
            print(facts_table(facts))
            print(json.dumps(facts, indent=2, ensure_ascii=False))
            docs = docs_proof(Path(tmp) / "docs-wd", model_dir)
            print(f"\n## Docs: {docs['questions']} questions, {docs['training_items']} training items, "
                  f"control sections {', '.join(docs['controls'])}\n")
            print(docs.pop("tables"))
            print(json.dumps(docs, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
