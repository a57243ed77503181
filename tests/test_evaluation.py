"""Evaluation of fine-tuning runs: text metrics, eval loss, base vs tuned reports, LLM judge, CLI, validation samples."""

import json
import math
import os
import subprocess
import sys

import pytest

import global_var
from tools.core.errors import UserError
from tests.fixtures_train import FACTS_DATASET, TINY, _finish_jobs, add_facts_dataset, open_workdir
from tests.openai_test_server import OpenAITestServer
from tools.core.workdir import REPO_ROOT
from train import evaluation
from train.config import TrainConfig
from train.evaluation import exact_match, normalize_answer, parse_judge_reply, rouge_l, rouge_tokens

# ---------------------------------------------------------------- text metrics


def test_rouge_l_is_lcs_f1_on_words():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("completely different", "the cat sat") == 0.0
    # LCS of "the mat cat" and the reference is 2 tokens ("the cat"): precision 2/3, recall 2/6 -> F1 = 4/9.
    assert rouge_l("the mat cat", "the cat sat on the mat") == pytest.approx(4 / 9)
    assert rouge_l("The Cat.", "the cat") == 1.0, "case and punctuation do not count"
    assert rouge_l("", "") == 1.0 and rouge_l("", "x") == 0.0


def test_rouge_l_tokenises_chinese_per_character():
    assert rouge_tokens("区块链 is 技术") == ["区", "块", "链", "is", "技", "术"]
    # LCS of 区块链是技术 / 区块链是一种技术 = 6 chars; precision 6/6, recall 6/8 -> F1 = 12/14.
    assert rouge_l("区块链是技术", "区块链是一种技术") == pytest.approx(12 / 14)
    assert rouge_l("正面。", "正面") == 1.0


def test_exact_match_normalises_case_punctuation_and_spaces():
    assert exact_match("  Paris. ", "paris") == 1.0
    assert exact_match("正面。", "正面") == 1.0
    assert exact_match("Paris, France", "Paris") == 0.0
    assert normalize_answer("Ｈｅｌｌｏ,  World!") == "hello world"


def test_judge_reply_parsing_accepts_fences_and_rejects_bad_json():
    assert parse_judge_reply('{"score": 8, "reason": "close"}') == (8.0, "close")
    assert parse_judge_reply('<think>hmm {x}</think>```json\n{"score": "7.5", "reason": "ok"}\n```') == (7.5, "ok")
    for bad in ("no json here", '{"score": 11}', '{"score": "high"}', '{"score": 5', None):
        with pytest.raises(ValueError):
            parse_judge_reply(bad)


def test_max_items_is_checked():
    assert evaluation.validate_max_items(0) is None and evaluation.validate_max_items("3") == 3
    for bad in (-1, 1.5, "x", True):
        with pytest.raises(UserError) as caught:
            evaluation.validate_max_items(bad)
        assert caught.value.key == "error.eval_max_items"


# ---------------------------------------------------------------- eval loss


def test_progress_moves_per_finished_answer_within_a_batch():
    import torch

    seen = []
    watch = evaluation._AnswersDone(width=2, end_ids=[9], before=8, total=12, progress=lambda d, t: seen.append((d, t)), stop_event=None)
    prompt = [[1, 1], [1, 1], [1, 1], [1, 1]]
    steps = [[5, 5, 5, 9], [9, 5, 9, 0], [0, 9, 0, 0]]  # generated token per row at each step (0: padding after the end)
    for step in range(1, len(steps) + 1):
        ids = torch.tensor([row + [steps[s][r] for s in range(step)] for r, row in enumerate(prompt)])
        assert not watch(ids, None).any()  # it never stops generation by itself
    # After 8 answers of earlier batches: one row ended at step 1, two more at step 2, the last at step 3.
    assert seen == [(9, 12), (11, 12), (12, 12)]


def test_greedy_answers_stop_mid_batch(tiny_model_dir):
    import threading

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = [[{"role": "user", "content": f"What is stage {n} of a tide?"}] for n in range(4)]
    stop = threading.Event()
    calls = []

    def progress(done, total):
        calls.append(done)
        stop.set()  # Stop pressed while the first batch is generating

    with pytest.raises(Exception):
        evaluation.greedy_answers(model, tokenizer, prompts, max_new_tokens=500, batch_size=4, progress=progress, stop_event=stop)
    assert calls == [0]  # the batch ended at the next token, without another answer

