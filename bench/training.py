"""Training benchmark: runs the workbench's own training path (train.launcher.start_training) and
prints the backend, step time, throughput and peak memory.

    python -m bench.training                       # tiny model on CPU (what CI machines can do)
    python -m bench.training --shape 0.5b --4bit   # on a CUDA box: a Qwen2.5-0.5B-shaped model, QLoRA
    python -m bench.training --shape 3b --4bit --batch-size 1 --grad-accum 4 --max-length 2048 --batching packing --data mixed

No model can be downloaded here, so `--shape 0.5b` builds a randomly initialised Qwen2 model with
Qwen2.5-0.5B's layer sizes (and the tiny model's small vocabulary) in a temporary folder: the
figures measure the training path for that size, not the quality of the answers.
`--model PATH` benchmarks a real local model instead.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import global_var
from tools.core.workdir import REPO_ROOT

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
    parser.add_argument("--batching", default="padding_free", choices=("padding_free", "packing", "padded"))
    parser.add_argument("--data", default="facts", choices=("facts", "mixed"),
                        help="facts: 40 short Q/A pairs; mixed: those plus one item per slice of the sample docs "
                             "(answers of 20 to 800 tokens, the length spread of generated datasets)")
    args = parser.parse_args()

    from train.config import TrainConfig
    from train.tiny_model import build_tiny_model
    from train.launcher import start_training
    from train.runs import read_run_log

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
    store.append_items("bench", [([{"role": "user", "content": q}, {"role": "assistant", "content": a}], {})
                                 for _ in range(args.repeat) for q, a in pairs])

    config = TrainConfig(model=model_source, dataset="bench", max_steps=args.steps, batch_size=args.batch_size,
                         grad_accum=args.grad_accum, max_length=args.max_length, logging_steps=1, save_steps=10_000,
                         load_in_4bit=args.load_in_4bit, batching=args.batching, learning_rate=2e-4)
    started = time.monotonic()
    job = start_training(config)
    if not job.wait(3600):
        print("training did not finish within an hour")
        return 1
    job.raise_if_failed()
    wall = time.monotonic() - started
    records = [r for r in read_run_log(job.run_name) if "loss" in r]
    # Step time from the log's token counter is too coarse; use the run's own timestamps per step.
    summary = json.loads((global_var.workdir().training / job.run_name / "metrics.json").read_text())
    runtime = summary.get("train_runtime")
    tokens = records[-1]["tokens_seen"] if records else 0
    # After the first 3 steps (allocator and kernel warm-up): all tokens over all time, each step's
    # time being its token count over its logged rate. (A median of per-step rates would favour
    # padded batching, whose short-item steps are fast and long-item steps slow.)
    warm = [(b["tokens_seen"] - a["tokens_seen"], b["tokens_per_s"]) for a, b in zip(records[2:], records[3:]) if b.get("tokens_per_s")]
    steady_tokens = sum(count for count, _ in warm)
    steady_rate = steady_tokens / sum(count / rate for count, rate in warm) if warm else float("nan")
    # The run trained in its own worker process: what it ran on comes from its metrics.json.
    print(f"device            {summary.get('device', '?')}")
    print(f"backend           {summary.get('backend', '?')}  (4-bit: {summary.get('load_in_4bit')})")
    print(f"model             {model_source}: {summary.get('total_params', 0):,} parameters, "
          f"{summary.get('trainable_params', 0):,} trainable (LoRA r=16, all linear layers)")
    print(f"steps             {job.step} × batch {args.batch_size} × accumulation {args.grad_accum}, batching {args.batching}")
    print(f"worker start-up   {summary.get('worker_startup_s', float('nan')):.1f} s (process start to first step: imports, "
          f"model load, tokenization)")
    print(f"wall (incl. load) {wall:.1f} s; trainer runtime {runtime:.1f} s; {runtime / max(job.step, 1):.3f} s/step")
    print(f"tokens            {tokens} non-padding tokens seen; {tokens / runtime:.0f} tokens/s over the whole run, "
          f"{steady_rate:.0f} tokens/s after step 3")
    print(f"loss              {records[0]['loss']:.3f} -> {records[-1]['loss']:.3f}")
    if "peak_gpu_memory_allocated_gib" in summary:
        print(f"peak GPU memory   {summary['peak_gpu_memory_allocated_gib']:.2f} GiB allocated, "
              f"{summary['peak_gpu_memory_reserved_gib']:.2f} GiB reserved")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
