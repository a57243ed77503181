"""Exam leakage check: time to check a 200-question exam against training datasets of 5,000 and 50,000
items (with planted exact and reworded copies of exam questions), and how many of the planted ones it
finds. Compared with running the dataset duplicate scan (tools.quality.duplicates.duplicate_findings) over
dataset + exam, which also pairs the dataset's items among themselves.

Run: .venv/bin/python -m bench.exam_leakage [--sizes 5000,50000] [--no-full-scan]
"""

from __future__ import annotations

import argparse
import random
import time

from schema.exam import Question
from tools.generation.exam_leakage import leaked_questions
from tools.quality.duplicates import duplicate_findings

OPENERS = ["What does", "How do I use", "Why would I call", "When should I configure", "Explain", "What happens with"]
NAMES = ["RetryPolicy.max_attempts", "Stage.timeout", "tidewater.run", "Pipeline.sink", "Scheduler.lock", "Tide.window",
         "BatchWriter.flush", "Source.poll_interval", "Cluster.workers", "ErrorCode TW-{n}"]
ENDINGS = ["in tidewater?", "when a stage fails?", "for a nightly report tide?", "with max_workers set to {n}?",
           "if the scheduler lock is held?", "during a dry run?"]


def question_text(rng: random.Random) -> str:
    n = rng.randint(1, 5000)
    return f"{rng.choice(OPENERS)} {rng.choice(NAMES).format(n=n)} {rng.choice(ENDINGS).format(n=n)} (case {rng.randint(1, 10**6)})"


def build(size: int, questions: int = 200, planted: int = 20, seed: int = 0):
    rng = random.Random(seed)
    exam = [Question(id=f"q{i}", kind="short", question=question_text(rng), answer="a") for i in range(questions)]
    items = [{"id": f"i{i}", "messages": [{"role": "user", "content": question_text(rng)}, {"role": "assistant", "content": "a"}]}
             for i in range(size)]
    leaked = rng.sample(range(questions), planted)
    for number, index in enumerate(leaked):
        text = exam[index].question
        copy = text if number % 2 == 0 else text.replace("What does", "What did").replace("How do I", "How can I").rstrip("?") + " ?"
        items[rng.randrange(size)] = {"id": f"leak{number}", "messages": [{"role": "user", "content": copy}]}
    return exam, items, {exam[i].id for i in leaked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000")
    parser.add_argument("--no-full-scan", action="store_true", help="skip the (slow) full duplicate scan for comparison")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        exam, items, planted = build(size)
        present = {i["id"] for i in items if i["id"].startswith("leak")}
        started = time.perf_counter()
        flags = leaked_questions(exam, items)
        seconds = time.perf_counter() - started
        found = len(planted & set(flags))
        line = (f"{len(exam)} questions vs {size:,} items: {seconds:.2f} s; planted leaks kept {len(present)}, "
                f"found {found} of those, {len(set(flags) - planted)} other flags")
        if not args.no_full_scan:
            started = time.perf_counter()
            exam_items = [{"id": "exam:" + q.id, "messages": [{"role": "user", "content": q.question}]} for q in exam]
            duplicate_findings(items + exam_items, {e["id"] for e in exam_items})
            line += f"; full duplicate scan over dataset + exam: {time.perf_counter() - started:.2f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