def test_eval_loss_equals_a_hand_computation_for_one_item(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.data import render_example

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    messages = [{"role": "user", "content": "What colour is the harbour lighthouse?"}, {"role": "assistant", "content": "It is painted red."}]
    example = render_example(tokenizer, messages)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([example.input_ids])).logits[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    # Token i is predicted at position i - 1; only assistant tokens (labels != -100) count.
    nll = [-log_probs[i - 1, token].item() for i, token in enumerate(example.labels) if token != -100 and i > 0]
    expected = sum(nll) / len(nll)
    # Two items in one padded batch must not change the per-token mean of identical items.
    result = evaluation.eval_loss(model, tokenizer, [{"messages": messages}, {"messages": messages}], batch_size=2)
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
    assert result["perplexity"] == pytest.approx(math.exp(expected), rel=1e-4)
    assert result["tokens"] == 2 * len(nll) and result["items"] == 2


# ---------------------------------------------------------------- a short run with an eval split (once per module)

EVAL_TRAINING = dict(max_steps=40, batch_size=8, grad_accum=1, learning_rate=1e-2, lora_r=32, lora_alpha=32, warmup_ratio=0.05,
                     scheduler="linear", save_steps=1000, logging_steps=10, eval_steps=20, eval_ratio=0.2, max_length=256,
                     validation_samples=2, seed=42)


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory, tiny_model_dir):
    """(work directory, run name) of a 40-step run on the facts with 8 of them held out."""
    from train.launcher import start_training

    _finish_jobs()
    global_var.reset_runtime()
    root = open_workdir(tmp_path_factory.mktemp("eval-run"), tiny_model_dir)
    add_facts_dataset()
    job = start_training(TrainConfig(model=TINY, dataset=FACTS_DATASET, run_name="evalrun", **EVAL_TRAINING))
    assert job.wait(600), "training did not finish"
    job.raise_if_failed()
    global_var.reset()
    global_var.reset_runtime()
    return root, job.run_name


@pytest.fixture
def in_eval_run(eval_run):
    """The eval run's work directory opened, nothing loaded: evaluation loads base + adapter itself."""
    root, run = eval_run
    global_var.reset()
    global_var.init(root)
    global_var.reset_runtime()
    yield root, run
    job = evaluation.current_evaluation()
    if job is not None and job.is_running():
        job.request_stop()
        job.wait(120)
    global_var.reset_runtime()
    global_var.reset()


def test_validation_samples_are_written_at_each_evaluation(in_eval_run):
    from train.runs import SAMPLES_FILE, read_validation_samples

    root, run = in_eval_run
    lines = [json.loads(line) for line in (root / "training" / run / SAMPLES_FILE).read_text(encoding="utf-8").splitlines()]
    assert sorted({line["step"] for line in lines}) == [20, 40] and len(lines) == 4
    latest = read_validation_samples(run)
    assert [s["step"] for s in latest] == [40, 40]
    held_out = [json.loads(line) for line in (root / "training" / run / "data" / "eval.jsonl").read_text(encoding="utf-8").splitlines()]
    assert latest[0]["question"] == held_out[0]["messages"][0]["content"]
    assert latest[0]["reference"] == held_out[0]["messages"][1]["content"]
    assert all(isinstance(s["generated"], str) for s in latest)


def test_evaluate_run_compares_base_and_tuned_and_writes_the_report(in_eval_run):
    root, run = in_eval_run
    updates = []
    report = evaluation.evaluate_run(run, max_new_tokens=24, progress=updates.append)
    base, tuned = report["summary"]["base"], report["summary"]["tuned"]
    assert report["items"] == 8 and len(report["per_item"]) == 8
    assert tuned["eval_loss"] < base["eval_loss"], (base, tuned)
    assert tuned["perplexity"] == pytest.approx(math.exp(tuned["eval_loss"]))
    assert tuned["rouge_l"] > base["rouge_l"]
    assert base["judge_score"] is None and report["judge"] is None
    item = report["per_item"][0]
    assert {"question", "reference", "base_answer", "tuned_answer", "base_rouge_l", "tuned_rouge_l", "base_exact_match", "tuned_exact_match"} <= item.keys()
    # The model loaded for the evaluation carries the run's adapter (chat can compare with it next).
    assert global_var.loaded_model().adapter_run == run
    folder = root / "training" / run
    saved = json.loads((folder / evaluation.REPORT_JSON).read_text(encoding="utf-8"))
    assert saved["summary"] == json.loads(json.dumps(report["summary"]))
    markdown = (folder / evaluation.REPORT_MD).read_text(encoding="utf-8")
    assert f"# Evaluation report: {run}" in markdown and "| Eval loss |" in markdown and item["question"] in markdown
    assert [u["phase"] for u in updates][0] == "load" and updates[-1]["phase"] == "done"
    assert {"loss", "answers"} <= {u["phase"] for u in updates}
    assert evaluation.read_report(run)["summary"] == saved["summary"]
    rows = evaluation.summary_rows(report, "en")
    assert [r[0] for r in rows] == ["Eval loss", "Perplexity", "ROUGE-L F1 (mean)", "Exact match"]


