"""ftlib.selection: vocabulary statistics counted right, and a linear probe that ranks features."""
import pytest
import torch
from datasets import Dataset
from transformers import AutoConfig, AutoModelForCausalLM

from ftlib import catalog
from ftlib.runtime import Runtime
from ftlib.selection import extract_features, linear_probe, train_logistic_regression, vocabulary_fit

import tiny

RUNTIME = Runtime(profile="smoke", device="cpu", precision="fp32")


def test_vocabulary_fit_counts_words_tokens_and_unknowns():
    tok = tiny.tokenizer()  # the lite encoder's WordPiece tokenizer
    fit = vocabulary_fit(tok, ["the film was good", "good"])
    assert (fit["texts"], fit["words"], fit["tokens"]) == (2, 5, 5)
    assert fit["unk_rate"] == fit["unk_word_rate"] == 0 and fit["tokens_per_word"] == 1
    # An emoji is not in BERT's vocabulary: one [UNK] token, in one word of three.
    fit = vocabulary_fit(tok, ["good 🦜 film"])
    assert fit["unk_tokens"] == 1 and fit["unk_word_rate"] == pytest.approx(1 / 3)
    assert fit["unk_rate"] == pytest.approx(1 / fit["tokens"])
    # Korean splits into many pieces per word in an English vocabulary.
    assert vocabulary_fit(tok, ["곱하기 얼마인가요"])["tokens_per_word"] > 3


def test_vocabulary_fit_refuses_bad_input():
    with pytest.raises(ValueError, match="non-empty list of strings"):
        vocabulary_fit(tiny.tokenizer(), [])
    with pytest.raises(ValueError, match="non-empty list of strings"):
        vocabulary_fit(tiny.tokenizer(), [1, 2])


def test_extract_features_ignores_padding():
    tok, model = tiny.tokenizer(), tiny.classifier()
    alone = extract_features(model, tok, ["good film"], RUNTIME)
    padded = extract_features(model, tok, ["good film", "the film was very very good and fine"], RUNTIME)
    assert alone.shape == (1, model.config.hidden_size)
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=1e-4)


def test_extract_features_works_for_a_causal_lm():
    config = AutoConfig.for_model(vocab_size=30522, **catalog.TINY_LLAMA.config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    tok = tiny.tokenizer()
    assert extract_features(model, tok, ["good film", "bad"], RUNTIME).shape == (2, 64)


def test_logistic_regression_separates_separable_points_and_folds_the_scaling():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g) * torch.tensor([1.0, 100.0, 1.0, 1.0, 1.0]) + 50
    y = (x[:, 0] - 50 > 0).long()
    layer = train_logistic_regression(x, y, 2)
    assert (layer(x).argmax(-1) == y).float().mean() > 0.97  # raw features in, scaling folded in


def test_linear_probe_ranks_informative_features_above_noise():
    tok = tiny.tokenizer()
    train, evalset = tiny.dataset(64, seed=0), tiny.dataset(48, seed=1)
    model = tiny.classifier()  # random weights, but mean-pooled embeddings still show which words occur
    result = linear_probe(model, tok, train, evalset, RUNTIME, max_length=32)
    assert result["features"] == 32 and result["train_examples"] == 64 and result["eval_examples"] == 48
    assert result["accuracy"] > 0.7 and result["train_accuracy"] > 0.9
    # The same texts with labels that have nothing to do with them: near chance on held-out data.
    noise = lambda ds, k: Dataset.from_dict({"text": ds["text"], "label": [(i * k // 7) % 2 for i in range(len(ds))]})
    assert linear_probe(model, tok, noise(train, 3), noise(evalset, 5), RUNTIME, max_length=32)["accuracy"] < 0.7


def test_linear_probe_names_missing_columns():
    data = Dataset.from_dict({"sentence": ["a"], "label": [0]})
    with pytest.raises(ValueError, match="text_column="):
        linear_probe(tiny.classifier(), tiny.tokenizer(), data, data, RUNTIME)
