"""Training benchmark: runs the workbench's own training path (train.launcher.start_training) and
prints the backend, step time, throughput and peak memory.

    python -m bench.training                       # tiny model on CPU (what CI machines can do)
    python -m bench.training --shape 0.5b --4bit   # on a CUDA box: a Qwen2.5-0.5B-shaped model, QLoRA
    python -m bench.training --shape 3b --4bit --batch-size 1 --grad-accum 4 --max-length 2048 --batching packing --data mixed

No model can be downloaded here, so `--shape 0.5b` builds a randomly initialised Qwen2 model with
Qwen2.5-0.5B's layer sizes (and the tiny model's small vocabulary) in a temporary folder: the
figures measure the training path for that size, not the quality of the answers.
`--model PATH` benchmarks a real local model instead.

Side by side (one invocation, the same model and data, runs alternating, best and median of `--runs`):

    python -m bench.training --data mixed --repeat 2 --steps 30 --batch-size 8 --max-length 1024 \
        --batching padded padding_free --runs 3 --threads 1

prints each batching's tokens/s, the ratios to the first batching named, the worker's start-up, and
checks that every run saw the same batches (the same non-padding tokens at every step) and logged
the same losses (the largest difference is printed; over `--loss-tolerance` the exit code is 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import global_var
from tools.core.workdir import REPO_ROOT
from train.config import BATCHING

FACTS = REPO_ROOT / "tests" / "data" / "tidewater_facts.jsonl"
# Qwen2.5's transformer sizes. The tiny tokenizer is used, so token ids stay below 2048, but the
# 3b shape keeps Qwen2.5-3B's 151,936-row (tied) embedding so that peak memory counts it.
SHAPES = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2),
    "3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
               vocab_size=151936),
}


def build_shaped_model(tiny_dir: Path, out_dir: Path, shape: str) -> Path:
    """A random Qwen2 model of `shape` sizes using the tiny model's tokenizer, saved in bf16."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    sizes = {"vocab_size": len(tokenizer), **SHAPES[shape]}
    config = Qwen2Config(max_position_embeddings=32768, tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **sizes)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


@dataclass
class Measured:
    """One training run's figures, read back from its run folder."""

    batching: str
    steps: int
    runtime: float  # the trainer's own runtime (first step to the end), seconds
    wall: float  # from start_training to the end, worker start-up and model load included
    startup: float  # the worker's process start to its first step
    tokens: int  # non-padding tokens seen
    steady_rate: float  # tokens/s after step 3
    cpu_rate: float  # tokens per second of the worker's CPU time over the whole run (nan where not logged)
    cpu_steady_rate: float  # the same after step 3
    losses: list[float]
    step_tokens: list[int]  # non-padding tokens of each logged step: the same batches give the same list
    summary: dict

    @property
    def rate(self) -> float:
        return self.tokens / self.runtime if self.runtime else float("nan")


def measure(config, batching: str) -> Measured:
    """Train `config` with `batching` through the workbench's own launcher (a worker process)."""
    from train.launcher import start_training
    from train.runs import read_run_log

    started = time.monotonic()
    job = start_training(replace(config, batching=batching))
    if not job.wait(3600):
        raise SystemExit("training did not finish within an hour")
    job.raise_if_failed()
    wall = time.monotonic() - started
    records = [r for r in read_run_log(job.run_name) if "loss" in r]
    summary = json.loads((global_var.workdir().training / job.run_name / "metrics.json").read_text())
    # After the first 3 steps (allocator and kernel warm-up): all tokens over all time, each step's
    # time being its token count over its logged rate. (A median of per-step rates would favour
    # padded batching, whose short-item steps are fast and long-item steps slow.)
    warm = [(b["tokens_seen"] - a["tokens_seen"], b["tokens_per_s"]) for a, b in zip(records[2:], records[3:]) if b.get("tokens_per_s")]
    steady_tokens = sum(count for count, _ in warm)
    seen = [r.get("tokens_seen") or 0 for r in records]
    cpu = [r.get("cpu_s") for r in records]
    has_cpu = bool(records) and None not in cpu and cpu[-1] > 0
    return Measured(
        batching=batching, steps=job.step, runtime=summary.get("train_runtime") or float("nan"), wall=wall,
        startup=summary.get("worker_startup_s", float("nan")), tokens=seen[-1] if seen else 0,
        steady_rate=steady_tokens / sum(count / rate for count, rate in warm) if warm else float("nan"),
        cpu_rate=seen[-1] / cpu[-1] if has_cpu else float("nan"),
        cpu_steady_rate=(seen[-1] - seen[2]) / (cpu[-1] - cpu[2]) if has_cpu and len(cpu) > 3 and cpu[-1] > cpu[2] else float("nan"),
        losses=[r["loss"] for r in records], step_tokens=[b - a for a, b in zip([0, *seen], seen)], summary=summary)


