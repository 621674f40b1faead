"""ftlib.calibration: reliability bins and ECE, worked by hand."""
import math

import pytest
import torch

from ftlib.calibration import (ReliabilityBins, confidence_and_correct, expected_calibration_error,
                               reliability_bins)


def test_bins_by_hand():
    # Two bins: [0, 0.5) and [0.5, 1]. Bin 1 holds 0.6, 0.8, 1.0 (two right); bin 0 holds 0.2 (wrong).
    bins = reliability_bins([0.6, 0.8, 1.0, 0.2], [1, 0, 1, 0], n_bins=2)
    assert bins.edges == (0.0, 0.5, 1.0)
    assert bins.counts == (1, 3)
    assert bins.accuracy[0] == 0.0 and math.isclose(bins.accuracy[1], 2 / 3)
    assert math.isclose(bins.confidence[0], 0.2) and math.isclose(bins.confidence[1], 0.8)
    # ECE = 1/4 * |0 - 0.2| + 3/4 * |2/3 - 0.8| = 0.05 + 0.1
    assert math.isclose(bins.ece, 0.15)


def test_empty_bins_are_nan_and_do_not_count():
    bins = reliability_bins([0.95, 0.95], [True, True], n_bins=10)
    assert bins.counts[9] == 2 and sum(bins.counts) == 2
    assert math.isnan(bins.accuracy[0]) and math.isnan(bins.confidence[0])
    assert math.isclose(bins.ece, 0.05)


def test_confidence_one_goes_in_last_bin_and_zero_in_first():
    bins = reliability_bins([1.0, 0.0], [1, 0], n_bins=5)
    assert bins.counts == (1, 0, 0, 0, 1)
    assert bins.ece == 0.0


def test_perfectly_calibrated_predictions_have_small_ece():
    g = torch.Generator().manual_seed(0)
    confidence = 0.5 + 0.5 * torch.rand(20000, generator=g)
    correct = torch.rand(20000, generator=g) < confidence  # right exactly as often as it claims
    assert reliability_bins(confidence, correct).ece < 0.02
    overconfident = reliability_bins(confidence, torch.rand(20000, generator=g) < confidence - 0.2)
    assert overconfident.ece == pytest.approx(0.2, abs=0.02)


def test_ece_from_probabilities_matches_bins():
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1])
    confidence, correct = confidence_and_correct(probs, labels)
    assert torch.allclose(confidence, torch.tensor([0.9, 0.7, 0.6, 0.8], dtype=torch.float64))
    assert correct.tolist() == [True, False, True, True]
    expected = reliability_bins(confidence, correct, n_bins=10).ece
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)
    # by hand: bins 6 (0.6 right), 7 (0.7 wrong), 8 (0.8 right), 9 (0.9 right)
    assert expected == pytest.approx((0.4 + 0.7 + 0.2 + 0.1) / 4)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="logits"):
        reliability_bins([1.5, 0.2], [1, 0])
    with pytest.raises(ValueError, match="one confidence per prediction"):
        reliability_bins([0.5, 0.2], [1])
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins([0.5], [1], n_bins=0)
    with pytest.raises(ValueError, match="one row of probabilities per label"):
        confidence_and_correct(torch.ones(3, 2) / 2, torch.tensor([0, 1]))


def test_bins_are_frozen():
    bins = reliability_bins([0.7], [1], n_bins=2)
    assert isinstance(bins, ReliabilityBins)
    with pytest.raises(Exception):
        bins.counts = (0, 0)


def test_best_temperature_recovers_the_scale_of_overconfident_logits():
    from ftlib.calibration import best_temperature

    g = torch.Generator().manual_seed(0)
    z = 2 * torch.randn(20000, 3, generator=g)  # calibrated logits: the labels are drawn from softmax(z)
    labels = torch.multinomial(z.softmax(-1), 1, generator=g).squeeze(1)
    assert abs(best_temperature(3 * z, labels) - 3.0) < 0.15  # three times too confident: T close to 3
    assert abs(best_temperature(z, labels) - 1.0) < 0.05
