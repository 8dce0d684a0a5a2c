"""The n-gram model beside the string classifier's networks: its features, TF-IDF rows,
gradient, fit, files, and how the classifier averages it in."""

import numpy as np
import pytest

from conftest import numeric_grad
from rnnkit.data import dna_motif_dataset
from rnnkit.tasks import classify
from rnnkit.tasks.classify import SequenceClassifier
from rnnkit.tasks.ngram_model import NgramModel, _grams


def test_each_ngram_is_counted_once_per_occurrence_with_its_own_key():
    V = 3
    m = NgramModel(V)
    rows, keys, counts = m._counts([np.array([1, 2, 1, 2]), np.array([2])])
    got = {(int(r), int(k)): int(c) for r, k, c in zip(rows, keys, counts)}
    unigram = lambda a: a                                               # noqa: E731
    bigram = lambda a, b: V + a + b * V                                 # noqa: E731
    trigram = lambda a, b, c: V + V ** 2 + a + b * V + c * V ** 2       # noqa: E731
    fourgram = V + V ** 2 + V ** 3 + 1 + 2 * V + 1 * V ** 2 + 2 * V ** 3
    assert got == {(0, unigram(1)): 2, (0, unigram(2)): 2, (0, bigram(1, 2)): 2, (0, bigram(2, 1)): 1,
                   (0, trigram(1, 2, 1)): 1, (0, trigram(2, 1, 2)): 1, (0, fourgram): 1, (1, unigram(2)): 1}
    # words: n-grams up to 2 only
    assert len(NgramModel(V, word=True)._counts([np.array([1, 2, 1, 2])])[0]) == 4


def test_placed_trigrams_carry_their_window():
    seq = np.arange(25) % 4
    rows, keys = _grams([seq], 4, 4, placed=True)
    placed = keys[keys >= sum(4 ** n for n in range(1, 5))]
    assert len(placed) == 23                                            # one per 3-gram start
    windows = (placed - sum(4 ** n for n in range(1, 5))) // 4 ** 3
    assert list(np.bincount(windows)) == [10, 10, 3]                   # starts 0-9, 10-19, 20-22


def test_tfidf_rows_follow_the_formula():
    seqs = [np.array([1, 1, 2]), np.array([2, 3]), np.array([1, 3, 3, 3])]
    m = NgramModel(4).fit(seqs, [0, 1, 0], 2)
    rows, cols, vals = m._matrix(seqs)
    for r, s in enumerate(seqs):
        _, keys, counts = m._counts([s])
        x = {int(k): (1 + np.log(c)) * (np.log(4 / (1 + sum(k in set(m._counts([t])[1]) for t in seqs))) + 1)
             for k, c in zip(keys, counts)}
        norm = np.sqrt(sum(v * v for v in x.values()))
        got = {int(m.keys_[c]): v for c, v in zip(cols[rows == r], vals[rows == r])}
        assert got.keys() == x.keys()
        for k in x:
            assert got[k] == pytest.approx(x[k] / norm, rel=1e-12)


def test_gradient_of_the_objective_matches_finite_differences():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 5, size=int(rng.integers(3, 9))) for _ in range(12)]
    y = rng.integers(0, 3, size=12)
    m = NgramModel(5).fit(seqs, y, 3)
    f = m._objective(m._matrix(seqs), y, np.array([1.0, 2.0, 0.5]))
    W = rng.standard_normal(m.W_.shape)
    b = rng.standard_normal(3)
    _, gW, gb = f(W, b)
    np.testing.assert_allclose(gW, numeric_grad(lambda: f(W, b)[0], W), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gb, numeric_grad(lambda: f(W, b)[0], b), rtol=1e-6, atol=1e-9)


def test_the_fit_finds_a_motif_anywhere_and_survives_a_save():
    X, y = dna_motif_dataset(300, length=60, early=0.8, seed=1)
    alphabet = "ACGT"
    enc = [np.array([1 + alphabet.index(c) for c in s]) for s in X]
    m = NgramModel(5, placed=True).fit(enc[:200], y[:200], 2)
    assert np.mean(m.predict_proba(enc[200:]).argmax(axis=1) == np.asarray(y[200:])) >= 0.85   # chance 0.5
    back = NgramModel.from_saved(m.config(), m.arrays())
    np.testing.assert_array_equal(back.predict_proba(enc[200:]), m.predict_proba(enc[200:]))
    bad = dict(m.arrays(), W=m.W_[:-1])
    with pytest.raises(ValueError, match="do not fit"):
        NgramModel.from_saved(m.config(), bad)