def print_single(result: Measured, args, model_source: str) -> None:
    summary = result.summary
    # The run trained in its own worker process: what it ran on comes from its metrics.json.
    print(f"device            {summary.get('device', '?')}")
    print(f"backend           {summary.get('backend', '?')}  (4-bit: {summary.get('load_in_4bit')})")
    print(f"model             {model_source}: {summary.get('total_params', 0):,} parameters, "
          f"{summary.get('trainable_params', 0):,} trainable (LoRA r=16, all linear layers)")
    print(f"steps             {result.steps} × batch {args.batch_size} × accumulation {args.grad_accum}, batching {result.batching}")
    print(f"worker start-up   {result.startup:.1f} s (process start to first step: imports, "
          f"model load, tokenization)")
    print(f"wall (incl. load) {result.wall:.1f} s; trainer runtime {result.runtime:.1f} s; "
          f"{result.runtime / max(result.steps, 1):.3f} s/step")
    print(f"tokens            {result.tokens} non-padding tokens seen; {result.rate:.0f} tokens/s over the whole run, "
          f"{result.steady_rate:.0f} tokens/s after step 3")
    print(f"CPU time          {result.cpu_rate:.0f} tokens per CPU second over the whole run, {result.cpu_steady_rate:.0f} after step 3")
    print(f"loss              {result.losses[0]:.3f} -> {result.losses[-1]:.3f}")
    if "peak_gpu_memory_allocated_gib" in summary:
        print(f"peak GPU memory   {summary['peak_gpu_memory_allocated_gib']:.2f} GiB allocated, "
              f"{summary['peak_gpu_memory_reserved_gib']:.2f} GiB reserved")


def compare_runs(results: list[Measured]) -> tuple[bool, float]:
    """(every run saw the first run's batches, the largest loss difference from the first run)."""
    first = results[0]
    same_batches = all(r.step_tokens == first.step_tokens for r in results)
    worst = max((abs(a - b) for r in results for a, b in zip(r.losses, first.losses)), default=0.0)
    if any(len(r.losses) != len(first.losses) for r in results):
        worst = float("inf")
    return same_batches, worst


def print_side_by_side(results: list[Measured], batchings: list[str], args, model_source: str) -> int:
    summary = results[0].summary
    print(f"device            {summary.get('device', '?')}; backend {summary.get('backend', '?')}; "
          f"torch threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"model             {model_source}: {summary.get('total_params', 0):,} parameters, "
          f"{summary.get('trainable_params', 0):,} trainable")
    print(f"runs              {args.runs} per batching, alternating {' / '.join(batchings)}; "
          f"{results[0].steps} steps × batch {args.batch_size} × accumulation {args.grad_accum}; "
          f"{results[0].tokens} non-padding tokens per run")
    print("wall: non-padding tokens per second of the trainer's runtime; CPU: per second of the worker's CPU "
          "time, which other work on the machine moves less (one thread per worker)")
    print()
    print(f"{'batching':<14} {'wall, whole run':>17} {'wall, after step 3':>19} {'CPU, whole run':>17} "
          f"{'CPU, after step 3':>19} {'start-up s':>11}")
    print(f"{'':<14}" + f" {'best':>8} {'median':>8}" + f" {'best':>9} {'median':>9}" + f" {'best':>8} {'median':>8}"
          + f" {'best':>9} {'median':>9}" + f" {'median':>11}")
    figures = {}
    for batching in batchings:
        mine = [r for r in results if r.batching == batching]
        columns = [[r.rate for r in mine], [r.steady_rate for r in mine], [r.cpu_rate for r in mine],
                   [r.cpu_steady_rate for r in mine]]
        figures[batching] = [figure for column in columns for figure in (max(column), statistics.median(column))]
        row = figures[batching]
        print(f"{batching:<14} {row[0]:>8.0f} {row[1]:>8.0f} {row[2]:>9.0f} {row[3]:>9.0f} {row[4]:>8.0f} {row[5]:>8.0f} "
              f"{row[6]:>9.0f} {row[7]:>9.0f} {statistics.median(r.startup for r in mine):>11.1f}")
        for label, column in zip(("wall, whole run", "wall, after step 3", "CPU, whole run", "CPU, after step 3"), columns):
            print(f"{'':<14} each run, {label}: {', '.join(f'{x:.0f}' for x in column)}")
    base = batchings[0]
    for batching in batchings[1:]:
        r = [a / b for a, b in zip(figures[batching], figures[base])]
        print(f"ratio {batching} / {base} (best, median): wall whole run {r[0]:.2f}× {r[1]:.2f}×; after step 3 "
              f"{r[2]:.2f}× {r[3]:.2f}×; CPU whole run {r[4]:.2f}× {r[5]:.2f}×; after step 3 {r[6]:.2f}× {r[7]:.2f}×")
    same_batches, worst = compare_runs(results)
    print(f"same batches      {'yes' if same_batches else 'NO'} (non-padding tokens of every step, all runs)")
    print(f"same losses       largest difference from the first run {worst:.2e} over {len(results[0].losses)} steps "
          f"(tolerance {args.loss_tolerance:g}): {'yes' if worst <= args.loss_tolerance else 'NO'}")
    return 0 if same_batches and worst <= args.loss_tolerance else 1


