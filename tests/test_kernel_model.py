"""The random-kernel (ROCKET) model of numeric series: the compiled features against the
NumPy ones and against the formula, the ridge's leave-one-out values against refits, and
the classifier that averages it with its networks."""

import numpy as np
import pytest

from rnnkit import fast
from rnnkit.tasks import kernel_model as km
from rnnkit.tasks.classify import SequenceClassifier
from rnnkit.tasks.series_input import SeriesInput


def series(rng, n, channels, low=3, high=60):
    return [rng.standard_normal((int(rng.integers(low, high)), channels)) for _ in range(n)]


@pytest.mark.parametrize("channels", [1, 3])
def test_compiled_features_equal_the_numpy_ones(channels):
    if getattr(fast._ext, "random_conv_features", None) is None:
        pytest.skip("rnnkit.fast is not built here")
    rng = np.random.default_rng(channels)
    seqs = series(rng, 15, channels)                 # some shorter than a dilated kernel
    k = km.random_kernels(300, 40, channels, rng)
    assert k["kernels"][:, 1].max() > 1 and k["kernels"][:, 2].max() > 0     # dilations and paddings drawn
    got = km.conv_features(seqs, k)
    want = km._conv_features_numpy([km._standardise(a) for a in seqs], k, np.empty_like(got))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_features_follow_the_formula():
    """One kernel, L = 3, d = 2, p = 2: o_i = b + Σ_j w_j x[i − 2 + 2j] with zeros outside."""
    x = np.array([0.5, -1.0, 2.0, 0.0, 1.5, -0.5, 1.0])
    w, b = np.array([1.0, -2.0, 0.5]), 0.25
    k = {"kernels": np.array([[3, 2, 2, 1, 0, 0]], dtype=np.int64), "bias": np.array([b]), "weights": w,
         "channels": np.array([0], dtype=np.int64)}
    z = km._standardise(x[:, None])[:, 0]
    padded = np.concatenate([np.zeros(2), z, np.zeros(2)])
    o = np.array([b + sum(w[j] * padded[i + 2 * j] for j in range(3)) for i in range(7 + 4 - 4)])
    got = km.conv_features([x[:, None]], k)[0]
    up = o > 0
    runs = "".join("1" if u else "0" for u in up).split("0")
    np.testing.assert_allclose(got, [up.mean(), o.max(), o[up].mean(), np.flatnonzero(up).mean() / (len(o) - 1),
                                     max(len(r) for r in runs) / len(o)], rtol=1e-12)
    want = km._conv_features_numpy([z[:, None]], k, np.empty((1, 5)))[0]
    np.testing.assert_allclose(want, got, rtol=1e-12)


def test_bad_kernels_are_refused_by_the_compiled_loop():
    compiled = getattr(fast._ext, "random_conv_features", None)
    if compiled is None:
        pytest.skip("rnnkit.fast is not built here")
    x, off = np.zeros((5, 1)), np.array([0, 5], dtype=np.int64)
    good = dict(kernels=np.array([[3, 1, 0, 1, 0, 0]], dtype=np.int64), bias=np.zeros(1), weights=np.ones(3),
                channels=np.zeros(1, dtype=np.int64))
    out = np.zeros((1, 5))
    compiled(x, off, good["kernels"], good["bias"], good["weights"], good["channels"], out)
    with pytest.raises(ValueError, match="kernel 0 .* does not fit"):
        compiled(x, off, np.array([[4, 1, 0, 1, 0, 0]], dtype=np.int64), good["bias"], good["weights"],
                 good["channels"], out)           # 4 weights wanted, 3 given
    with pytest.raises(ValueError, match="kernel 0 .* does not fit"):
        compiled(x, off, good["kernels"], good["bias"], good["weights"], np.array([1], dtype=np.int64), out)
    with pytest.raises(ValueError, match=r"offsets\[0:2\]"):
        compiled(x, np.array([0, 6], dtype=np.int64), good["kernels"], good["bias"], good["weights"],
                 good["channels"], out)
    with pytest.raises(ValueError, match="x must be a C-contiguous 2D float64"):
        compiled(x.astype(np.float32), off, good["kernels"], good["bias"], good["weights"], good["channels"], out)


def test_leave_one_out_values_equal_refits_without_each_row():
    rng = np.random.default_rng(0)
    Z, Yc = rng.standard_normal((9, 30)), rng.standard_normal((9, 3))
    alpha = 0.7
    fit, loo, dual = km.ridge_loo(Z, Yc, alpha)
    np.testing.assert_allclose(fit, Z @ (Z.T @ dual), rtol=1e-10)
    np.testing.assert_allclose(Z.T @ dual, np.linalg.solve(Z.T @ Z + alpha * np.eye(30), Z.T @ Yc), rtol=1e-8)
    for i in range(9):
        keep = np.arange(9) != i
        W = np.linalg.solve(Z[keep].T @ Z[keep] + alpha * np.eye(30), Z[keep].T @ Yc[keep])
        np.testing.assert_allclose(loo[i], Z[i] @ W, rtol=1e-8, atol=1e-10)


