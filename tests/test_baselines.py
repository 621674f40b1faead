"""ftlib.baselines: the majority class and bag-of-words, the floors a fine-tuned model must beat."""
import pytest
import torch

from ftlib.baselines import BagOfWords, _words, majority_baseline

# Negation flips the meaning; "good" and "bad" alone are balanced across the classes, so a
# model needs the bigrams "not good" / "not bad" to get every training example right.
POSITIVE = ["good food", "good service", "a good film", "really good", "the food was not bad", "not bad service"]
NEGATIVE = ["bad food", "bad service", "a bad film", "really bad", "the food was not good", "not good service"]
TEXTS = POSITIVE + NEGATIVE
LABELS = [1] * len(POSITIVE) + [0] * len(NEGATIVE)


@pytest.fixture(scope="module")
def bow():
    torch.manual_seed(0)
    return BagOfWords().fit(TEXTS, LABELS)


def test_majority_baseline_by_hand():
    # train: 'pos' 3 times, 'neg' once -> always 'pos'; test: 2 of 5 are 'pos'
    assert majority_baseline(["pos", "neg", "pos", "pos"], ["pos", "neg", "neg", "pos", "neg"]) == pytest.approx(2 / 5)
    assert majority_baseline([1, 1, 0], [0, 0, 0, 1]) == pytest.approx(1 / 4)
    assert majority_baseline([0, 1, 1], [1, 1]) == 1.0


def test_words_are_lowercased_and_punctuation_is_a_token():
    assert _words("Not BAD, isn't it?") == ["not", "bad", ",", "isn't", "it", "?"]


def test_vocabulary_keeps_features_seen_in_min_count_texts(bow):
    assert "not good" in bow.vocab and "not bad" in bow.vocab  # bigrams, in 2 texts each
    assert "really good" not in bow.vocab  # a bigram in only one text
    assert list(bow.vocab) == sorted(bow.vocab)
    assert bow.linear.weight.shape == (2, len(bow.vocab))


def test_fits_a_separable_training_set(bow):
    assert bow.accuracy(TEXTS, LABELS) == 1.0
    assert bow.predict(TEXTS) == LABELS


def test_a_seen_bigram_decides_a_held_out_example(bow):
    # "not good" was only ever negative; "good" alone leans positive.
    assert bow.predict(["honestly, the film was not good", "the film was not bad"]) == [0, 1]


def test_without_bigrams_the_negation_is_lost():
    # The contrast: unigrams only cannot fit the training set, and read "not good" as positive
    # because "good" occurs more often in positive texts and "not" in both equally.
    torch.manual_seed(0)
    unigrams = BagOfWords(bigrams=False).fit(TEXTS, LABELS)
    assert unigrams.accuracy(TEXTS, LABELS) < 1.0
    assert unigrams.predict(["honestly, the film was not good"]) == [1]


def test_word_order_alone_is_invisible_to_a_bag_of_words():
    # The point of the baseline in lesson 07: each pair below has the same words in another
    # order and the opposite label. A bag of words sees the same features for both texts of a
    # pair, so it predicts the same class for both and is exactly at chance on such pairs.
    pairs = [("good, not bad", "bad, not good"), ("the food was good not bad", "the food was bad not good"),
             ("not bad service , good food", "not good service , bad food")]
    texts = [t for pair in pairs for t in pair]
    labels = [1, 0] * len(pairs)
    torch.manual_seed(0)
    model = BagOfWords(bigrams=False, min_count=1).fit(texts, labels)
    preds = model.predict(texts)
    assert all(preds[i] == preds[i + 1] for i in range(0, len(texts), 2))
    assert model.accuracy(texts, labels) == 0.5
    assert torch.equal(model._matrix(["good, not bad"]), model._matrix(["bad, not good"]))


def test_unseen_bigrams_leave_only_the_bag(bow):
    # With bigrams on, two orders of the same words still look the same when neither bigram
    # was seen in training.
    x, y = "service food", "food service"
    assert "service food" not in bow.vocab and "food service" not in bow.vocab
    assert torch.equal(bow._matrix([x]), bow._matrix([y]))
    assert bow._matrix([x]).count_nonzero() == 2  # 'service' and 'food'
    assert bow.predict([x]) == bow.predict([y])


def test_features_are_log_damped_counts(bow):
    row = bow._matrix(["good good good film"])[0]
    assert row[bow.vocab["good"]].item() == pytest.approx(torch.log1p(torch.tensor(3.0)).item())
    assert row[bow.vocab["film"]].item() == pytest.approx(torch.log1p(torch.tensor(1.0)).item())
    assert row.count_nonzero() == 2  # 'good good' and 'good film' were not seen twice in training
