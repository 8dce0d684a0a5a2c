"""Losses: finite-difference gradients (float64), PyTorch as the oracle, mask rules, errors."""

import numpy as np
import pytest

from conftest import numeric_grad, rel_err
from rnnkit import losses as L


def away_from(x, centre, gap, rng):
    """Move entries of x that lie within `gap` of `centre` (kinks of |.|, Huber, pinball)."""
    close = np.abs(x - centre) < gap
    x[close] = centre[close] + np.where(rng.random(close.sum()) < 0.5, -1, 1) * (gap + rng.random(close.sum()))
    return x


RNG_SEED = 1234


# -- finite differences (float64) ----------------------------------------------------

@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("ignore_index", [None, 2])
def test_cross_entropy_gradient_matches_finite_differences(use_mask, ignore_index, smoothing):
    rng = np.random.default_rng(RNG_SEED)
    z = rng.normal(size=(4, 3, 5)) * 2
    t = rng.integers(0, 5, size=(4, 3))
    mask = rng.random((4, 3)) < 0.7 if use_mask else None
    if mask is not None:
        mask[0, 0] = True
        t[0, 0] = 0            # at least one valid position whatever ignore_index is
    kw = dict(mask=mask, ignore_index=ignore_index, label_smoothing=smoothing)
    loss, d = L.softmax_cross_entropy(z, t, **kw)
    num = numeric_grad(lambda: L.softmax_cross_entropy(z, t, **kw)[0], z)
    assert d.shape == z.shape and d.dtype == np.float64
    assert rel_err(d, num) < 1e-7
    assert np.isfinite(loss) and loss > 0
    if smoothing:              # (1 − ε)·NLL + ε·(mean over classes of −log p), by hand
        keep = np.ones(t.shape, dtype=bool) if mask is None else mask.copy()
        if ignore_index is not None:
            keep &= t != ignore_index
        logp = L.log_softmax(z)
        nll = -np.take_along_axis(logp, t[..., None], axis=-1)[..., 0]
        by_hand = np.sum(keep * ((1 - smoothing) * nll - smoothing * logp.mean(axis=-1))) / keep.sum()
        assert loss == pytest.approx(by_hand, rel=1e-12)
        assert loss != pytest.approx(L.softmax_cross_entropy(z, t, mask=mask, ignore_index=ignore_index)[0],
                                     rel=1e-6)