def test_the_classifier_averages_its_networks_with_the_ngram_model(tmp_path):
    X, y = dna_motif_dataset(120, length=40, seed=2)
    clf = SequenceClassifier(hidden_size=8, ensemble=2, seed=0).fit(X[:90], y[:90], max_steps=20)
    assert clf.ngram_model_ is not None and clf.ngram_model_.placed          # aligned DNA windows
    enc = clf._encode(X[90:], "test")
    networks = np.exp(clf._logits(enc, models=[clf.model_] + clf.members_))
    w = clf.ngram_weight_          # 90 rows hold no validation part: the two networks are cross-fitted
    assert clf.companion_weight_from_ == "cross-fitting" and len(clf.members_) == 1
    np.testing.assert_allclose(clf.predict_proba(X[90:]),
                               (1 - w) * networks + w * clf.ngram_model_.predict_proba(enc), rtol=1e-9)
    clf.save(tmp_path / "run")
    assert (tmp_path / "run" / "ngrams" / "config.json").is_file()
    loaded = SequenceClassifier.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict_proba(X[90:]), clf.predict_proba(X[90:]))
    off = SequenceClassifier(hidden_size=8, ensemble=1, ngrams="off").fit(X[:90], y[:90], max_steps=5)
    assert off.ngram_model_ is None
    with pytest.raises(ValueError, match="ngrams='on' needs string inputs"):
        SequenceClassifier(ngrams="on").fit([np.zeros(5), np.ones(5)] * 5, [0, 1] * 5, max_steps=1)
    with pytest.raises(ValueError, match="ngrams"):
        SequenceClassifier(ngrams="yes")


def test_add_scaled_rows_adds_every_pair_like_add_at():
    from rnnkit import fast
    from rnnkit.tasks import ngram_model

    rng = np.random.default_rng(1)
    out = rng.standard_normal((7, 5))
    src = rng.standard_normal((9, 5))
    o, s = rng.integers(0, 7, 40), rng.integers(0, 9, 40)      # repeated indices add up
    scale = rng.standard_normal(40)
    want = out.copy()
    np.add.at(want, o, src[s] * scale[:, None])
    np.testing.assert_allclose(ngram_model.add_scaled_rows(out.copy(), o, src, s, scale), want, rtol=1e-12)
    compiled = getattr(fast._ext, "add_scaled_rows", None)
    if compiled is None:
        pytest.skip("rnnkit.fast is not built here")
    with pytest.raises(ValueError, match="index pair 1 .* out of range"):
        compiled(out.copy(), np.array([0, 7]), src, np.array([0, 0]), np.ones(2))
    with pytest.raises(ValueError, match="src must be a C-contiguous 2D float64"):
        compiled(out.copy(), np.array([0]), src.astype(np.float32), np.array([0]), np.ones(1))


def test_the_validation_part_chooses_the_ngram_share(tmp_path):
    """Networks given two steps know nothing yet; the n-gram model finds the motif: the
    validation likelihood gives it most of the average. Without a validation part the
    share is one half."""
    X, y = dna_motif_dataset(400, length=40, early=0.8, seed=4)
    clf = SequenceClassifier(hidden_size=8, ensemble=1, seed=0).fit(X, y, max_steps=2, val_fraction=0.25)
    assert clf.ngram_weight_ >= 0.8
    enc = clf._encode(X[:20], "test")
    w = clf.ngram_weight_
    np.testing.assert_allclose(clf.predict_proba(X[:20]),
                               (1 - w) * np.exp(clf._logits(enc, models=[clf.model_]))
                               + w * clf.ngram_model_.predict_proba(enc), rtol=1e-9)
    clf.save(tmp_path / "run")
    loaded = SequenceClassifier.load(tmp_path / "run")
    assert loaded.ngram_weight_ == w
    np.testing.assert_array_equal(loaded.predict_proba(X[:20]), clf.predict_proba(X[:20]))
    none = SequenceClassifier(hidden_size=8, ensemble=1, seed=0).fit(X[:60], y[:60], max_steps=2, val_fraction=0)
    assert none.ngram_weight_ == 0.5 and none.companion_weight_from_ == "default"


