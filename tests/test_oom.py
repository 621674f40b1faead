"""Out-of-memory recovery: a simulated GPU OOM halves the micro-batch and keeps the effective batch."""
import dataclasses

import pytest
import torch
from datasets import Dataset

import tiny
from ftlib.data import make_loader, tokenize
from ftlib.runtime import get_runtime
from ftlib.training import TrainConfig, fit


class RunsOutOfMemory(torch.nn.Module):
    """Wraps a model; pretends the GPU is full whenever a forward pass sees more than `limit` examples."""

    def __init__(self, model, limit: int):
        super().__init__()
        self.model, self.limit, self.sizes = model, limit, []

    def forward(self, **batch):
        self.sizes.append(len(batch["labels"]))
        if len(batch["labels"]) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.model(**batch)


@pytest.fixture(scope="module")
def data():
    tok = tiny.tokenizer()
    texts = [f"the film was {w}" for w in ["good", "bad", "great", "awful"] * 4]
    return tok, tokenize(Dataset.from_dict({"text": texts, "label": [0, 1, 0, 1] * 4}), tok, max_length=16)


def train(model, data, accum=1, batch_size=8):
    tok, ds = data
    loader = make_loader(ds, tok, batch_size=batch_size, shuffle=False, group_by_length=False)
    # fp32 on any device: the test compares weights to 1e-4, which fp16 rounding would exceed on a GPU
    runtime = dataclasses.replace(get_runtime("smoke", seed=0), precision="fp32")
    return fit(model, loader, runtime=runtime,
               config=TrainConfig(epochs=2, lr=1e-3, warmup_ratio=0.0, grad_accum_steps=accum, progress=False))


@pytest.mark.parametrize("accum", [1, 2])
def test_oom_splits_the_batch_and_keeps_the_effective_batch(data, accum, capsys):
    reference = tiny.classifier(dropout=0.0)
    train(reference, data, accum)
    wrapped = RunsOutOfMemory(tiny.classifier(dropout=0.0), limit=3)  # batches of 8 fit only as 4 x 2
    history = train(wrapped, data, accum)

    assert "Out of memory" in capsys.readouterr().out
    assert max(s for s in wrapped.sizes[-4:]) == 2  # it settled on micro-batches of 2
    torch.testing.assert_close(wrapped.model.classifier.weight, reference.classifier.weight, rtol=1e-4, atol=1e-6)
    assert len(history) == 2 and all(r["train_loss"] > 0 for r in history)


def test_oom_with_one_example_per_piece_says_what_to_do(data):
    with pytest.raises(torch.OutOfMemoryError, match="lower max_length"):
        train(RunsOutOfMemory(tiny.classifier(dropout=0.0), limit=0), data)
