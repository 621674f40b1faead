"""ftlib.regularization: dropout set on every layer, labels flipped by an exact fraction."""
import pytest
import torch

from ftlib.regularization import flip_labels, set_dropout

import tiny


def test_set_dropout_changes_every_layer_and_training_sees_it():
    model = tiny.classifier(seed=0, dropout=0.1)
    n = set_dropout(model, 0.5)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert n == len(layers) > 0 and all(m.p == 0.5 for m in layers)
    set_dropout(model, 0.0)
    model.train()
    x = {"input_ids": torch.tensor([[101, 2204, 2143, 102]])}
    assert torch.equal(model(**x).logits, model(**x).logits)  # no dropout left: training mode is deterministic
    with pytest.raises(ValueError, match="dropout probability"):
        set_dropout(model, 1.0)


def test_flip_labels_flips_exactly_the_fraction_to_another_class():
    labels = [i % 3 for i in range(50)]
    noisy, flipped = flip_labels(labels, 0.2, num_labels=3, seed=1)
    assert len(flipped) == 10 and flipped == sorted(set(flipped))
    changed = [i for i, (a, b) in enumerate(zip(labels, noisy)) if a != b]
    assert changed == flipped  # every flipped label really changed, nothing else did
    assert all(0 <= y < 3 for y in noisy)
    assert flip_labels(labels, 0.2, num_labels=3, seed=1) == (noisy, flipped)  # seeded
    assert flip_labels(labels, 0.2, num_labels=3, seed=2)[1] != flipped
    assert flip_labels(labels, 0.0, num_labels=3) == (labels, [])
    with pytest.raises(ValueError, match="fraction"):
        flip_labels(labels, 1.5, num_labels=3)
    with pytest.raises(ValueError, match="two classes"):
        flip_labels(labels, 0.2, num_labels=1)
