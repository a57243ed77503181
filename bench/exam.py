"""Exam scoring benchmark and the tiny-model proof (issue 15).

    python -m bench.exam                 # 200-question multiple-choice exam on the tiny model, CPU
    python -m bench.exam --proof         # also: fine-tune on the facts, exam base vs tuned (all 40, and 10 held out)
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

    from train.exam import (choice_messages, encode_choice, packed_option_logprobs, rowwise_option_logprobs,
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


def _train(root: Path, tiny: Path, facts: list[dict], name: str) -> str:
    import global_var
    from schema.dataset import qa_messages
    from train.config import TrainConfig
    from train.launcher import start_training

    store = global_var.datasets()
    store.create(name)
    store.append_items(name, [(qa_messages(f["question"], f["answer"]), {"origin": "bench"}) for f in facts])
    job = start_training(TrainConfig(model="tiny", dataset=name, max_length=512, **FACTS_TRAINING))
    if not job.wait(1200):
        raise SystemExit("training did not finish in 20 minutes")
    job.raise_if_failed()
    return job.run_name


def proof(tiny: Path, work: Path) -> dict:
    """Exam figures base vs tuned: trained on all 40 facts; and trained on 30, examined on the 10 held out."""
    import global_var
    from schema.exam import Exam
    from train.exam import build_facts_exam, run_exam

    global_var.reset()
    global_var.init(work)
    (global_var.workdir().models / "tiny").symlink_to(tiny, target_is_directory=True)
    facts = load_facts()
    exam = build_facts_exam(facts)
    held = set(range(3, len(facts), 4))  # every 4th fact: 10 held out, 3 of them Chinese
    results = {}
    for label, trained in (("all40", facts), ("held_out", [f for i, f in enumerate(facts) if i not in held])):
        run = _train(work, tiny, trained, f"facts-{label}")
        for listed in (False, True):
            report = run_exam(exam, run, list_options=listed, forgetting=not listed)
            per_q = {variant: {q.id: q.correct for q in report.results[variant].questions} for variant in ("base", "tuned")}

            def acc(variant: str, ids: list[str]) -> str:
                right = sum(per_q[variant][i] for i in ids)
                return f"{right}/{len(ids)} ({right / len(ids):.1%})"

            ids_all = [q.id for q in exam.questions]
            ids_held = [q.id for i, q in enumerate(exam.questions) if i in held]
            ids_seen = [q.id for i, q in enumerate(exam.questions) if i not in held]
            key = f"{label}{'_listed' if listed else ''}"
            results[key] = {"base_all": acc("base", ids_all), "tuned_all": acc("tuned", ids_all)}
            if label == "held_out":
                results[key].update({"base_trained30": acc("base", ids_seen), "tuned_trained30": acc("tuned", ids_seen),
                                     "base_held10": acc("base", ids_held), "tuned_held10": acc("tuned", ids_held)})
            if report.forgetting is not None:
                f = report.forgetting
                results[key]["forgetting"] = {"base_ppl": f.base_perplexity, "tuned_ppl": f.tuned_perplexity, "rise": f.rise,
                                              "by_lang": f.by_lang, "sample": f.sample, "tokens": f.tokens}
    global_var.reset()
    _ = Exam  # the exam format is schema.exam.Exam
    return results


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
            print(json.dumps(proof(model_dir, Path(tmp) / "wd"), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