@pytest.mark.parametrize("use_mask", [False, True])
def test_class_weighted_cross_entropy_gradient_matches_finite_differences(use_mask):
    rng = np.random.default_rng(RNG_SEED)
    z = rng.normal(size=(4, 3, 5)) * 2
    t = rng.integers(0, 5, size=(4, 3))
    w = np.array([0.3, 2.0, 1.0, 4.5, 0.7])
    mask = rng.random((4, 3)) < 0.7 if use_mask else None
    if mask is not None:
        mask[0, 0] = True
    loss, d = L.softmax_cross_entropy(z, t, mask=mask, weight=w)
    num = numeric_grad(lambda: L.softmax_cross_entropy(z, t, mask=mask, weight=w)[0], z)
    assert d.shape == z.shape and d.dtype == np.float64
    assert rel_err(d, num) < 1e-7
    # the weighted mean by hand, and equal weights give the unweighted mean
    keep = np.ones(t.shape, dtype=bool) if mask is None else mask
    nll = -np.take_along_axis(L.log_softmax(z), t[..., None], axis=-1)[..., 0]
    wy = w[t] * keep
    assert loss == pytest.approx(np.sum(wy * nll) / np.sum(wy), rel=1e-12)
    plain, d_plain = L.softmax_cross_entropy(z, t, mask=mask)
    assert loss != pytest.approx(plain, rel=1e-6)
    same, d_same = L.softmax_cross_entropy(z, t, mask=mask, weight=np.full(5, 3.0))
    assert same == pytest.approx(plain, rel=1e-12)
    np.testing.assert_allclose(d_same, d_plain, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
@pytest.mark.parametrize("use_mask", [False, True])
def test_regression_gradients_match_finite_differences(name, use_mask):
    rng = np.random.default_rng(RNG_SEED)
    y = rng.normal(size=(3, 4, 2))
    p = y + rng.normal(size=y.shape) * 1.5
    p = away_from(p, y, 0.05, rng)                       # |e| kink at 0
    if name == "huber":
        p = away_from(p, y + 0.7, 0.05, rng)            # Huber kinks at e = ±delta
        p = away_from(p, y - 0.7, 0.05, rng)
    mask = (rng.random((3, 4)) < 0.6) if use_mask else None   # prefix mask, broadcast over D
    if mask is not None:
        mask[0, 0] = True
    fn = {"mse": L.mse, "mae": L.mae, "huber": lambda a, b, mask=None: L.huber(a, b, delta=0.7, mask=mask)}[name]
    loss, d = fn(p, y, mask=mask)
    num = numeric_grad(lambda: fn(p, y, mask=mask)[0], p)
    assert rel_err(d, num) < 1e-7
    assert loss > 0


@pytest.mark.parametrize("use_mask", [False, True])
def test_quantile_gradient_matches_finite_differences(use_mask):
    rng = np.random.default_rng(RNG_SEED)
    q = [0.1, 0.5, 0.9]
    y = rng.normal(size=(5, 2))
    p = y[..., None] + rng.normal(size=(5, 2, 3))
    p = away_from(p, np.broadcast_to(y[..., None], p.shape).copy(), 0.05, rng)
    mask = (rng.random((5, 2)) < 0.6) if use_mask else None
    if mask is not None:
        mask[0, 0] = True
    loss, d = L.quantile_loss(p, y, q, mask=mask)
    num = numeric_grad(lambda: L.quantile_loss(p, y, q, mask=mask)[0], p)
    assert d.shape == p.shape
    assert rel_err(d, num) < 1e-7
    assert loss > 0


# -- PyTorch as the oracle -------------------------------------------------------------

@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_cross_entropy_matches_torch(dtype, tol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(RNG_SEED)
    z = (rng.normal(size=(6, 4, 7)) * 3).astype(dtype)
    t = rng.integers(0, 7, size=(6, 4))
    t[rng.random((6, 4)) < 0.3] = -100
    loss, d = L.softmax_cross_entropy(z, t, ignore_index=-100)
    zt = torch.tensor(z.reshape(-1, 7), requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(t.reshape(-1)), ignore_index=-100)
    ref.backward()
    assert d.dtype == dtype
    assert abs(loss - ref.item()) <= tol * abs(ref.item())
    assert rel_err(d.reshape(-1, 7), zt.grad.numpy()) < tol
    # the same positions dropped by a mask instead of ignore_index give the same result
    loss_m, d_m = L.softmax_cross_entropy(z, np.where(t < 0, 0, t), mask=t >= 0)
    assert loss_m == pytest.approx(loss, rel=1e-12) and np.array_equal(d_m, d)


def test_label_smoothing_errors():
    z, t = np.zeros((2, 5)), np.array([1, 3])
    with pytest.raises(ValueError, match="label_smoothing goes without weight"):
        L.softmax_cross_entropy(z, t, weight=np.ones(5), label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        L.softmax_cross_entropy(z, t, label_smoothing=1.0)


@pytest.mark.parametrize("option", ["weight", "label_smoothing"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_class_weighted_and_label_smoothed_cross_entropy_match_torch(option, dtype, tol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(RNG_SEED + 1)
    z = (rng.normal(size=(6, 4, 7)) * 3).astype(dtype)
    t = rng.integers(0, 7, size=(6, 4))
    t[rng.random((6, 4)) < 0.3] = -100
    w = rng.uniform(0.2, 5.0, size=7)
    ours, theirs = (({"weight": w}, {"weight": torch.tensor(w.astype(dtype))}) if option == "weight"
                    else ({"label_smoothing": 0.1}, {"label_smoothing": 0.1}))
    loss, d = L.softmax_cross_entropy(z, t, ignore_index=-100, **ours)
    zt = torch.tensor(z.reshape(-1, 7), requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(t.reshape(-1)), ignore_index=-100, **theirs)
    ref.backward()
    assert d.dtype == dtype
    assert abs(loss - ref.item()) <= tol * abs(ref.item())
    assert rel_err(d.reshape(-1, 7), zt.grad.numpy()) < tol


@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_regression_losses_match_torch(name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(RNG_SEED)
    y = rng.normal(size=(5, 3, 2))
    p = away_from(y + rng.normal(size=y.shape) * 2, y, 1e-3, rng)
    pt = torch.tensor(p, requires_grad=True)
    yt = torch.tensor(y)
    if name == "mse":
        (loss, d), ref = L.mse(p, y), F.mse_loss(pt, yt)
    elif name == "mae":
        (loss, d), ref = L.mae(p, y), F.l1_loss(pt, yt)
    else:
        (loss, d), ref = L.huber(p, y, delta=0.8), F.huber_loss(pt, yt, delta=0.8)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    assert rel_err(d, pt.grad.numpy()) < 1e-12


def test_softmax_helpers_match_torch_and_are_stable():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(size=(3, 5, 6)) * 4
    assert rel_err(L.log_softmax(x), torch.log_softmax(torch.tensor(x), -1).numpy()) < 1e-13
    assert rel_err(L.softmax(x, axis=1), torch.softmax(torch.tensor(x), 1).numpy()) < 1e-13
    big = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]], dtype=np.float32)
    s, ls = L.softmax(big), L.log_softmax(big)
    assert s.dtype == np.float32 and ls.dtype == np.float32
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(ls))
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(s[1], 1 / 3, rtol=1e-6)
    assert ls[0, 0] == 0.0 and ls[0, 2] == pytest.approx(-2e4)
    loss, d = L.softmax_cross_entropy(big, np.array([1, 0]))
    assert loss == pytest.approx((1e4 + np.log(3)) / 2, rel=1e-6)
    assert np.all(np.isfinite(d))


# -- mask semantics ----------------------------------------------------------------

def test_masked_mean_equals_mean_over_kept_items_and_dropped_items_get_zero_gradient():
    rng = np.random.default_rng(RNG_SEED)
    T, B, D = 5, 3, 2
    p = rng.normal(size=(T, B, D))
    y = rng.normal(size=(T, B, D))
    mask = rng.random((T, B)) < 0.5
    mask[0, 0] = True
    y_nan = y.copy()
    y_nan[~mask] = np.nan                         # missing values live under the mask
    for fn in (L.mse, L.mae, lambda a, b, mask=None: L.huber(a, b, delta=0.5, mask=mask)):
        loss, d = fn(p, y_nan, mask=mask)
        kept_loss, kept_d = fn(p[mask], y[mask])
        assert loss == pytest.approx(kept_loss, rel=1e-12)
        np.testing.assert_allclose(d[mask], kept_d, rtol=1e-12)
        assert np.all(d[~mask] == 0)
        # a full-shape mask means the same as the prefix mask
        full = np.broadcast_to(mask[..., None], p.shape)
        assert fn(p, y_nan, mask=full)[0] == loss

    z = rng.normal(size=(T, B, 4))
    t = rng.integers(0, 4, size=(T, B))
    t_pad = np.where(mask, t, -1)                 # padding ids out of range are never read
    loss, d = L.softmax_cross_entropy(z, t_pad, mask=mask)
    kept_loss, kept_d = L.softmax_cross_entropy(z[mask], t[mask])
    assert loss == pytest.approx(kept_loss, rel=1e-12)
    np.testing.assert_allclose(d[mask], kept_d, rtol=1e-12)
    assert np.all(d[~mask] == 0)
    # 0/1 integer masks are accepted and mean the same
    assert L.softmax_cross_entropy(z, t_pad, mask=mask.astype(np.int8))[0] == loss

    q = [0.2, 0.8]
    pq = rng.normal(size=(T, B, 2))
    loss, d = L.quantile_loss(pq, y_nan[..., 0], q, mask=mask)
    kept_loss, kept_d = L.quantile_loss(pq[mask], y[..., 0][mask], q)
    assert loss == pytest.approx(kept_loss, rel=1e-12)
    np.testing.assert_allclose(d[mask], kept_d, rtol=1e-12)
    assert np.all(d[~mask] == 0)


def test_all_masked_is_a_clear_error_not_nan():
    p = np.zeros((3, 2))
    none = np.zeros((3, 2), dtype=bool)
    for call in (lambda: L.mse(p, p, mask=none), lambda: L.mae(p, p, mask=none[:, 0]),
                 lambda: L.huber(p, p, mask=none), lambda: L.quantile_loss(p, p[:, 0], [0.1, 0.9], mask=none[:, 0]),
                 lambda: L.softmax_cross_entropy(p, np.zeros(3, dtype=int), mask=none[:, 0])):
        with pytest.raises(ValueError, match="no valid items"):
            call()
    with pytest.raises(ValueError, match="ignore_index=-100"):
        L.softmax_cross_entropy(p, np.full(3, -100), ignore_index=-100)
    with pytest.raises(ValueError, match="empty"):
        L.mse(np.zeros((0, 2)), np.zeros((0, 2)))


# -- values and properties -------------------------------------------------------------

def test_known_values_and_dtype_preservation():
    p = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    y = np.array([0.0, 0.0, 0.0], dtype=np.float32)
    loss, d = L.mse(p, y)
    assert loss == pytest.approx(14 / 3) and d.dtype == np.float32
    np.testing.assert_allclose(d, [2 / 3, -4 / 3, 2.0], rtol=1e-6)
    loss, d = L.mae(p, y)
    assert loss == pytest.approx(2.0) and d.dtype == np.float32
    np.testing.assert_allclose(d, [1 / 3, -1 / 3, 1 / 3], rtol=1e-6)
    loss, d = L.huber(p, y, delta=1.5)   # 0.5, 1.5(2 - 0.75), 1.5(3 - 0.75)
    assert loss == pytest.approx((0.5 + 1.875 + 3.375) / 3) and d.dtype == np.float32
    np.testing.assert_allclose(d, [1 / 3, -0.5, 0.5], rtol=1e-6)
    z = np.zeros((2, 4), dtype=np.float32)
    loss, d = L.softmax_cross_entropy(z, np.array([0, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-6) and d.dtype == np.float32
    np.testing.assert_allclose(d[0], [(0.25 - 1) / 2, 0.125, 0.125, 0.125], rtol=1e-6)
    # integer regression targets are fine (cast to pred's dtype)
    assert L.mse(p, np.array([1, -2, 3]))[0] == 0.0


def test_quantile_loss_properties():
    rng = np.random.default_rng(RNG_SEED)
    y = rng.normal(size=400)
    # at q = 0.5 the pinball loss is half the absolute error, gradient included
    p = rng.normal(size=400)
    lq, dq = L.quantile_loss(p[:, None], y, [0.5])
    la, da = L.mae(p, y)
    assert lq == pytest.approx(la / 2, rel=1e-12)
    np.testing.assert_allclose(dq[:, 0], da / 2, rtol=1e-12)
    # a constant forecast minimising the loss sits at the empirical quantile
    grid = np.linspace(-3, 3, 601)
    for q in (0.1, 0.9):
        losses = [L.quantile_loss(np.full((400, 1), c), y, [q])[0] for c in grid]
        best = grid[int(np.argmin(losses))]
        assert abs(best - np.quantile(y, q)) < 0.03
    # one quantile per column, and the gradient per column is q-specific
    p3 = np.zeros((2, 3))
    loss, d = L.quantile_loss(p3, np.array([1.0, -1.0]), [0.1, 0.5, 0.9])
    # target 1 above every forecast: d = -q/N; target -1 below: d = (1-q)/N, N = 6
    np.testing.assert_allclose(d, np.array([[-0.1, -0.5, -0.9], [0.9, 0.5, 0.1]]) / 6, rtol=1e-12)
    assert loss == pytest.approx((0.1 + 0.5 + 0.9 + 0.9 + 0.5 + 0.1) / 6)
    # a tie (forecast == target) takes the midpoint subgradient 1/2 - q, like MAE's sign(0) = 0
    loss, d = L.quantile_loss(np.ones((2, 3)), np.ones(2), [0.1, 0.5, 0.9])
    assert loss == 0.0
    np.testing.assert_allclose(d, np.tile([0.4, 0.0, -0.4], (2, 1)) / 6, rtol=1e-12, atol=1e-15)
    assert np.all(L.mae(np.ones(3), np.ones(3))[1] == 0)


# -- errors ------------------------------------------------------------------------

def test_cross_entropy_errors():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"targets of shape \(3,\).*got \(4,\)"):
        L.softmax_cross_entropy(z, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 4\).*from 4 to 7"):
        L.softmax_cross_entropy(z, np.array([0, 4, 7]))
    with pytest.raises(ValueError, match=r"\[0, 4\).*from -1"):
        L.softmax_cross_entropy(z, np.array([0, -1, 2]))
    with pytest.raises(TypeError, match="integer class ids.*float64"):
        L.softmax_cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="integer class ids.*bool"):
        L.softmax_cross_entropy(z, np.array([True, False, True]))
    with pytest.raises(TypeError, match="logits.*float32 or float64.*int64"):
        L.softmax_cross_entropy(np.zeros((3, 4), dtype=int), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="mask of shape"):
        L.softmax_cross_entropy(z, np.zeros(3, dtype=int), mask=np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="only 0 and 1"):
        L.softmax_cross_entropy(z, np.zeros(3, dtype=int), mask=np.array([0, 2, 1]))
    with pytest.raises(TypeError, match="ignore_index"):
        L.softmax_cross_entropy(z, np.zeros(3, dtype=int), ignore_index=1.5)
    for bad in ([1.0, 2.0, 3.0], [1.0, 0.0, 1.0, 1.0], [1.0, -1.0, 1.0, 1.0], [1.0, np.nan, 1.0, 1.0], "abcd"):
        with pytest.raises(ValueError, match=r"weight must be 4 positive numbers"):
            L.softmax_cross_entropy(z, np.zeros(3, dtype=int), weight=bad)
    # an out-of-range id under the mask or equal to ignore_index is not an error
    assert np.isfinite(L.softmax_cross_entropy(z, np.array([0, 9, 1]), mask=np.array([1, 0, 1]))[0])
    assert np.isfinite(L.softmax_cross_entropy(z, np.array([0, -100, 1]), ignore_index=-100)[0])


def test_regression_errors():
    p = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"target of shape \(3, 2\), got \(2, 3\)"):
        L.mse(p, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="pred.*float32 or float64"):
        L.mae(np.zeros((3, 2), dtype=int), p)
    with pytest.raises(TypeError, match="target to hold numbers"):
        L.mse(p, np.zeros((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="NaN or inf at 1 valid"):
        L.mse(p, np.array([[0, 0], [np.nan, 0], [0, 0]]))
    with pytest.raises(ValueError, match="delta must be > 0, got 0"):
        L.huber(p, p, delta=0)
    with pytest.raises(ValueError, match=r"Q = 3.*got \(3, 2\)"):
        L.quantile_loss(p, np.zeros(3), [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        L.quantile_loss(p, np.zeros(3), [0.0, 0.5])
    with pytest.raises(ValueError, match="non-empty list of numbers"):
        L.quantile_loss(p, np.zeros(3), ["a", "b"])
    with pytest.raises(ValueError, match=r"target of shape \(3,\)"):
        L.quantile_loss(p, np.zeros((3, 2)), [0.1, 0.9])
    # a NaN prediction (a diverged model) is not an argument error: the loss reports it
    assert np.isnan(L.mse(np.array([np.nan, 0.0]), np.zeros(2))[0])
