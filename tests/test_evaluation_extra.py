"""ftlib.evaluation additions for lesson 07 (probabilities, worst errors, seed summaries) and the new plots."""
import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from ftlib.calibration import reliability_bins
from ftlib.evaluation import evaluate, predict_proba, seed_summary, worst_errors
from ftlib.plots import plot_confusion_matrix, plot_learning_gap, plot_reliability
from ftlib.runtime import Runtime
from ftlib.training import History

import tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CPU = Runtime(profile="smoke", device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def test_predict_proba_rows_follow_the_dataset_order(tok):
    model = tiny.classifier(seed=0).eval()
    ds = tiny.dataset(20, seed=3)
    _, loader = tiny.loaders(tok, n_train=8, n_eval=20, seed=2)  # evaluation loader: batches sorted by length
    order = [i for b in loader.batch_sampler.batches() for i in b]
    assert order != sorted(order)  # the loader really does reorder, so the test can fail
    probs, labels = predict_proba(model, loader, CPU)
    assert probs.shape == (20, 2) and torch.allclose(probs.sum(-1), torch.ones(20))
    assert labels.tolist() == tiny.dataset(20, seed=3)["label"]
    with torch.no_grad():  # row i is example i, computed on its own
        for i in (0, 7, 19):
            enc = tok([ds[i]["text"]], return_tensors="pt")
            assert torch.allclose(model(**enc).logits.softmax(-1)[0], probs[i], atol=1e-5)
    # and the accuracy agrees with evaluate
    acc = (probs.argmax(-1) == labels).double().mean().item()
    assert acc == pytest.approx(evaluate(model, loader, CPU)["accuracy"])


def test_predict_proba_with_a_plain_dataloader():
    class Toy(torch.nn.Module):
        config = None

        def forward(self, x, labels):
            return type("Out", (), {"logits": torch.stack([x, -x], -1)})()

    batches = [{"x": torch.tensor([0.0, 1.0]), "labels": torch.tensor([0, 1])}]
    probs, labels = predict_proba(Toy(), batches, CPU)
    assert torch.allclose(probs[0], torch.tensor([0.5, 0.5])) and labels.tolist() == [0, 1]


def test_worst_errors_are_the_confident_mistakes():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.7, 0.3]])
    labels = torch.tensor([0, 0, 1, 0, 0])  # wrong: 1 (0.8), 2 (0.6), 3 (0.95)
    texts = ["a", "b", "c", "d", "e"]
    errors = worst_errors(probs, labels, texts, ["neg", "pos"], k=2)
    assert [e["index"] for e in errors] == [3, 1]
    assert errors[0] == {"index": 3, "text": "d", "true": "neg", "predicted": "pos",
                         "confidence": pytest.approx(0.95)}
    assert len(worst_errors(probs, labels, texts, ["neg", "pos"], k=10)) == 3
    assert worst_errors(probs, probs.argmax(-1), texts, ["neg", "pos"]) == []
    with pytest.raises(ValueError, match="same"):
        worst_errors(probs, labels, texts[:3], ["neg", "pos"])


def test_seed_summary_by_hand():
    s = seed_summary([0.80, 0.82, 0.84])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.82)
    assert s["std"] == pytest.approx(0.02)  # sample standard deviation: sqrt((0.02² + 0 + 0.02²) / 2)
    assert (s["min"], s["max"]) == (pytest.approx(0.80), pytest.approx(0.84))
    with pytest.raises(ValueError, match="at least two seeds"):
        seed_summary([0.8])


def test_plots_draw_from_data():
    fig = plot_confusion_matrix([[5, 1], [2, 7]], ["negative", "positive"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["5", "1", "2", "7"]
    bins = reliability_bins([0.6, 0.8, 0.95, 0.55], [1, 0, 1, 1], n_bins=5)
    fig = plot_reliability(bins, label="fine-tuned")
    assert f"ECE {bins.ece:.3f}" in fig.axes[0].get_legend_handles_labels()[1][1]
    history = History([{"epoch": e, "train_loss": 1 / e, "eval_loss": 0.5 + 0.05 * e} for e in range(1, 5)])
    history.best_epoch, history.stopped_early = 2, True
    fig = plot_learning_gap(history, max_epochs=10)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "best epoch (2)" in labels and "epochs not run (6)" in labels
    import matplotlib.pyplot as plt
    plt.close("all")
