"""The sequence classifier on numeric series: scale invariance, ensembles that average
probabilities, small sets trained whole, the refit on training + validation, random
training windows."""

import numpy as np
import pytest

import rnnkit.tasks.classify as classify_module
from rnnkit.losses import softmax
from rnnkit.tasks.classify import SequenceClassifier


def shapes(n, seed, T=24):
    """A bump early (label "early") or late ("late") on noise, at random gains and offsets."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    t = np.arange(T)
    for i in range(n):
        late = i % 2
        centre = (0.7 if late else 0.3) * T + rng.normal(0, 1)
        s = np.exp(-0.5 * ((t - centre) / 2.0) ** 2) + 0.05 * rng.standard_normal(T)
        X.append(rng.uniform(0.5, 20) * s + rng.uniform(-50, 50))
        y.append("late" if late else "early")
    return X, y


def spy_on_budget(monkeypatch, **overrides):
    """Record every fit_with_budget call's keyword arguments (and apply ``overrides``)."""
    calls = []
    original = classify_module.fit_with_budget

    def spy(*args, **kwargs):
        kwargs.update(overrides)
        calls.append({"n_items": args[3], "args": args, **kwargs})
        return original(*args, **kwargs)

    monkeypatch.setattr(classify_module, "fit_with_budget", spy)
    return calls


def other_batches(call):
    """An epoch of the training batches a recorded fit_with_budget call got (its second argument)."""
    return call["args"][1](0, np.random.default_rng(0))


def test_per_series_normalisation_makes_gain_and_offset_irrelevant_to_the_shape():
    X, y = shapes(16, seed=0)
    clf = SequenceClassifier(hidden_size=4, seed=0).fit(X, y, max_steps=3)
    a = clf._encode(X[:3], "t")
    b = clf._encode([4.0 * x + 7.0 for x in X[:3]], "t")
    for u, v in zip(a, b):
        np.testing.assert_allclose(u[:, :-2], v[:, :-2], atol=1e-5)      # value and difference channels
        assert not np.allclose(u[:, -2:], v[:, -2:])                       # the level channels differ


def test_ensemble_averages_the_members_probabilities(tmp_path):
    X, y = shapes(16, seed=0)
    clf = SequenceClassifier(hidden_size=4, ensemble=3, seed=5, kernels="off").fit(X, y, max_steps=4,
                                                                                   out_dir=tmp_path)
    assert len(clf.members_) == 2 and clf.kernel_model_ is None
    enc = clf._encode(X, "t")
    from rnnkit.data.sequences import pad_sequences

    x, lengths = pad_sequences(enc)
    each = [softmax(np.asarray(m.predict_logits(x, lengths), dtype=np.float64))
            for m in [clf.model_] + clf.members_]
    assert not np.allclose(each[0], each[1])                    # different seeds, different networks
    np.testing.assert_allclose(clf.predict_proba(X), np.mean(each, axis=0), rtol=1e-6, atol=1e-9)
    loaded = SequenceClassifier.load(tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_a_small_set_trains_whole_and_a_larger_one_refits_on_train_and_validation(monkeypatch):
    calls = spy_on_budget(monkeypatch, min_steps=6, steps_cap=12)
    X, y = shapes(40, seed=1)
    clf = SequenceClassifier(hidden_size=4, seed=0, kernels="off").fit(X, y)
    # 15 % of 40 is 6 series: too few to choose a step count with, so all 40 train
    assert calls[-1]["n_items"] == 40 and calls[-1]["n_val"] == 0 and clf.val_evaluation_ is None
    # with the kernel model (the default) the five networks are cross-fitted: each trains on
    # 32 series, and the five left-out folds are the 40 series once each
    before = len(calls)
    clf = SequenceClassifier(hidden_size=4, seed=0).fit(X, y)
    crossfit = calls[before:]
    assert len(crossfit) == 5 and all(c["n_items"] == 32 and c["args"][2] is None for c in crossfit)
    assert clf.companion_weight_from_ == "cross-fitting" and clf.kernel_model_ is not None
    seen = [np.concatenate([b["y"] for b in other_batches(c)]) for c in crossfit]
    counts = sum(np.bincount(v, minlength=2) for v in seen)
    np.testing.assert_array_equal(counts, [4 * 20, 4 * 20])     # every series in four of the five
    X, y = shapes(300, seed=2)
    before = len(calls)
    clf = SequenceClassifier(hidden_size=4, seed=0).fit(X, y)
    call, *others = calls[before:]
    assert call["n_val"] == 44 and call["n_items"] == 256 and call["refit_items"] == 300
    seen = [b["y"] for b in call["refit_batches"](0, np.random.default_rng(0))]
    assert sum(len(v) for v in seen) == 300                     # the refit's epoch holds every series
    assert clf.refit_steps_ is not None and clf.val_evaluation_ is not None
    # the ensemble's other networks train on every series for the refit's step count, unselected
    assert len(others) == len(clf.members_) == 2
    for other in others:
        assert other["n_items"] == 300 and other["max_steps"] == clf.refit_steps_
        assert "refit_batches" not in other
        assert sum(len(b["y"]) for b in other_batches(other)) == 300


@pytest.mark.parametrize("series_augment", [True, False])
def test_series_augment_switches_the_random_windows(monkeypatch, series_augment):
    seen = []
    original = classify_module.fit_with_budget

    def spy(build, train_batches, *args, **kwargs):
        seen.extend(b["lengths"] for b in train_batches(0, np.random.default_rng(0)))
        return original(build, train_batches, *args, **kwargs)

    monkeypatch.setattr(classify_module, "fit_with_budget", spy)
    X, y = shapes(16, seed=3, T=40)
    SequenceClassifier(hidden_size=4, series_augment=series_augment, seed=0).fit(X, y, max_steps=2)
    lengths = np.concatenate(seen)
    if series_augment:
        assert lengths.min() >= 24 and lengths.max() <= 40 and len(set(lengths.tolist())) > 2
    else:
        assert set(lengths.tolist()) == {40}


def test_with_a_time_limit_the_members_share_one_training_time_and_the_second_model_one_set_of_kernels(
        monkeypatch):
    """Cross-fitted members get one training deadline, sized once for the phases after training
    (a per-member floor would grant the last members the evaluation's time); the weight
    of the kernel model is chosen with the model's own kernels, not a second draw."""
    import rnnkit.tasks.kernel_model as km

    calls = spy_on_budget(monkeypatch, max_steps=3)
    fits = []
    original_fit = km.KernelModel.fit

    def counted(self, *args, **kwargs):
        fits.append(self)
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(km.KernelModel, "fit", counted)
    import time

    from rnnkit.deadline import REPORT_SECONDS

    X, y = shapes(40, seed=3)
    start = time.perf_counter()
    clf = SequenceClassifier(hidden_size=4, seed=0).fit(X, y, time_limit=120)
    assert len(calls) == 5 and clf.companion_weight_from_ == "cross-fitting"
    ends = {c["time_limit"].end for c in calls}
    assert len(ends) == 1 and all("reserve" not in c for c in calls)
    assert next(iter(ends)) < start + 120 - REPORT_SECONDS     # the report's time is kept out
    X, y = shapes(300, seed=4)
    before = len(fits)
    clf = SequenceClassifier(hidden_size=4, seed=0, ensemble=1).fit(X, y, max_steps=3)
    assert clf.companion_weight_from_ == "validation" and len(fits) == before + 1