def test_llm_judge_scores_and_records_bad_replies_per_item(in_eval_run):
    _root, run = in_eval_run
    reply = json.dumps({"score": 7, "reason": "mostly right"})
    # One request at a time, base answers first: the 3 base judgements get truncated JSON, the 3 tuned a score.
    with OpenAITestServer(responder=lambda info: reply, faults=["malformed"] * 3) as server:
        global_var.providers().add(name="judge", base_url=server.base_url, model_id="test-model", api_key="k", max_concurrency=1)
        report = evaluation.evaluate_run(run, max_items=3, judge_provider="judge", max_new_tokens=8)
        assert server.requests == 6
    summary = report["summary"]
    assert report["judge"] == {"provider": "judge", "model": "test-model"}
    assert summary["tuned"]["judge_score"] == 7.0 and summary["tuned"]["judge_failures"] == 0
    assert summary["base"]["judge_score"] is None and summary["base"]["judge_failures"] == 3
    first = report["per_item"][0]
    assert first["tuned_judge"] == {"score": 7.0, "reason": "mostly right"}
    assert "no JSON object" in first["base_judge"]["error"]
    rows = evaluation.item_rows(report, "en")
    assert rows[0][-1] == "7 — mostly right" and rows[0][-2].startswith("judge failed")
    assert "LLM judge (0-10, mean)" in [r[0] for r in evaluation.summary_rows(report, "en")]


def test_background_evaluation_refuses_a_second_and_can_be_stopped(in_eval_run):
    _root, run = in_eval_run
    job = evaluation.start_evaluation(run, max_items=2, max_new_tokens=4)
    with pytest.raises(UserError) as caught:
        evaluation.start_evaluation(run)
    assert caught.value.key == "error.eval_running"
    assert job.wait(300) and job.state == "completed", job.error
    assert job.report["items"] == 2 and job.phase == "done"

    stopping = evaluation.start_evaluation(run, max_new_tokens=4)
    assert evaluation.stop_evaluation()
    assert stopping.wait(300) and stopping.state == "stopped"
    assert not evaluation.stop_evaluation()


def test_runs_without_eval_split_or_adapter_are_refused(workbench):
    from train.launcher import start_training

    job = start_training(TrainConfig(model=TINY, dataset=FACTS_DATASET, run_name="nosplit", max_steps=1, batch_size=8, max_length=128))
    assert job.wait(300)
    job.raise_if_failed()
    with pytest.raises(UserError) as caught:
        evaluation.evaluate_run("nosplit")
    assert caught.value.key == "error.eval_no_split"
    (workbench.training / "nosplit" / "adapter" / "adapter_config.json").unlink()
    with pytest.raises(UserError) as caught:
        evaluation.start_evaluation("nosplit")
    assert caught.value.key == "error.eval_no_adapter"
    with pytest.raises(UserError) as caught:
        evaluation.read_report("nosplit")
    assert caught.value.key == "error.eval_no_report"


def test_cli_eval_prints_summary_and_saves_the_report(eval_run):
    root, run = eval_run
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "main.py", "--workdir", str(root), "--lang", "en", "eval", run, "--max-items", "2", "--max-new-tokens", "4"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Evaluating run {run} (2 held-out items)" in result.stdout
    assert "Eval loss" in result.stdout and "Perplexity" in result.stdout and "Report saved:" in result.stdout
    assert json.loads((root / "training" / run / evaluation.REPORT_JSON).read_text(encoding="utf-8"))["items"] == 2
    missing = subprocess.run([sys.executable, "main.py", "--workdir", str(root), "--lang", "en", "eval", "no-such-run"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert missing.returncode != 0 and "no-such-run" in missing.stderr
