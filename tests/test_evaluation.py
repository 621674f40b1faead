"""ftlib.evaluation: confusion matrix, macro metrics worked by hand, evaluate and predict."""
import math
import os
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from ftlib import catalog, models
from ftlib.data import make_loader, tokenize
from ftlib.evaluation import classification_metrics, confusion_matrix, evaluate, predict
from ftlib.runtime import Runtime

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CPU = Runtime(profile="smoke", device="cpu", precision="fp32")
TEXTS = ["good film", "the food was awful", "great", "not bad at all, really quite fine",
         "poor service", "fine"]
LABELS = [1, 0, 1, 1, 0, 1]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(models.resolve(catalog.MINILM))


@pytest.fixture(scope="module")
def classifier(tokenizer):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2,
                        initializer_range=0.5,  # spread-out outputs, not all alike
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    model = BertForSequenceClassification(config)
    # Move the decision boundary between the 3rd and 4th text so that predictions are varied.
    diff = one_by_one(model, tokenizer, TEXTS) @ torch.tensor([-1.0, 1.0])
    low, high = diff.sort().values[2:4]
    with torch.no_grad():
        model.classifier.bias[1] -= (low + high) / 2
    return model


def one_by_one(model, tokenizer, texts):
    """Logits computed one unpadded text at a time: the reference for batched code."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in texts])


# --- confusion matrix and metrics -----------------------------------------------------------

Y_TRUE = [0, 0, 0, 0, 1, 1, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 0, 2, 2]


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    expected = torch.tensor([[2, 1, 1],   # true 0: two right, one taken for 1, one for 2
                             [1, 1, 0],   # true 1: one taken for 0, one right
                             [0, 0, 2]])  # true 2: both right
    assert torch.equal(cm, expected)


def test_confusion_matrix_has_room_for_unseen_classes():
    cm = confusion_matrix([0, 1], [1, 1], 4)
    assert cm.shape == (4, 4)
    assert cm.sum() == 2 and cm[0, 1] == 1 and cm[1, 1] == 1


def test_classification_metrics_by_hand():
    # predicted as 0: 3 (2 right), as 1: 2 (1 right), as 2: 3 (2 right); true 0: 4, 1: 2, 2: 2
    # class 0: P = 2/3, R = 2/4 = 1/2, F1 = 2 * (2/3)(1/2) / (2/3 + 1/2) = 4/7
    # class 1: P = 1/2, R = 1/2,        F1 = 1/2
    # class 2: P = 2/3, R = 2/2 = 1,    F1 = 2 * (2/3)(1) / (2/3 + 1) = 4/5
    # accuracy = 5/8; macro P = (2/3 + 1/2 + 2/3) / 3 = 11/18; macro R = (1/2 + 1/2 + 1) / 3 = 2/3
    # macro F1 = (4/7 + 1/2 + 4/5) / 3 = 131/210
    m = classification_metrics(Y_TRUE, Y_PRED, 3)
    assert set(m) == {"accuracy", "f1_macro", "precision_macro", "recall_macro"}
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision_macro"] == pytest.approx(11 / 18)
    assert m["recall_macro"] == pytest.approx(2 / 3)
    assert m["f1_macro"] == pytest.approx(131 / 210)
    assert classification_metrics(Y_TRUE, Y_PRED) == m  # num_labels inferred: 3


def test_classes_absent_from_y_true_are_left_out_of_the_macro_average():
    # Class 2 is predicted once but never true: it is not averaged in.
    # class 0: P = 1/1, R = 1/2, F1 = 2/3;  class 1: P = 1/2, R = 1/2, F1 = 1/2
    # macro over {0, 1}: F1 = 7/12, P = 3/4, R = 1/2  (with class 2 as a zero: F1 = 7/18)
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 2], num_labels=3)
    assert m["accuracy"] == pytest.approx(1 / 2)
    assert m["f1_macro"] == pytest.approx(7 / 12)
    assert m["precision_macro"] == pytest.approx(3 / 4)
    assert m["recall_macro"] == pytest.approx(1 / 2)
    # a label never seen at all changes nothing
    assert classification_metrics([0, 0, 1, 1], [0, 1, 1, 2], num_labels=5) == pytest.approx(m)


def test_perfect_and_all_wrong_predictions():
    assert classification_metrics([0, 1, 1], [0, 1, 1]) == pytest.approx(
        {"accuracy": 1.0, "f1_macro": 1.0, "precision_macro": 1.0, "recall_macro": 1.0})
    assert classification_metrics([0, 1], [1, 0]) == pytest.approx(
        {"accuracy": 0.0, "f1_macro": 0.0, "precision_macro": 0.0, "recall_macro": 0.0})


def test_metrics_accept_tensors():
    assert classification_metrics(torch.tensor(Y_TRUE), torch.tensor(Y_PRED), 3) == \
        classification_metrics(Y_TRUE, Y_PRED, 3)


# --- evaluate -------------------------------------------------------------------------------

def test_evaluate_matches_a_manual_computation(classifier, tokenizer):
    ds = tokenize(Dataset.from_dict({"text": TEXTS, "label": LABELS}), tokenizer, max_length=32)
    loader = make_loader(ds, tokenizer, batch_size=4, shuffle=False)  # batches of 4 and 2
    classifier.train()
    metrics = evaluate(classifier, loader, CPU)
    assert not classifier.training  # evaluate switches dropout off

    logits = one_by_one(classifier, tokenizer, TEXTS)
    y = torch.tensor(LABELS)
    loss = torch.nn.functional.cross_entropy(logits, y)  # mean over the 6 examples, not over 2 batches
    preds = logits.argmax(-1)
    assert metrics["loss"] == pytest.approx(loss.item(), rel=1e-4)
    assert metrics["accuracy"] == pytest.approx((preds == y).float().mean().item())
    assert metrics["f1_macro"] == pytest.approx(classification_metrics(y, preds, 2)["f1_macro"])


def test_evaluate_weights_batches_by_their_size(tokenizer):
    # A fake classifier whose loss is 1.0 on the first batch and 4.0 on the second.
    # Batches of 4 and 2 examples: the mean over examples is (4 * 1 + 2 * 4) / 6 = 2.
    losses = iter([1.0, 4.0])

    class Fake(torch.nn.Module):
        config = SimpleNamespace(num_labels=2)

        def forward(self, input_ids, labels, **_):
            logits = torch.zeros(len(labels), 2)
            logits[:, 1] = 1.0  # always predicts 1
            return SimpleNamespace(loss=torch.tensor(next(losses)), logits=logits)

    ds = tokenize(Dataset.from_dict({"text": TEXTS, "label": LABELS}), tokenizer, max_length=32)
    metrics = evaluate(Fake(), make_loader(ds, tokenizer, batch_size=4, shuffle=False), CPU)
    assert metrics["loss"] == pytest.approx(2.0)
    assert metrics["accuracy"] == pytest.approx(4 / 6)  # four of the six labels are 1


# --- predict --------------------------------------------------------------------------------

class LengthModel(torch.nn.Module):
    """Logits (0, n - 4) for a text of n tokens: 'long' beyond 4 tokens, 'short' below."""

    config = SimpleNamespace(id2label={0: "short", 1: "long"})

    def forward(self, input_ids, attention_mask, **_):
        n = attention_mask.sum(1).float()
        return SimpleNamespace(logits=torch.stack([torch.zeros_like(n), n - 4], dim=1))


def test_predict_label_names_and_probabilities_in_input_order(tokenizer):
    texts = ["a", "a b c d e f", "", "a b c d e f g h", "a b c"]  # tokens: words + [CLS], [SEP]
    labels, probs = predict(LengthModel(), tokenizer, texts, CPU, batch_size=2)
    assert labels == ["short", "long", "short", "long", "long"]
    # n = 3, 8, 2, 10, 5 tokens: margin |n - 4| = 1, 4, 2, 6, 1; probability sigmoid(margin)
    expected = [1 / (1 + math.exp(-m)) for m in (1, 4, 2, 6, 1)]
    assert probs == pytest.approx(expected, rel=1e-6)


def test_predict_truncates_to_max_length(tokenizer):
    labels, probs = predict(LengthModel(), tokenizer, ["a b c d e f g h"], CPU, max_length=5)
    assert probs == pytest.approx([1 / (1 + math.exp(-1))])  # 5 tokens: margin 1
    assert labels == ["long"]


def test_predict_with_a_real_classifier(classifier, tokenizer):
    labels, probs = predict(classifier, tokenizer, TEXTS, CPU, batch_size=4)
    p = one_by_one(classifier, tokenizer, TEXTS).softmax(-1)
    assert labels == [classifier.config.id2label[int(i)] for i in p.argmax(-1)]
    assert set(labels) == {"negative", "positive"}  # the order of varied predictions is checked
    torch.testing.assert_close(torch.tensor(probs), p.max(-1).values, rtol=1e-4, atol=1e-5)
    assert all(0.5 <= q <= 1.0 for q in probs)
    assert len(labels) == len(probs) == len(TEXTS)
