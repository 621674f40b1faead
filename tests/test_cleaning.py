"""ftlib.cleaning: duplicates, leakage and padding counts, against brute force and real loaders."""
import itertools
import random

import pytest
from datasets import Dataset

from ftlib import cleaning
from ftlib.cleaning import (Leak, Pair, clean_text, find_exact_duplicates, find_leakage, find_near_duplicates,
                            jaccard, measure_padding, normalize_text, padding_stats, word_set)
from ftlib.data import DataError, make_loader, tokenize

import tiny


def test_clean_and_normalize():
    assert clean_text("  Great\u00a0 film\n\tand ﬁne ") == "Great film and fine"  # NBSP, tab, ligature
    assert normalize_text("Can't FAULT it!!") == normalize_text("cant fault it") == "cant fault it"
    assert normalize_text("Can\u2019t fault it.") == "cant fault it"
    assert normalize_text("snake_case, (brackets) & dash-es") == "snake case brackets dash es"
    assert normalize_text("맛있어요! 정말 맛있어요.") == "맛있어요 정말 맛있어요"  # Hangul is kept
    assert normalize_text("Ｆｕｌｌ ｗｉｄｔｈ") == "full width"


def test_word_sets_and_jaccard():
    assert word_set("The film, the FILM!") == {"the", "film"}
    assert word_set("a b c d", k=2) == {"a b", "b c", "c d"}
    assert word_set("a", k=3) == {"a"} and word_set("", k=2) == frozenset()
    assert jaccard(word_set("can't fault it"), word_set("Really can't fault it.")) == 0.75
    assert jaccard(frozenset(), frozenset()) == 0.0
    assert jaccard(frozenset("ab"), frozenset("ab")) == 1.0


def test_exact_duplicates_are_grouped_in_order():
    texts = ["Great film!", "Bad food.", "great   film", "other", "bad FOOD", "GREAT FILM."]
    assert find_exact_duplicates(texts) == [[0, 2, 5], [1, 4]]
    assert find_exact_duplicates(["a", "b"]) == []


def _random_texts(n, seed):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(12)]
    return [" ".join(rng.choices(words, k=rng.randint(1, 8))) for _ in range(n)]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 1.0])
def test_near_duplicates_match_brute_force(threshold):
    texts = _random_texts(120, seed=1)
    sets = [word_set(t) for t in texts]
    expected = {(i, j) for i, j in itertools.combinations(range(len(texts)), 2)
                if jaccard(sets[i], sets[j]) >= threshold}
    found = find_near_duplicates(texts, threshold=threshold)
    assert {(p.first, p.second) for p in found} == expected and expected
    assert all(p.first < p.second for p in found)
    assert [p.similarity for p in found] == sorted((p.similarity for p in found), reverse=True)


def test_similarity_exactly_at_the_threshold_is_found():
    # 7 shared words of 25: 0.28 * 25 is 7.000000000000001 in floating point; a prefix one word too
    # short would hold only the 18 words that b lacks, and the pair would be missed
    words = [f"w{i:02d}" for i in range(25)]
    a, b = " ".join(words), " ".join(words[:7])
    assert jaccard(word_set(a), word_set(b)) == 0.28
    assert find_near_duplicates([a, b], threshold=0.28) == [Pair(0, 1, 0.28)]
    assert find_leakage([a], [b], threshold=0.28) == [Leak(0, 0, 0.28)]


def test_shingles_separate_reordered_texts():
    a, b = "service was fine the burger made it great", "the burger was fine service made it great"
    assert find_near_duplicates([a, b], threshold=0.9) == [Pair(0, 1, 1.0)]  # the same words
    assert find_near_duplicates([a, b], threshold=0.9, k=2) == []  # but not the same word pairs


def test_leakage_exact_and_near():
    train = ["The plot was great.", "Cold soup, rude staff.", "Battery lasts two days."]
    test = ["cold soup rude staff", "Brand new text here.", "Battery lasts two whole days!"]
    assert find_leakage(train, test) == [Leak(1, 0, 1.0)]
    near = find_leakage(train, test, threshold=0.7)
    assert [(l.train_index, l.test_index) for l in near] == [(1, 0), (2, 2)]
    assert near[1].similarity == 0.8  # 4 shared words of 5
    # datasets and dict records work too, and a missing column is named
    ds_train, ds_test = Dataset.from_dict({"text": train}), Dataset.from_dict({"text": test})
    assert find_leakage(ds_train, ds_test) == [Leak(1, 0, 1.0)]
    assert find_leakage([{"q": t} for t in train], [{"q": t} for t in test], column="q") == [Leak(1, 0, 1.0)]
    with pytest.raises(DataError, match="no column 'txt'"):
        find_leakage(ds_train, ds_test, column="txt")
    with pytest.raises(ValueError, match="threshold"):
        find_leakage(train, test, threshold=0)


def test_leakage_matches_brute_force():
    train, test = _random_texts(80, seed=2), _random_texts(40, seed=3)
    expected = {(i, j) for i in range(80) for j in range(40) if jaccard(word_set(train[i]), word_set(test[j])) >= 0.6}
    assert {(l.train_index, l.test_index) for l in find_leakage(train, test, threshold=0.6)} == expected and expected


def test_padding_stats_by_hand():
    lengths = [2, 4, 6, 8]
    fixed = padding_stats(lengths, 2, max_length=10)
    assert (fixed.real, fixed.total, fixed.batches) == (20, 40, 2) and fixed.fraction_real == 0.5
    plain = padding_stats(lengths, 2, group_by_length=False, shuffle=False)
    assert (plain.real, plain.total) == (20, 2 * 4 + 2 * 8)  # batches [2, 4] and [6, 8]
    assert "real tokens" in str(plain) and "% padding" in str(plain)
    with pytest.raises(ValueError, match="truncation"):
        padding_stats([5, 12], 2, max_length=10)


def test_grouping_by_length_wastes_less():
    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(500)]
    grouped = padding_stats(lengths, 16)
    plain = padding_stats(lengths, 16, group_by_length=False)
    fixed = padding_stats(lengths, 16, max_length=128)
    assert grouped.real == plain.real == fixed.real == sum(lengths)
    assert grouped.fraction_real > plain.fraction_real > fixed.fraction_real


def test_padding_stats_agree_with_the_real_loader():
    tok = tiny.tokenizer()
    ds = tokenize(tiny.dataset(70), tok, max_length=32)
    lengths = [len(ids) for ids in ds["input_ids"]]
    for group in (True, False):
        loader = make_loader(ds, tok, batch_size=8, shuffle=True, seed=3, group_by_length=group)
        assert measure_padding(loader) == padding_stats(lengths, 8, group_by_length=group, seed=3)


def test_all_is_exported():
    assert set(cleaning.__all__) <= set(dir(cleaning))