def test_without_a_validation_part_out_of_fold_predictions_choose_the_ngram_share(tmp_path):
    """60 rows leave no validation part: the default ensemble is cross-fitted (network i
    never sees fold i and scores it) and the out-of-fold likelihood picks the share. The
    networks, given two steps, know nothing; the n-gram model finds the motif."""
    X, y = dna_motif_dataset(400, length=40, early=0.8, seed=4)
    clf = SequenceClassifier(hidden_size=8, seed=0).fit(X[:60], y[:60], max_steps=2)
    assert clf.companion_weight_from_ == "cross-fitting" and clf.ngram_weight_ >= 0.8
    assert 1 + len(clf.members_) == classify.CROSSFIT_MEMBERS
    clf.save(tmp_path / "run")
    loaded = SequenceClassifier.load(tmp_path / "run")
    assert (loaded.companion_weight_, loaded.companion_weight_from_) == (clf.ngram_weight_, "cross-fitting")
    np.testing.assert_array_equal(loaded.predict_proba(X[300:]), clf.predict_proba(X[300:]))


def test_stratified_folds_deal_every_class_evenly():
    from rnnkit.data.sequences import stratified_folds

    ids = np.array([0] * 13 + [1] * 7 + [2] * 2)
    fold = stratified_folds(ids, 3, 5, seed=0)
    sizes = np.bincount(fold, minlength=5)
    assert sizes.sum() == 22 and sizes.max() - sizes.min() <= 1
    for k, count in ((0, 13), (1, 7)):
        per = np.bincount(fold[ids == k], minlength=5)
        assert per.max() - per.min() <= 1 and per.sum() == count
    assert len(set(fold[ids == 2])) == 2                    # a class of two lands in two folds
    np.testing.assert_array_equal(fold, stratified_folds(ids, 3, 5, seed=0))
    assert not np.array_equal(fold, stratified_folds(ids, 3, 5, seed=1))


def test_a_huge_vocabulary_takes_shorter_ngrams_whose_keys_fit_64_bits():
    m = NgramModel(40_000, placed=True)              # 4-grams fit; placed 3-grams would not
    assert m.longest == 4 and not m.placed
    big = NgramModel(1_000_000, placed=True)
    assert big.longest == 3 and not big.placed
    seqs = [np.array([999_999, 999_998, 999_999, 5]), np.array([3, 999_999, 999_998])]
    rows, keys, _ = big._counts(seqs)
    # 8 distinct n-grams in the first, 6 in the second, 3 shared; none wrapped round to a negative key
    assert keys.min() >= 0 and len(np.unique(keys)) == 11
    big.fit(seqs, [0, 1], 2)
    assert big.predict_proba(seqs).argmax(axis=1).tolist() == [0, 1]


def test_the_ngrams_kept_are_bounded_by_the_weights_they_need(monkeypatch):
    from rnnkit.tasks import ngram_model

    monkeypatch.setattr(ngram_model, "MAX_WEIGHTS", 30)
    monkeypatch.setattr(ngram_model, "MIN_FEATURES", 10)
    seqs = [np.array([1, 2, 3, 4, 5, 6]), np.array([1, 2, 3, 7]), np.array([1, 2, 8])]
    m = NgramModel(9).fit(seqs, [0, 1, 0], 2)              # 30 // 2 = 15 n-grams at most
    assert len(m.keys_) == 15 and np.all(np.diff(m.keys_) > 0)
    rows, keys, _ = m._counts(seqs)
    df = {int(k): int(np.sum(keys == k)) for k in np.unique(keys)}
    assert min(df[int(k)] for k in m.keys_) >= max(df[k] for k in df if k not in set(m.keys_.tolist()))
    assert {0 + 1, 0 + 2} <= set(m.keys_.tolist())          # unigrams 1 and 2, in every sequence


def test_ngram_out_of_fold_probabilities_come_from_models_that_never_saw_the_fold():
    X, y = dna_motif_dataset(60, length=30, seed=7)
    enc = [np.array([1 + "ACGT".index(c) for c in s]) for s in X]
    y = np.asarray(y)
    m = NgramModel(5, placed=True).fit(enc, y, 2)
    folds = np.arange(60) % 3
    oof = m.out_of_fold(enc, y, 2, folds)
    for i in range(3):
        keep, held = np.flatnonzero(folds != i), np.flatnonzero(folds == i)
        part = NgramModel(5, placed=True).fit([enc[j] for j in keep], y[keep], 2)
        np.testing.assert_allclose(oof[held], part.predict_proba([enc[j] for j in held]), rtol=1e-12)
    assert not np.allclose(oof, m.predict_proba(enc))          # not the model that saw every row