def step_in_process(model_dir: Path, items: list[dict], args) -> int:
    """Forward + backward of the same batches in this process (no worker, no optimizer): padded,
    padding-free with the workbench's per-item attention, and padding-free with transformers' own
    SDPA over the whole row (the reference the per-item path must equal). CPU time of this thread,
    one thread, best of `--runs`, the variants alternating; the losses of each batch compared."""
    import random

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling, _patch_chunked_ce_lm_head

    from train.attention import use_item_attention
    from train.data import disable_kv_cache_for_training, tokenize_items

    torch.set_num_threads(args.threads or 1)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    rows, _ = tokenize_items(tokenizer, items, args.max_length)
    shuffle = random.Random(0)
    batches = [shuffle.sample(rows, args.batch_size) for _ in range(args.steps)]

    def model_with_lora(item_attention: bool):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="sdpa")
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
        _patch_chunked_ce_lm_head(model.get_base_model(), chunk_size=256)  # TRL's SFT loss, as in training
        disable_kv_cache_for_training(model)
        if item_attention:
            use_item_attention(model)
        return model

    padded = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    flat = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
    variants = {"padded": (model_with_lora(False), padded), "padding_free": (model_with_lora(True), flat),
                "padding_free, whole-row SDPA": (model_with_lora(False), flat)}
    if args.code_root:
        # Another checkout's per-item attention (the code before a change), under a name of its own.
        import importlib.util

        spec = importlib.util.spec_from_file_location("other_attention", Path(args.code_root) / "train" / "attention.py")
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        other.NAME = "workbench_item_sdpa_other"
        model = model_with_lora(False)
        other.use_item_attention(model)
        variants[f"padding_free ({args.code_root})"] = (model, flat)
    collated = {name: [collator(batch) for batch in batches] for name, (_, collator) in variants.items()}
    times = {name: [] for name in variants}
    losses = {}
    for run in range(args.runs + 1):  # the first round warms up and is not counted
        for name, (model, _) in variants.items():
            started, seen = time.thread_time(), []
            for batch in collated[name]:
                loss = model(**batch).loss
                loss.backward()
                model.zero_grad(set_to_none=True)
                seen.append(loss.item())
            if run:
                times[name].append(time.thread_time() - started)
            losses[name] = seen
    tokens = sum(len(row["input_ids"]) for batch in batches for row in batch)
    positions = sum(len(batch) * max(len(row["input_ids"]) for row in batch) for batch in batches)
    print(f"in process: {args.steps} batches of {args.batch_size}, {tokens} tokens ({1 - tokens / positions:.0%} padding "
          f"when padded), forward + backward, CPU time of one thread, best of {args.runs}")
    base = min(times["padded"])
    for name, spent in times.items():
        print(f"{name:<30} {tokens / min(spent):>8.0f} tokens/s  ({min(spent):.3f} s; runs {', '.join(f'{t:.3f}' for t in spent)})"
              f"  {base / min(spent):.2f}× padded")
    worst = max(abs(a - b) for name in losses for a, b in zip(losses[name], losses["padded"]))
    print(f"same losses       largest difference from padded {worst:.2e} over {len(batches)} batches "
          f"(tolerance {args.loss_tolerance:g}): {'yes' if worst <= args.loss_tolerance else 'NO'}")
    return 0 if worst <= args.loss_tolerance else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local model folder (default: the tiny model, built now)")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="benchmark a random model of this size instead")
    parser.add_argument("--4bit", dest="load_in_4bit", action="store_true", help="QLoRA: load the base in 4 bit (CUDA)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=10, help="copies of the 40 facts in the dataset")
    parser.add_argument("--batching", nargs="+", default=["padding_free"], choices=BATCHING,
                        help="one batching, or several to run side by side (the ratios are to the first named)")
    parser.add_argument("--runs", type=int, default=0,
                        help="runs of each batching, alternating (default: 1 for one batching, 3 side by side)")
    parser.add_argument("--loss-tolerance", type=float, default=1e-3,
                        help="side by side: the largest loss difference between runs that counts as the same")
    parser.add_argument("--threads", type=int, help="torch threads of the workers (sets OMP_NUM_THREADS)")
    parser.add_argument("--in-process", action="store_true",
                        help="time forward + backward of the same batches in this process instead (padded, padding-free, "
                             "padding-free with whole-row SDPA); --steps batches, --runs rounds")
    parser.add_argument("--code-root", help="with --in-process: also time the per-item attention of this checkout "
                                            "(train/attention.py there), e.g. the code before a change")
    parser.add_argument("--data", default="facts", choices=("facts", "mixed"),
                        help="facts: 40 short Q/A pairs; mixed: those plus one item per slice of the sample docs "
                             "(answers of 20 to 800 tokens, the length spread of generated datasets)")
    args = parser.parse_args()
    batchings = list(dict.fromkeys(args.batching))
    args.runs = args.runs or (1 if len(batchings) == 1 else 3)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the workers inherit the environment

    from train.config import TrainConfig
    from train.tiny_model import build_tiny_model

    root = Path(tempfile.mkdtemp(prefix="bench-training-"))
    global_var.init(root / "workdir")
    models = global_var.workdir().models
    if args.model:
        model_source = str(Path(args.model).resolve())
    else:
        started = time.monotonic()
        tiny = build_tiny_model(models / "tiny", log=lambda line: None)
        print(f"tiny model built in {time.monotonic() - started:.1f} s")
        model_source = "tiny"
        if args.shape:
            build_shaped_model(tiny, models / f"shape-{args.shape}", args.shape)
            model_source = f"shape-{args.shape}"

    facts = [json.loads(line) for line in FACTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    store = global_var.datasets()
    store.create("bench")
    pairs = [(f["question"], f["answer"]) for f in facts]
    if args.data == "mixed":
        from tools.docs.docsets import slice_docset
        from tools.core.workdir import SAMPLE_DOCS_SOURCE, SAMPLE_DOCSET

        slices, _ = slice_docset(SAMPLE_DOCS_SOURCE / SAMPLE_DOCSET, max_tokens=400)
        pairs += [(f"Explain {piece.heading_label} in tidewater.", piece.text) for piece in slices]
    store_items = [([{"role": "user", "content": q}, {"role": "assistant", "content": a}], {})
                   for _ in range(args.repeat) for q, a in pairs]
    store.append_items("bench", store_items)

    if args.in_process:
        items = [{"messages": messages} for messages, _ in store_items]
        return step_in_process(Path(args.model).resolve() if args.model else models / model_source, items, args)
    config = TrainConfig(model=model_source, dataset="bench", max_steps=args.steps, batch_size=args.batch_size,
                         grad_accum=args.grad_accum, max_length=args.max_length, logging_steps=1, save_steps=10_000,
                         load_in_4bit=args.load_in_4bit, batching=batchings[0], learning_rate=2e-4)
    results = []
    for index in range(args.runs):
        for batching in batchings:
            result = measure(replace(config, run_name=f"bench-{batching.replace('_', '-')}-{index + 1}"), batching)
            if len(batchings) > 1:
                print(f"run {index + 1} {batching:<13} {result.rate:>7.0f} tokens/s whole run, {result.steady_rate:>7.0f} "
                      f"after step 3; start-up {result.startup:.1f} s", flush=True)
            results.append(result)
    if len(results) == 1:
        print_single(results[0], args, model_source)
        return 0
    if len(batchings) == 1:
        for result in results:
            print_single(result, args, model_source)
        return 0
    return print_side_by_side(results, batchings, args, model_source)


if __name__ == "__main__":
    raise SystemExit(main())
