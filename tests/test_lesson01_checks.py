"""Lesson 01's checks: a right answer passes, each common slip gets its own hint, no hint gives the answer."""
import re

import pytest
from transformers import AutoConfig

from ftlib import catalog
from ftlib.exercises import Hint, check
from ftlib.exercises import lesson01
from ftlib.memory import T4_BYTES, estimate_training_memory, model_on_meta


def hint_of(fn, *args, **kwargs):
    with pytest.raises(Hint) as info:
        fn(*args, **kwargs)
    return str(info.value)


P = 22_713_986  # the lite encoder's parameters with a 2-label head


def test_state_bytes_right_answer_passes():
    lesson01.check_training_state_bytes(16 * P, P)
    lesson01.check_training_state_bytes(float(16 * P), P)
    lesson01.check_training_state_bytes(16 * 1000, 1000)


def test_state_bytes_hints_name_the_slip():
    check_ = lesson01.check_training_state_bytes
    assert "weights only" in hint_of(check_, 4 * P, P)
    assert "two running averages" in hint_of(check_, 8 * P, P)
    assert "*two*" in hint_of(check_, 12 * P, P)
    assert "mixed-precision" in hint_of(check_, 18 * P, P)
    assert "in bytes" in hint_of(check_, 16 * P / 1e9, P)
    assert "in bytes" in hint_of(check_, 16 * P / 2**30, P)
    assert "bits" in hint_of(check_, 128 * P, P)
    assert "4 bytes each, not 2" in hint_of(check_, 2 * P, P)
    assert "add up" in hint_of(check_, 3 * P, P)
    assert "number" in hint_of(check_, "363 MB", P)


def test_state_bytes_hints_never_give_the_answer():
    for wrong in (4 * P, 8 * P, 12 * P, 18 * P, 128 * P, 2 * P, 3 * P):
        hint = hint_of(lesson01.check_training_state_bytes, wrong, P)
        assert " 16 " not in f" {hint} " and "16 bytes" not in hint and str(16 * P) not in hint


@pytest.fixture(scope="module")
def smol():
    return model_on_meta(AutoConfig.for_model(**catalog.SMOLLM2_360M.config))


def test_largest_batch_is_the_last_that_fits(smol):
    truth = lesson01.largest_batch(smol, seq_len=512, budget=T4_BYTES, precision="fp16")
    assert truth >= 1
    fits = lambda b: estimate_training_memory(smol, batch_size=b, seq_len=512, precision="fp16").fits(T4_BYTES)
    assert fits(truth) and not fits(truth + 1)
    assert lesson01.largest_batch(smol, seq_len=512, budget=1e6, precision="fp16") == 0


def test_largest_batch_check(smol):
    kw = dict(seq_len=512, budget=T4_BYTES, precision="fp16")
    truth = lesson01.largest_batch(smol, **kw)
    fp32 = lesson01.largest_batch(smol, seq_len=512, budget=T4_BYTES, precision="fp32")
    assert fp32 < truth
    lesson01.check_largest_batch(truth, smol, **kw)
    lesson01.check_largest_batch(float(truth), smol, **kw)
    assert "above the budget" in hint_of(lesson01.check_largest_batch, truth + 1, smol, **kw)
    assert "fp32" in hint_of(lesson01.check_largest_batch, fp32, smol, **kw)
    smaller = next(b for b in range(truth - 1, 0, -1) if b != fp32)
    assert "loop over batch sizes" in hint_of(lesson01.check_largest_batch, smaller, smol, **kw)
    assert "whole number" in hint_of(lesson01.check_largest_batch, 2.5, smol, **kw)
    for wrong in (truth + 1, fp32, smaller):
        assert not re.search(rf"\b{truth}\b", hint_of(lesson01.check_largest_batch, wrong, smol, **kw))


RESULTS = {
    "pretrained encoder": {"accuracy": 0.80, "train_accuracy": 0.90},
    "random-weight encoder": {"accuracy": 0.60, "train_accuracy": 0.97},
    "causal LM": {"accuracy": 0.70, "train_accuracy": 0.95},
}


def test_probe_choice():
    lesson01.check_probe_choice("pretrained encoder", RESULTS)
    assert "training accuracy" in hint_of(lesson01.check_probe_choice, "random-weight encoder", RESULTS)
    assert "held-out" in hint_of(lesson01.check_probe_choice, "causal LM", RESULTS)
    assert "not one of the candidates" in hint_of(lesson01.check_probe_choice, "bert", RESULTS)
    assert "string" in hint_of(lesson01.check_probe_choice, 0.8, RESULTS)
    for wrong in ("random-weight encoder", "causal LM", 0.8):
        assert "pretrained encoder" not in hint_of(lesson01.check_probe_choice, wrong, RESULTS)


def test_unanswered_exercises_say_not_answered_yet(capsys):
    check(lesson01.check_training_state_bytes, ..., P, strict=False)
    check(lesson01.check_probe_choice, ..., RESULTS, strict=False)
    assert capsys.readouterr().out.count("Not answered yet") == 2


