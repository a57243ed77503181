"""Exam scoring (issue 15): option log-likelihoods on hand-made cases, the packed row against one row
per option and a direct loss, the forgetting figure, the general-items mix, API grounding, the
tiny-model proof (a fact exam: tuned clearly above a base near chance) and the saved results."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

import global_var
from schema.exam import Exam, ExamReport, Question, QuestionSource
from tests.fixtures_train import load_facts
from tools.core.errors import UserError
from tools.evaluation.values import mismatched_options
from train.exam import build_facts_exam, load_exam_file, reword_question, run_exam
from train.exam_scoring import (
    ChoiceEncoding,
    choice_messages,
    choose_option,
    encode_choice,
    packed_option_logprobs,
    rowwise_option_logprobs,
    score_choice_questions,
)
from train.forgetting import (
    MIX_MODULES,
    english_sample,
    forgetting_figure,
    forgetting_lines,
    general_mix_count,
    mix_general_items,
)


# ---------------------------------------------------------------- a model whose answer is forced


class NextTokenModel:
    """A stand-in causal LM that puts all its mass on token (previous + 1) mod V: it ignores attention,
    so it checks which logits score which option token (an off-by-one picks the wrong option)."""

    vocab = 50

    def __init__(self):
        import torch

        self.embedding = torch.nn.Embedding(self.vocab, 2)
        self.config = SimpleNamespace(_attn_implementation="sdpa")

    def parameters(self):
        return self.embedding.parameters()

    def get_input_embeddings(self):
        return self.embedding

    def __call__(self, input_ids, attention_mask=None, position_ids=None):
        import torch

        logits = torch.full((*input_ids.shape, self.vocab), -20.0)
        logits.scatter_(2, ((input_ids + 1) % self.vocab)[..., None], 0.0)
        return SimpleNamespace(logits=logits)


@pytest.mark.parametrize("scorer", [packed_option_logprobs, rowwise_option_logprobs])
def test_the_forced_continuation_wins_and_scores_zero(scorer):
    model = NextTokenModel()
    # Prompt ends with 7: only the option 8, 9, 10 continues it; the others break at their first or a later token.
    encodings = [ChoiceEncoding(prompt=[3, 5, 7], options=[[8, 10, 11], [8, 9, 10], [9, 10, 11]]),
                 ChoiceEncoding(prompt=[1], options=[[2, 4], [4], [2, 3, 4, 5, 6]])]
    results = scorer(model, encodings, pad_id=0)
    assert [choose_option(r) for r in results] == [1, 2]
    assert results[0][1] == (pytest.approx(0.0, abs=1e-6), 3)
    assert results[1][2] == (pytest.approx(0.0, abs=1e-6), 5)
    assert results[0][0][0] < -10 and results[0][2][0] < -10  # one wrong token each
    assert results[1][1][1] == 1


def test_mean_normalisation_is_fair_to_longer_options_and_sum_is_not():
    # A 6-token answer at -1 per token against a 1-token answer at -2: the mean prefers the long one.
    assert choose_option([(-6.0, 6), (-2.0, 1)], "mean") == 0
    assert choose_option([(-6.0, 6), (-2.0, 1)], "sum") == 1
    assert choose_option([(-1.0, 1), (-1.0, 1)]) == 0  # ties go to the first option


def _load_tiny(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)


def test_packed_row_equals_one_row_per_option_and_a_direct_loss(tiny_model_dir):
    import torch

    model, tokenizer = _load_tiny(tiny_model_dir)
    exam = build_facts_exam(load_facts())
    questions = exam.questions[:3] + exam.questions[-3:]  # English and Chinese
    encodings = [encode_choice(tokenizer, choice_messages(q), q.options) for q in questions]
    packed = packed_option_logprobs(model, encodings, tokenizer.pad_token_id)
    rows = rowwise_option_logprobs(model, encodings, tokenizer.pad_token_id)
    for p_row, r_row in zip(packed, rows):
        for (p_sum, p_n), (r_sum, r_n) in zip(p_row, r_row):
            assert p_n == r_n and p_sum == pytest.approx(r_sum, abs=1e-3)
    # The reference: transformers' own loss over the option tokens of prompt + option.
    encoding = encodings[0]
    for index, option in enumerate(encoding.options):
        ids = torch.tensor([encoding.prompt + option])
        labels = ids.clone()
        labels[0, :len(encoding.prompt)] = -100
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss.item()
        assert packed[0][index][0] == pytest.approx(-loss * len(option), rel=1e-4)
    # The option is the whole assistant turn: its text and the end-of-turn marker.
    assert tokenizer.decode(encoding.options[0]).endswith("<|im_end|>")


# ---------------------------------------------------------------- the fact exam and the proof


def test_fact_exam_is_deterministic_reworded_and_answerable():
    facts = load_facts()
    exam = build_facts_exam(facts)
    again = build_facts_exam(facts)
    assert exam.model_dump(exclude={"created_at"}) == again.model_dump(exclude={"created_at"})
    assert len(exam.questions) == len(facts)
    positions = set()
    for question, fact in zip(exam.questions, facts):
        assert question.question != fact["question"]
        assert question.options[question.answer] == fact["answer"]
        assert len(question.options) == 4 and len(set(question.options)) == 4
        positions.add(question.answer)
    assert positions == {0, 1, 2, 3}  # the right answer is not always in the same place
    # The altered form keeps the answer sentence and swaps its value for others of the same type ...
    assert exam.questions[1].options[exam.questions[1].answer] == "The default max_workers is 4."
    assert all(option.startswith("The default max_workers is ") for option in exam.questions[1].options)
    # ... the values form lists the values alone: of the right one's type, but where a language has too few
    # of them (three Chinese phrases).
    values = build_facts_exam(facts, form="values")
    assert [q.options[q.answer] for q in values.questions] == [fact["value"] for fact in facts]
    assert sum(bool(mismatched_options(q.options, q.answer)) for q in values.questions) <= 3
    answers = build_facts_exam(facts, form="answers")  # other facts' sentences: recognisable without the question
    assert all(set(q.options) <= {fact["answer"] for fact in facts} for q in answers.questions)
    assert reword_question("What does tidewater error TW-1203 mean?") == "Explain what tidewater error TW-1203 means."
    assert {q.source.section for q in exam.questions} >= {"tests/data/tidewater_facts.jsonl > tidewater facts > en > error codes"}


def test_fact_exams_of_every_seed_have_distinct_options():
    """A value of 1 doubled and plus one is 2 both times: seed 4 drew both as options of fact 10 ("1.5 seconds")
    and the exam could not be built (bench.exam builds seeds 0-4)."""
    from train.exam import _variants

    assert _variants("1.5 seconds") == ["2.5 seconds", "10.5 seconds"]
    facts = load_facts()
    for seed in range(12):
        for form in ("altered", "values", "answers"):
            exam = build_facts_exam(facts, seed=seed, form=form)
            assert all(len(set(q.options)) == len(q.options) == 4 for q in exam.questions)


def test_the_fact_exam_shows_what_tuning_taught_and_a_held_out_control_where_it_did_not(in_facts_run, capsys):
    """The facts run trained on 30 of the 40 facts (every fourth held out). On the exam of all 40 (reworded
    questions; options: the answer sentence with its value altered), the tuned model must beat the base on the trained facts
    (McNemar's exact test), and the base must not get there from the options alone; on the 10 held-out facts,
    the control, the tuned model must show no significant gain. The figures are printed with their intervals."""
    from tools.evaluation.analysis import analyse_group
    from tests.fixtures_train import HELD_OUT_FACTS

    exam = build_facts_exam(load_facts())
    report = run_exam(exam, in_facts_run.run, forgetting=False, conditions=("closed", "blind"))
    by_key = {key: {s.id: s for s in result.questions} for key, result in report.results.items()}
    held = [q for i, q in enumerate(exam.questions) if i in HELD_OUT_FACTS]
    trained = [q for i, q in enumerate(exam.questions) if i not in HELD_OUT_FACTS]
    seen, control = analyse_group(trained, by_key), analyse_group(held, by_key)

    def line(name, group):
        base, tuned = group.closed["base"], group.closed["tuned"]
        return (f"{name} (n={group.n}): base {base.value:.1%} [{base.low:.1%}, {base.high:.1%}], tuned {tuned.value:.1%} "
                f"[{tuned.low:.1%}, {tuned.high:.1%}], question removed base/tuned {group.blind['base']:.1%}/{group.blind['tuned']:.1%}, "
                f"chance {group.chance:.1%}, majority {group.majority:.1%}; McNemar {group.test.better}:{group.test.worse} "
                f"p={group.test.p_value:.4f}")
    with capsys.disabled():
        print(f"\nfact exam, altered values: {line('trained facts', seen)}\n  {line('held-out facts', control)}")
    assert seen.test.significant and seen.test.gain > 0.2
    # Each option states its fact (the subject and a value), so the question adds nothing and the tuned model's
    # question-blind score equals its closed-book one; what the options do not give away is the value: the base
    # model, without the question, stays far below the tuned model.
    assert seen.blind["base"] < seen.closed["tuned"].low
    assert not control.test.significant, "tuning on 30 facts must not teach the 10 it never saw"
    # The report itself tells the trained facts from the others by the training data, not by the test's list.
    assert all(report.coverage[q.id].coverage != "untrained" for q in trained)
    assert sum(report.coverage[q.id].coverage == "untrained" for q in held) >= 5


# ---------------------------------------------------------------- forgetting


def test_forgetting_figure_is_zero_for_an_untouched_adapter_and_rises_when_it_changes(tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model

    model, tokenizer = _load_tiny(tiny_model_dir)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    peft_model.eval()
    sample = {"en": list(english_sample())[:6], "zh": ["请允许访问麦克风以进行录音。", "等待文件上传完成，请稍后重试。"]}
    same = forgetting_figure(peft_model, tokenizer, margin=0.1, sample=sample)
    assert same["base_perplexity"] == pytest.approx(same["tuned_perplexity"], rel=1e-5)  # LoRA B starts at zero
    assert not same["warning"] and set(same["by_lang"]) == {"en", "zh"}
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    changed = forgetting_figure(peft_model, tokenizer, margin=0.1, sample=sample)
    assert changed["base_perplexity"] == pytest.approx(same["base_perplexity"], rel=1e-5)
    assert changed["tuned_perplexity"] > changed["base_perplexity"] * 1.1
    # The noise band over the sample's texts: the warning only when all of it lies above the margin.
    assert changed["texts"] == 8 and changed["rise_low"] <= changed["rise"] <= changed["rise_high"]
    assert changed["warning"] == (changed["rise_low"] > 0.1) and changed["rise"] > 0.1
    assert same["rise_low"] == pytest.approx(0.0, abs=1e-6) and not same["warning"]
    # A rise above the margin whose band still reaches below it is said to be within the noise.
    noisy = {**changed, "rise": 0.15, "rise_low": 0.05, "rise_high": 0.25, "warning": False}
    assert "cannot tell forgetting from noise" in forgetting_lines(noisy, "en")[-1]
    lines = forgetting_lines(changed, "en")
    assert "Warning" in lines[-1] and "general_mix" in lines[-1]
    assert "警告" in forgetting_lines(changed, "zh")[-1]


def test_general_sample_is_offline_text_and_disjoint_from_the_mixed_items():
    sample = english_sample()
    assert len(sample) >= 20 and sum(map(len, sample)) >= 8000
    assert english_sample() == sample  # deterministic
    mixed = mix_general_items([{"id": str(i), "messages": []} for i in range(90)], 0.1, seed=3)
    general = [item for item in mixed if item["id"].startswith("general-")]
    assert len(general) == general_mix_count(90, 0.1) == 10 and len(mixed) == 100
    assert mixed == mix_general_items([{"id": str(i), "messages": []} for i in range(90)], 0.1, seed=3)
    assert all(item["id"].split("-", 1)[1].split(".")[0].split("#")[0] in MIX_MODULES for item in general)
    answers = {item["messages"][1]["content"] for item in general}
    assert not answers & set(sample)
    assert mix_general_items([{"id": "a"}], 0.0) == [{"id": "a"}]


def test_general_mix_is_a_validated_training_option():
    from train.config import TrainConfig

    assert TrainConfig(model="m", dataset="d", general_mix=0.2).validate().general_mix == 0.2
    with pytest.raises(UserError) as error:
        TrainConfig(model="m", dataset="d", general_mix=0.8).validate()
    assert "general_mix" in str(error.value)
    assert "general_mix" in TrainConfig.field_help()


# ---------------------------------------------------------------- a whole exam on a run, saved


def _mixed_exam(tmp_path) -> str:
    facts = load_facts()
    choice = build_facts_exam(facts[:6]).questions
    extra = [
        Question(id="tf-1", kind="tf", question="Is the default max_workers of Tide.run 4?", options=["True", "False"], answer=0,
                 source=QuestionSource(source_doc="guide.md", heading_path=["Running", "Workers"])),
        Question(id="short-1", kind="short", question=facts[1]["question"], answer=facts[1]["answer"],
                 source=QuestionSource(source_doc="guide.md", heading_path=["Running", "Workers"])),
        Question(id="code-1", kind="code", question="Write code that runs a tide with 8 workers.",
                 answer="tidewater.Tide(...).run(max_workers=8)", source=QuestionSource(source_doc="api.md", heading_path=["Tide"])),
    ]
    exam = Exam(name="mixed", version=2, docset="", questions=choice + extra)
    path = tmp_path / "mixed.json"
    path.write_text(exam.model_dump_json(), encoding="utf-8")
    return str(path)


def test_exam_run_saves_base_and_tuned_per_kind_and_section(in_facts_run, tmp_path):
    from train.exam_reports import exam_report_path

    exam = load_exam_file(_mixed_exam(tmp_path))
    updates = []
    report = run_exam(exam, in_facts_run.run, progress=updates.append, max_new_tokens=24)
    path = exam_report_path(in_facts_run.run, "mixed")
    assert path.name == "1.json" and path.parent.name == "mixed" and path.parent.parent.name == "exams"
    assert path.parent.parent.parent.name == in_facts_run.run
    saved = ExamReport.model_validate_json(path.read_text(encoding="utf-8"))
    assert saved.exam == "mixed" and saved.exam_version == 2 and saved.number == 1
    assert set(saved.results) == {"base", "tuned", "base:blind", "tuned:blind", "base:open", "tuned:open"}
    for variant in ("base", "tuned"):
        result = saved.results[variant]
        # The fact answers are whole sentences: a question choosing among them is a recognition item.
        assert set(result.by_kind) == {"recognition", "tf", "short", "code"}
        assert result.by_kind["recognition"].n == 6 and result.overall.n == 9
        assert result.by_section["guide.md > Running > Workers"].n == 2
        short = next(q for q in result.questions if q.kind == "short")
        assert short.output is not None and short.rouge_l is not None and short.correct is not None
        code = next(q for q in result.questions if q.kind == "code")
        assert code.output is not None and code.judge is None and code.code_found is not None
        # Blind scores the choice kinds only; the exam has no excerpts and no doc set, so nothing is open book.
        assert {q.kind for q in saved.results[f"{variant}:blind"].questions} == {"recognition", "tf"}
        assert saved.results[f"{variant}:open"].questions == []
    assert saved.forgetting is not None and saved.forgetting.tokens > 1000
    assert saved.forgetting.base_perplexity != saved.forgetting.tuned_perplexity
    assert saved.scoring["normalise"] == "mean" and saved.scoring["packed"] is True and saved.scoring["tf"] == "calibrated"
    assert report.results["tuned"].by_kind["recognition"].accuracy == saved.results["tuned"].by_kind["recognition"].accuracy
    assert set(saved.analysis) == {"overall", "recognition", "tf", "short", "code"}
    assert saved.analysis["recognition"].chance == 0.25 and saved.analysis["recognition"].test is not None
    assert {u["phase"] for u in updates} >= {"load", "questions", "forgetting", "done"}
    assert not list(path.parent.glob(".*"))  # atomic write left no temp file


def test_exam_run_base_only_and_bad_inputs(in_facts_run, tmp_path):
    exam = load_exam_file(_mixed_exam(tmp_path))
    report = run_exam(exam, in_facts_run.run, base_only=True, max_new_tokens=8)
    assert set(report.results) == {"base", "base:blind", "base:open"} and report.forgetting is None
    assert report.analysis["overall"].test is None  # no tuned model: nothing to test
    with pytest.raises(UserError, match="Unknown exam condition"):
        run_exam(exam, in_facts_run.run, conditions=["closed", "sideways"])
    with pytest.raises(UserError, match="margin"):
        run_exam(exam, in_facts_run.run, margin=0)
    with pytest.raises(UserError, match="batch size"):
        run_exam(exam, in_facts_run.run, batch_size=0)
    with pytest.raises(UserError, match="Unknown option scoring"):
        run_exam(exam, in_facts_run.run, normalise="max")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "questions": [{"id": "1", "kind": "mc", "question": "q", "options": ["a"], "answer": 0}]}))
    with pytest.raises(UserError) as error:
        load_exam_file(bad)
    assert str(bad) in str(error.value) and "at least 2" in str(error.value)
    with pytest.raises(UserError, match="No exam file"):
        load_exam_file(tmp_path / "missing.json")


def test_cli_exam_run_prints_and_saves(in_facts_run, tmp_path, capsys):
    import main

    path = _mixed_exam(tmp_path)
    code = main.main(["--workdir", str(in_facts_run.root), "--lang", "en", "exam", "run", path, "--run", in_facts_run.run,
                      "--max-new-tokens", "8"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Exam mixed (version 2)" in out and "recognition" in out and "true/false" in out
    assert "guide.md > Running > Workers" in out and "chance / majority" in out and "p (paired test)" in out
    assert "General-text perplexity" in out and "Results saved to" in out
    assert re.search(r"exams/mixed/\d+\.json", out) and "earlier reports are kept" in out
    print(out)
    assert global_var.workdir().root == in_facts_run.root
