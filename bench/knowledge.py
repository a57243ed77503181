"""Knowledge that generalises? Four recipes on the sample docs, judged by one exam with control sections.

    python -m bench.knowledge                      # the tiny model, CPU (about 15 minutes on 2 cores)
    python -m bench.knowledge --steps 600          # longer training per recipe
    python -m bench.knowledge --shape 0.5b         # a random Qwen2.5-0.5B-shaped model (on a lent GPU)
    python -m bench.knowledge --model PATH         # a real local model

The setup (the whole loop of the workbench, against tests/fact_server.py, a test server that extracts the facts
of each slice and knows the truth behind every question it writes):
  * an exam of multiple-choice, true/false and short questions from the sample doc set `tidewater`, three
    documents held out as control sections (DOCS_CONTROLS): no recipe trains on them;
  * recipes, each a run (or two) of the same length on the same base model:
      sft            question/answer pairs generated from the other sections
      sft+variants   the same pairs plus 3 phrasings of each question and prose/table renderings of each slice
      cpt+sft        the pairs with the docs' own text mixed in (doc_mix 0.3: loss on every token of the slices)
      sft+dpo        the sft run, then DPO on pairs built from its own wrong answers to the training questions
  * each run examined (closed book, base and tuned, the paired test, intervals), split into the questions on
    trained sections (the exam's questions are worded unlike the training pairs: paraphrased) and on the
    control sections (untrained: a recipe that helps there has made knowledge transfer, or the exam is leaky);
  * the forgetting figure (general-text perplexity rise, with its band) per run;
  * the share of the model's answers to the training questions that name identifiers the docs never mention,
    before DPO (the sft run) and after (the sft+dpo run).

Prints one table and the figures as JSON. What a model this small can and cannot show is the README's to say.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.exam import DOCS_CONTROLS, _group_figures

RECIPES = ("sft", "sft+variants", "cpt+sft", "sft+dpo")
TRAINING = dict(batch_size=8, grad_accum=1, learning_rate=1e-2, lora_r=32, lora_alpha=32, warmup_ratio=0.05,
                scheduler="linear", save_steps=100000, logging_steps=50, seed=42, eval_ratio=0.0, max_length=512)


def _train(model: str, steps: int, **settings) -> str:
    from train.config import TrainConfig
    from train.launcher import start_training

    job = start_training(TrainConfig(model=model, max_steps=steps, **{**TRAINING, **settings}))
    if not job.wait(3600):
        raise SystemExit("training did not finish in an hour")
    job.raise_if_failed()
    return job.run_name


def invented_share(run: str, items: list[dict], context) -> dict:
    """Share of the run's tuned greedy answers to `items`' questions that name identifiers the docs never mention."""
    import global_var
    from tools.quality.names import invented_name_findings
    from train.evaluation import greedy_answers, split_item
    from train.loading import load_model
    from train.runs import ADAPTER_DIR, CONFIG_FILE, read_json, require_run

    folder = require_run(run)
    config = read_json(folder / CONFIG_FILE)
    loaded = load_model(config["model"], max_seq_length=512, adapter_dir=folder / ADAPTER_DIR)
    answers = greedy_answers(loaded.model, loaded.tokenizer, [split_item(item)[0] for item in items], 64)
    flagged = sum(1 for answer in answers if invented_name_findings(
        {"id": "a", "messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": answer}]}, context))
    global_var.reset_runtime()
    return {"answers": len(answers), "with_invented_names": flagged, "share": flagged / len(answers) if answers else None}


def _figures(report) -> dict:
    analysis = report.analysis["overall"]
    splits = analysis.splits
    out = {"overall": _group_figures(analysis)}
    for name, label in (("slice:trained", "trained sections"), ("slice:untrained", "control sections")):
        if name in splits:
            out[label] = _group_figures(splits[name])
    f = report.forgetting
    out["forgetting"] = None if f is None else {"rise": f.rise, "band95": [f.rise_low, f.rise_high], "warning": f.warning}
    return out


def run_bench(work: Path, model_dir: Path, steps: int, seed: int = 0, recipes=RECIPES) -> dict:
    import global_var
    from tests.fact_server import FactResponder
    from tests.openai_test_server import OpenAITestServer
    from tools.generation.engine import GenerationSettings, prepare_generation, run_generation
    from tools.generation.exams import ExamSettings, prepare_exam, run_exam_creation
    from tools.quality.checks import doc_context_for
    from train.exam import run_exam
    from train.pairs import PairsRequest, build_pairs

    global_var.reset()
    global_var.init(work)
    (global_var.workdir().models / "base").symlink_to(model_dir, target_is_directory=True)
    responder = FactResponder(seed=seed, docs=global_var.workdir().child("docs", "tidewater"))
    results: dict = {"steps": steps, "recipes": {}}
    started = time.monotonic()
    with OpenAITestServer(responder=responder) as server:
        provider = global_var.providers().add(name="facts", base_url=server.base_url, model_id="test-model", api_key="k",
                                              max_concurrency=32, timeout_s=30)
        workspace = global_var.workspace()
        prepared = prepare_exam(workspace, "docs", "tidewater", provider, "mc,tf,short",
                                ExamSettings(per_slice=3, concurrency=32), lang="en", control_sections=list(DOCS_CONTROLS))
        _, exam = run_exam_creation(prepared)
        variables = {"project_name": "Tidewater"}
        run_generation(prepare_generation(workspace, "tidewater", "docs-qa", provider, "default-en", variables,
                                          GenerationSettings(rounds=3, pairs_per_call=5, concurrency=32)))
        datasets = {"docs-qa": len(global_var.datasets().items("docs-qa"))}
        if "sft+variants" in recipes:
            run_generation(prepare_generation(workspace, "tidewater", "docs-qa-var", provider, "default-en", variables,
                                              GenerationSettings(rounds=3, pairs_per_call=5, concurrency=32, question_variants=3,
                                                                 renderings=("prose", "table"))))
            datasets["docs-qa-var"] = len(global_var.datasets().items("docs-qa-var"))
        results["datasets"] = datasets
        results["exam"] = {"questions": len(exam.questions), "controls": list(DOCS_CONTROLS)}
        runs: dict[str, str] = {}
        sft = runs["sft"] = _train("base", steps, dataset="docs-qa")
        if "sft+variants" in recipes:
            runs["sft+variants"] = _train("base", steps, dataset="docs-qa-var")
        if "cpt+sft" in recipes:
            runs["cpt+sft"] = _train("base", steps, dataset="docs-qa", docs="tidewater", doc_mix=0.3)
        pairs_stats = None
        if "sft+dpo" in recipes:
            built = build_pairs(PairsRequest("docs-qa", "docs-pairs", run=sft, samples=3, max_new_tokens=64, seed=seed))
            pairs_stats = built["stats"]
            global_var.reset_runtime()
            runs["sft+dpo"] = _train("base", max(steps // 3, 10), dataset="docs-pairs", stage="dpo", init_run=sft,
                                     learning_rate=1e-3)
        results["pairs"] = pairs_stats
        for recipe, run in runs.items():
            report = run_exam(exam, run, conditions=("closed",), seed=seed)
            results["recipes"][recipe] = {"run": run, **_figures(report)}
            global_var.reset_runtime()
        if "sft+dpo" in runs:
            context, _ = doc_context_for(global_var.datasets().load("docs-qa").meta, global_var.workdir().docs)
            asked = [item for item in global_var.datasets().items("docs-pairs")][:64]
            results["invented_names"] = {"before DPO (sft)": invented_share(sft, asked, context),
                                         "after DPO (sft+dpo)": invented_share(runs["sft+dpo"], asked, context)}
    results["seconds"] = round(time.monotonic() - started, 1)
    global_var.reset()
    return results


def table(results: dict) -> str:
    from frontend.cli.exam_run import format_table

    def percent(value) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    def cell(group) -> str:
        if not group or not group.get("tuned"):
            return "-"
        tuned, base, gain = group["tuned"], group["base"], group["gain"] or {}
        p = gain.get("p")
        return (f"{percent(base['value'])} → {percent(tuned['value'])} [{percent(tuned['ci95'][0])}–{percent(tuned['ci95'][1])}]"
                f" n={group['n']} p={'-' if p is None else ('<0.0001' if p < 0.0001 else f'{p:.3f}')}")

    rows = []
    for recipe, figures in results["recipes"].items():
        forgetting = figures.get("forgetting") or {}
        band = forgetting.get("band95") or [None, None]
        rows.append([recipe, cell(figures.get("trained sections")), cell(figures.get("control sections")),
                     "-" if forgetting.get("rise") is None else
                     f"{forgetting['rise']:+.1%} [{band[0]:+.1%}, {band[1]:+.1%}]"])
    return format_table(["recipe", "trained sections: base → tuned [95% CI], McNemar p", "control sections (untrained)",
                         "forgetting rise [95%]"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per recipe run (DPO: a third of it)")
    parser.add_argument("--model", help="a local model folder (default: the tiny model, built now)")
    parser.add_argument("--shape", help="a random model of this shape (bench.training's shapes), for a lent GPU")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"a subset of {', '.join(RECIPES)}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    recipes = tuple(part.strip() for part in args.recipes.split(",") if part.strip())
    unknown = set(recipes) - set(RECIPES)
    if unknown or "sft" not in recipes:
        raise SystemExit(f"--recipes: choose from {', '.join(RECIPES)} (sft is always run); unknown: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as tmp:
        from train.tiny_model import build_tiny_model

        if args.model:
            model_dir = Path(args.model).expanduser().resolve()
        else:
            model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0, log=lambda line: None)
            if args.shape:
                from bench.training import build_shaped_model

                model_dir = build_shaped_model(model_dir, Path(tmp) / f"shape-{args.shape}", args.shape)
        results = run_bench(Path(tmp) / "wd", model_dir, args.steps, args.seed, recipes)
    print(f"\n## Knowledge recipes: {results['exam']['questions']} exam questions, control sections "
          f"{', '.join(results['exam']['controls'])}; {args.steps} steps per run\n")
    print(table(results))
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