def test_lesson01_quiz_is_complete():
    assert 4 <= len(lesson01.QUIZ.questions) <= 6
    for q in lesson01.QUIZ.questions:
        assert len(q.options) == len(q.explanations) >= 3
    assert "18" in lesson01.QUIZ.as_text()


# Exercise 3: the learner's features for one batch, against ftlib.selection.mean_pooled_features.
import torch  # noqa: E402

from ftlib.models import load_causal_lm, load_text_classifier  # noqa: E402
from ftlib.runtime import model_device, move_to  # noqa: E402
from ftlib.selection import mean_pooled_features  # noqa: E402

TEXTS = ["Loved it.", "Dull, slow and far too long; I nearly left before the end.", "Fine."]


@pytest.fixture(scope="module")
def feature_models():
    torch.manual_seed(0)
    encoder, enc_tok = load_text_classifier(catalog.MINILM, ["negative", "positive"])
    causal, causal_tok = load_causal_lm(catalog.TINY_LLAMA)  # random weights, the SmolLM2 tokenizer
    return {"encoder": (encoder.eval(), enc_tok), "causal LM": (causal.eval(), causal_tok)}


def make_features(slip=None):
    """Exercise 3's function as a learner writes it, with the slips the tests need."""
    def my_features(model, tokenizer, texts, max_length):
        if slip == "unanswered":
            return None
        if slip == "no padding":
            enc = tokenizer(texts, truncation=True, max_length=max_length, return_tensors="pt")
        else:
            enc = tokenizer(texts, padding=True, truncation=slip != "no truncation",
                            max_length=max_length if slip != "no truncation" else None, return_tensors="pt")
        enc = move_to(enc, model_device(model))
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        if slip == "logits":
            return out.logits if out.logits.dim() == 2 else out.logits.mean(1)
        if slip == "attribute":
            return out.last_hidden_state.mean(1)
        hidden = out.hidden_states[0 if slip == "embeddings" else -1]
        mask = enc["attention_mask"].unsqueeze(-1).float()
        if slip == "with padding":
            return hidden.mean(1)
        if slip == "first token":
            return hidden[:, 0]
        if slip == "sum":
            return (hidden * mask).sum(1)
        if slip == "padded length":
            return (hidden * mask).sum(1) / hidden.shape[1]
        if slip == "per token":
            return hidden * mask
        if slip == "whole batch":
            return (hidden * mask).sum((0, 1)) / mask.sum()
        return (hidden * mask).sum(1) / mask.sum(1)
    return my_features


def feature_args(models, slip=None, max_length=32):
    fn = make_features(slip)
    model, tok = next(iter(models.values()))
    try:
        mine = fn(model, tok, TEXTS, max_length)
    except Exception:  # noqa: BLE001 - in the lesson the cell stops here; the check gives the hint for it
        mine = torch.zeros(1)
    return mine, fn, models, TEXTS, max_length


def test_my_features_right_answer_passes(feature_models):
    lesson01.check_my_features(*feature_args(feature_models))
    lesson01.check_my_features(*feature_args(feature_models, max_length=128))
    for model, tok in feature_models.values():  # the reference agrees with the solution
        torch.testing.assert_close(mean_pooled_features(model, tok, TEXTS, 32), make_features()(model, tok, TEXTS, 32))


SLIPS = ("with padding", "first token", "sum", "padded length", "embeddings", "no truncation", "logits", "per token",
         "whole batch", "no padding", "attribute")


@pytest.fixture(scope="module")
def feature_hints(feature_models):
    return {slip: hint_of(lesson01.check_my_features, *feature_args(feature_models, slip)) for slip in SLIPS}


def test_my_features_hints_name_the_slip(feature_models, feature_hints):
    hint = feature_hints.get
    assert "padding counts" in hint("with padding")
    assert "first token" in hint("first token")
    assert "a sum" in hint("sum")
    assert "padded length" in hint("padded length")
    assert "wrong layer" in hint("embeddings")
    assert "the long one does not" in hint("no truncation")
    assert "logits" in hint("logits")
    assert "per *token*" in hint("per token")
    assert "single vector" in hint("whole batch")
    assert "different lengths" in hint("no padding")
    assert "hidden states of all its layers" in hint("attribute")
    assert "a tensor" in hint_of(lesson01.check_my_features, [0.0], lambda *a: [0.0], feature_models, TEXTS, 32)


def test_my_features_unanswered_says_so(feature_models, capsys):
    check(lesson01.check_my_features, *feature_args(feature_models, "unanswered"), strict=False)
    assert "Not answered yet" in capsys.readouterr().out
    # Answered for the first model, but a later call returns nothing: a hint, not a pass.
    assert "returns nothing" in hint_of(lesson01.check_my_features, torch.zeros(1), make_features("unanswered"),
                                        feature_models, TEXTS, 32)


def test_my_features_hints_never_give_the_answer(feature_hints):
    for slip, hint in feature_hints.items():
        for code in ("attention_mask", "unsqueeze", "hidden_states[-1]", ".sum(1)", "output_hidden_states=True",
                     "padding=True", "truncation=True"):
            assert code not in hint, (slip, hint)