def shapes(n, seed, T=60):
    """A bump (class 1) or a dip (class 0) at a random place, at random gains and offsets."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    X, y = [], []
    for i in range(n):
        bump = np.exp(-0.5 * ((t - rng.uniform(10, 50)) / 3.0) ** 2) * (1 if i % 2 else -1)
        X.append((rng.uniform(0.5, 5) * (bump + 0.1 * rng.standard_normal(T)) + rng.uniform(-9, 9))[:, None])
        y.append(i % 2)
    return X, np.array(y)


def test_the_kernel_model_finds_a_shape_anywhere_and_survives_a_save():
    X, y = shapes(120, seed=1)
    m = km.KernelModel(num_kernels=400, seed=3).fit(X[:80], y[:80], 2)
    p = m.predict_proba(X[80:])
    assert np.mean(p.argmax(axis=1) == y[80:]) >= 0.9 and np.allclose(p.sum(axis=1), 1)
    # one pseudo-count per class: never surer than 81 right out of 80 allows
    assert p.max() <= 81 / 82 + 1e-12 and p.min() >= 1 / 82 - 1e-12
    back = km.KernelModel.from_saved(m.config(), m.arrays())
    np.testing.assert_array_equal(back.predict_proba(X[80:]), p)
    with pytest.raises(ValueError, match="do not fit together"):
        km.KernelModel.from_saved(m.config(), dict(m.arrays(), W=m.W_[:-1]))


def test_series_input_values_undo_the_folding():
    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((T, 2)) for T in (250, 97, 301)]
    s = SeriesInput(max_steps=100).fit(seqs)
    assert s.fold == 3                      # every length here leaves a padded last fold
    for a, back in zip(seqs, s.values(s.transform(seqs))):
        np.testing.assert_allclose(back, (a - a.mean(0)) / a.std(0), rtol=1e-12)


def test_the_classifier_averages_its_networks_with_the_kernel_model(tmp_path):
    X, y = shapes(60, seed=4)
    clf = SequenceClassifier(hidden_size=4, ensemble=2, seed=0).fit([a[:, 0] for a in X], y, max_steps=3,
                                                                     out_dir=tmp_path)
    km_ = clf.kernel_model_
    assert km_ is not None and clf.ngram_model_ is None and clf.companion_weight_from_ == "cross-fitting"
    w = clf.companion_weight_
    new = [a[:, 0] for a in shapes(10, seed=9)[0]]
    enc = clf._encode(new, "test")
    networks = np.exp(clf._logits(enc, models=[clf.model_] + clf.members_))
    np.testing.assert_allclose(clf.predict_proba(new), (1 - w) * networks
                               + w * km_.predict_proba([a[:, None] for a in new]), rtol=1e-6)
    assert (tmp_path / "kernels" / "config.json").is_file()
    loaded = SequenceClassifier.load(tmp_path)
    assert loaded.kernel_model_ is not None and loaded.companion_weight_ == w
    np.testing.assert_array_equal(loaded.predict_proba(new), clf.predict_proba(new))
    off = SequenceClassifier(hidden_size=4, ensemble=1, kernels="off").fit([a[:, 0] for a in X], y, max_steps=2)
    assert off.kernel_model_ is None
    with pytest.raises(ValueError, match="kernels=.on. needs numeric series"):
        SequenceClassifier(kernels="on", ensemble=1).fit(["ACGT", "TTGA"] * 5, [0, 1] * 5, max_steps=1)
    with pytest.raises(ValueError, match="kernels"):
        SequenceClassifier(kernels="sometimes")


def test_out_of_fold_probabilities_come_from_ridges_that_never_saw_the_fold():
    X, y = shapes(40, seed=5)
    m = km.KernelModel(num_kernels=300, seed=1).fit(X, y, 2)
    folds = np.arange(40) % 4
    oof = m.out_of_fold(X, y, 2, folds)
    for i in range(4):
        keep, held = folds != i, folds == i
        part = km.KernelModel(300, 1)
        part.kernels_ = m.kernels_
        part._fit_features(part._features([X[j] for j in np.flatnonzero(keep)]), y[keep], 2)
        np.testing.assert_allclose(oof[held], part.predict_proba([X[j] for j in np.flatnonzero(held)]),
                                   rtol=1e-10)
    assert m.n_train_ == 40                     # the fitted model itself is unchanged


def test_a_time_budget_draws_fewer_kernels_or_says_it_holds_too_few():
    from rnnkit.errors import RnnkitError

    X, y = shapes(40, seed=6, T=400)
    full = km.KernelModel(num_kernels=4000, seed=0).fit(X, y, 2)
    assert len(full.kernels_["bias"]) == 4000
    with pytest.raises(RnnkitError, match="hold the features of .* fewer than 200"):
        km.KernelModel(num_kernels=4000, seed=0).fit(X, y, 2, seconds=1e-6)
    import time

    start = time.perf_counter()
    km.conv_features(X, km.random_kernels(100, 400, 1, np.random.default_rng(0)))
    per_kernel = (time.perf_counter() - start) / 100
    # about 800 kernels' worth: the count may move 4x either way with the machine's noise
    some = km.KernelModel(num_kernels=4000, seed=0).fit(X, y, 2, seconds=800 * per_kernel)
    assert 200 <= len(some.kernels_["bias"]) < 4000
