"""Ready models: gradients against finite differences, config round trips, carried
states, step-by-step paths against whole-sequence paths, decoding."""

import itertools
import json

import numpy as np
import pytest

from conftest import numeric_grad
import rnnkit.models as M
from rnnkit.models import (AdditiveAttention, AttentionEncoderDecoder, CrossAttention, EncoderDecoder, OneToMany,
                           OneToOne, SequenceClassifier, SequenceRegressor, SequenceTagger, build)

T, B = 4, 3
LENGTHS = np.array([4, 2, 3])


# -- helpers ---------------------------------------------------------------------------

def rng(seed=0):
    return np.random.default_rng(seed)


def ids(shape, n, seed=0):
    return rng(seed).integers(0, n, size=shape)


def feats(shape, seed=0):
    return rng(seed).standard_normal(shape)


def perturb_params(model, seed=1):
    """Every parameter ~ U(-1, 1): non-zero, distinct biases (a bias bug must show) and
    weights large enough that every path (attention scores included) carries a gradient
    well above the finite differences' rounding error."""
    r = rng(seed)
    for p in model.params.values():
        p[...] = r.uniform(-1.0, 1.0, p.shape)


def numeric_grads(model, batch, state=None, eps=1e-6):
    """Central differences of the full loss, recomputed from scratch for each entry."""
    out = {}
    for name, p in model.params.items():
        out[name] = numeric_grad(lambda: model.loss(batch, state)[0], p, eps)
    return out


def assert_gradcheck(model, batch, state=None, tol=1e-6):
    assert all(p.dtype == np.float64 for p in model.params.values())
    perturb_params(model)
    model.train()
    model.zero_grad()
    model.loss(batch, state)
    model.backward()
    analytic = {k: v.copy() for k, v in model.grads.items()}
    numeric = numeric_grads(model, batch, state)
    assert set(analytic) == set(numeric) == set(model.params)
    for name in analytic:
        a, n = analytic[name], numeric[name]
        denom = max(np.linalg.norm(a) + np.linalg.norm(n), 1e-10)
        rel = np.linalg.norm(a - n) / denom
        assert rel < tol, f"{type(model).__name__}: gradient of {name} differs, relative error {rel:.2e}"
    # every parameter takes part in the loss
    assert all(np.abs(analytic[k]).max() > 0 for k in analytic), \
        [k for k in analytic if not np.abs(analytic[k]).max() > 0]


def random_state(model, B, seed=3):
    rnn = model.rnn
    D = 2 if rnn.bidirectional else 1
    shape = (rnn.num_layers * D, B, rnn.hidden_size)
    r = rng(seed)
    h = r.uniform(-0.5, 0.5, shape)
    if rnn.cell == "lstm":
        return h, r.uniform(-0.5, 0.5, shape)
    return h


def states_equal(a, b, **kw):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, **kw)
    else:
        np.testing.assert_allclose(a, b, **kw)


SMALL = dict(hidden_size=3, dtype="float64", seed=0)


# -- finite-difference gradient checks ----------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "rnn-relu", "lstm", "gru"])
def test_tagger_gradcheck_ids_classes_lengths_state(cell):
    m = SequenceTagger(cell=cell, num_layers=2, vocab_size=5, embedding_dim=3, num_classes=4, **SMALL)
    x = ids((T, B), 5)
    mask = np.ones((T, B), dtype=bool)
    mask[0, 1] = False
    batch = {"x": x, "y": ids((T, B), 4, seed=1), "lengths": LENGTHS, "mask": mask}
    assert_gradcheck(m, batch, state=random_state(m, B))


def test_tagger_gradcheck_bidirectional_features_regression():
    m = SequenceTagger(cell="gru", num_layers=2, input_size=2, output_size=2, bidirectional=True, **SMALL)
    batch = {"x": feats((T, B, 2)), "y": feats((T, B, 2), seed=1), "lengths": LENGTHS}
    assert_gradcheck(m, batch)


@pytest.mark.parametrize("loss,extra", [("huber", {"huber_delta": 0.3}), ("quantile", {"quantiles": [0.1, 0.5, 0.9]}),
                                        ("mae", {})])
def test_tagger_gradcheck_regression_losses(loss, extra):
    m = SequenceTagger(cell="lstm", input_size=2, output_size=1, loss=loss, **extra, **SMALL)
    batch = {"x": feats((T, B, 2)), "y": feats((T, B), seed=1)}
    assert_gradcheck(m, batch)


def test_tagger_gradcheck_ignore_index():
    m = SequenceTagger(cell="rnn", vocab_size=4, embedding_dim=2, num_classes=4, ignore_index=0, **SMALL)
    y = ids((T, B), 4, seed=2)
    y[0, 0] = 0
    _, count, _ = m.loss({"x": ids((T, B), 4), "y": y})
    assert count == int((y != 0).sum())
    assert_gradcheck(m, {"x": ids((T, B), 4), "y": y})


@pytest.mark.parametrize("cell,pooling,bidirectional", [
    ("lstm", "last", False), ("gru", "last", True), ("rnn", "mean", False),
    ("lstm", "mean", True), ("gru", "attention", False), ("rnn-relu", "attention", True),
    ("gru", "meanmax", True), ("lstm", "meanmax", False)])
def test_classifier_gradcheck(cell, pooling, bidirectional):
    m = SequenceClassifier(num_classes=3, cell=cell, num_layers=2 if pooling == "last" else 1, vocab_size=6,
                           embedding_dim=2, pooling=pooling, bidirectional=bidirectional,
                           attention_size=2 if pooling == "attention" else None, **SMALL)
    batch = {"x": ids((T, B), 6), "lengths": LENGTHS, "y": np.array([0, 2, 1])}
    state = None if bidirectional else random_state(m, B)
    assert_gradcheck(m, batch, state)


@pytest.mark.parametrize("loss,extra,pooling", [("mse", {}, "attention"), ("huber", {"huber_delta": 0.5}, "last"),
                                                ("quantile", {"quantiles": [0.2, 0.8]}, "mean")])
def test_regressor_gradcheck(loss, extra, pooling):
    m = SequenceRegressor(output_size=2, cell="lstm", input_size=3, loss=loss, pooling=pooling, **extra, **SMALL)
    batch = {"x": feats((T, B, 3)), "lengths": LENGTHS, "y": feats((B, 2), seed=5)}
    assert_gradcheck(m, batch)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_one_to_one_gradcheck(cell):
    m = OneToOne(cell=cell, num_layers=2, vocab_size=4, embedding_dim=2, num_classes=3, **SMALL)
    assert_gradcheck(m, {"x": np.array([0, 3, 1]), "y": np.array([2, 0, 1])}, state=random_state(m, B))
    r = OneToOne(cell="gru", input_size=2, output_size=2, **SMALL)
    assert_gradcheck(r, {"x": feats((B, 2)), "y": feats((B, 2), seed=1)}, state=random_state(r, B))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_one_to_many_gradcheck_ids(cell):
    m = OneToMany(cond_classes=3, num_classes=4, cell=cell, num_layers=2, embedding_dim=2, **SMALL)
    y = ids((T, B), 4, seed=4)
    y[3, 1] = -1                      # padding past a length is never read
    batch = {"cond": np.array([2, 0, 1]), "y": y, "lengths": LENGTHS}
    assert_gradcheck(m, batch)


def test_one_to_many_gradcheck_features_regression():
    m = OneToMany(cond_size=2, output_size=2, cell="lstm", loss="huber", **SMALL)
    y = feats((T, B, 2), seed=6)
    y[2:, 1] = np.nan                 # missing past the length
    assert_gradcheck(m, {"cond": feats((B, 2)), "y": y, "lengths": LENGTHS})


@pytest.mark.parametrize("cell,bidirectional,layers", [("lstm", True, 1), ("gru", False, 2), ("rnn", True, 2)])
def test_encoder_decoder_gradcheck(cell, bidirectional, layers):
    m = EncoderDecoder(tgt_vocab_size=6, src_vocab_size=5, cell=cell, num_layers=layers, embedding_dim=2,
                       bidirectional=bidirectional, **SMALL)
    y = np.array([[3, 4, 5], [4, 2, 3], [2, 0, 5], [0, 0, 2]])   # EOS = 2, PAD = 0
    batch = {"x": ids((T, B), 5), "lengths": LENGTHS, "y": y}
    _, count, _ = m.loss(batch)
    assert count == int((y != 0).sum())
    assert_gradcheck(m, batch)


def test_encoder_decoder_gradcheck_float_source():
    m = EncoderDecoder(tgt_vocab_size=5, src_input_size=2, cell="lstm", embedding_dim=2, **SMALL)
    batch = {"x": feats((T, B, 2)), "y": np.array([[3, 4, 3], [2, 2, 4], [0, 0, 2]])}
    assert_gradcheck(m, batch)


def test_attention_gradcheck_and_weights():
    att = AdditiveAttention(4, 3, dtype=np.float64, seed=0)
    h = feats((T, B, 4))
    mask = np.arange(T)[:, None] < LENGTHS[None, :]
    R = feats((B, 4), seed=2)
    W = feats((T, B), seed=3)

    def f():
        c, a = att.forward(h, mask)
        return float(np.sum(c * R) + np.sum(a * W))

    c, a = att.forward(h, mask)
    np.testing.assert_allclose(a.sum(axis=0), 1.0)
    assert np.all(a[~mask] == 0)
    np.testing.assert_allclose(c, np.einsum("tb,tbd->bd", a, h))
    att.zero_grad()
    dh = att.backward(R, W)
    eps = 1e-6
    num = numeric_grad(f, h, eps)
    assert np.linalg.norm(num - dh) / np.linalg.norm(num) < 1e-7
    assert np.all(dh[~mask] == 0)
    analytic = {k: v.copy() for k, v in att.grads.items()}
    for name, p in att.params.items():
        numg = numeric_grad(f, p, eps)
        assert np.linalg.norm(numg - analytic[name]) / np.linalg.norm(numg) < 1e-7, name


# -- config and state round trips ------------------------------------------------------------

def make_all():
    """One small model of every kind, with a batch for it."""
    x = ids((T, B), 5)
    out = [
        (SequenceTagger(cell="lstm", num_layers=2, vocab_size=5, num_classes=5, hidden_size=4, seed=1),
         {"x": x, "y": np.roll(x, -1, axis=0), "lengths": LENGTHS}),
        (SequenceTagger(cell="rnn-relu", input_size=2, output_size=1, loss="quantile", quantiles=[0.25, 0.75],
                        bidirectional=True, hidden_size=4, seed=2),
         {"x": feats((T, B, 2)).astype(np.float32), "y": feats((T, B, 1)).astype(np.float32)}),
        (SequenceClassifier(num_classes=3, cell="gru", vocab_size=5, pooling="attention", hidden_size=4, seed=3),
         {"x": x, "y": np.array([0, 1, 2]), "lengths": LENGTHS}),
        (SequenceRegressor(output_size=1, cell="lstm", input_size=2, pooling="mean", bidirectional=True,
                           hidden_size=4, seed=4),
         {"x": feats((T, B, 2)), "y": feats((B,)), "lengths": LENGTHS}),
        (OneToOne(cell="rnn", input_size=2, num_classes=3, hidden_size=4, seed=5),
         {"x": feats((B, 2)), "y": np.array([1, 2, 0])}),
        (OneToMany(cond_classes=2, num_classes=4, cell="gru", hidden_size=4, seed=6),
         {"cond": np.array([0, 1, 1]), "y": ids((T, B), 4)}),
        (EncoderDecoder(tgt_vocab_size=6, src_vocab_size=5, cell="lstm", bidirectional=True, hidden_size=4,
                        embedding_dim=3, seed=7),
         {"x": x, "lengths": LENGTHS, "y": np.array([[3, 4, 5], [2, 5, 2], [0, 2, 0], [0, 0, 0]])}),
        (AttentionEncoderDecoder(tgt_vocab_size=6, src_vocab_size=5, cell="gru", hidden_size=4, embedding_dim=3,
                                 attention="multiplicative", seed=8),
         {"x": x, "lengths": LENGTHS, "y": np.array([[3, 4, 5], [2, 5, 2], [0, 2, 0], [0, 0, 0]])}),
    ]
    return out


def test_every_exported_model_runs_loss_backward_and_learns():
    kinds = {type(m) for m, _ in make_all()}
    exported = {getattr(M, n) for n in M.__all__ if isinstance(getattr(M, n), type)}
    assert exported - {AdditiveAttention, CrossAttention} == kinds
    assert set(M.MODELS.values()) == kinds
    for model, batch in make_all():
        model.train()
        before, count, _ = model.loss(batch)
        assert np.isfinite(before) and count > 0
        model.zero_grad()
        model.backward()
        # one plain gradient step lowers the loss: the gradient points the right way
        for name, p in model.params.items():
            p -= 0.05 * model.grads[name]
        after = model.loss(batch)[0]
        assert after < before, type(model).__name__
        with pytest.raises(RuntimeError, match="backward"):
            model.eval()
            model.loss(batch)
            model.backward()


def test_build_round_trip_identical_outputs():
    for model, batch in make_all():
        cfg = model.config()
        json.dumps(cfg)                                     # JSON-able
        same = build(json.loads(json.dumps(cfg)))
        assert type(same) is type(model) and same.config() == cfg
        # the seed is part of the config: the same initial weights
        for k, v in model.params.items():
            np.testing.assert_array_equal(v, same.params[k])
        model.eval()
        same.eval()
        assert model.loss(batch)[0] == same.loss(batch)[0]


def test_state_dict_round_trip():
    for model, batch in make_all():
        cfg = dict(model.config(), seed=123)
        other = build(cfg)
        model.eval()
        other.eval()
        assert model.loss(batch)[0] != other.loss(batch)[0]
        other.load_state_dict(model.state_dict())
        assert model.loss(batch)[0] == other.loss(batch)[0]
        # a state_dict is a copy: changing it leaves the model alone
        sd = model.state_dict()
        for v in sd.values():
            v += 1.0
        assert model.loss(batch)[0] == other.loss(batch)[0]


def test_build_rejects_unknown_model_and_keys():
    with pytest.raises(ValueError, match="unknown model 'Nope'"):
        build({"model": "Nope"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['hiden_size'\]"):
        build({"model": "SequenceTagger", "hiden_size": 3, "vocab_size": 4, "num_classes": 4})
    with pytest.raises(TypeError, match="dict"):
        build("SequenceTagger")


# -- carried states --------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_tagger_carry_at_equals_state_of_prefix(cell):
    m = SequenceTagger(cell=cell, num_layers=2, vocab_size=5, num_classes=5, hidden_size=4, dtype="float64",
                       seed=0)
    x = ids((6, B), 5)
    batch = {"x": x, "y": np.roll(x, -1, 0), "lengths": np.array([6, 2, 4])}
    h0 = random_state(m, B)
    for k in (1, 3, 5):
        m.train()
        _, _, s_k = m.loss(batch, state=h0, carry_at=k)
        _, expected = m.predict(x[:k], lengths=np.minimum(batch["lengths"], k), state=h0)
        states_equal(s_k, expected, rtol=1e-12, atol=1e-14)
    # default: the state after the last step; carry_at=T is the same
    _, _, s_T = m.loss(batch, state=h0)
    _, _, s_T2 = m.loss(batch, state=h0, carry_at=6)
    states_equal(s_T, m.predict(x, lengths=batch["lengths"], state=h0)[1])
    states_equal(s_T, s_T2)
    # the carry pass leaves the training caches intact: gradients as without carry_at
    m.zero_grad()
    m.loss(batch, state=h0)
    m.backward()
    g1 = {k: v.copy() for k, v in m.grads.items()}
    m.zero_grad()
    m.loss(batch, state=h0, carry_at=2)
    m.backward()
    for k, v in m.grads.items():
        np.testing.assert_allclose(v, g1[k], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="carry_at"):
        m.loss(batch, carry_at=7)


def test_tagger_state_chains_across_windows():
    """Two windows with the carried state give the outputs of one long pass (TBPTT)."""
    m = SequenceTagger(cell="lstm", num_layers=2, vocab_size=5, num_classes=5, hidden_size=4, dtype="float64",
                       seed=0)
    x = ids((8, B), 5)
    full, _ = m.predict(x)
    m.train()
    _, _, s = m.loss({"x": x[:5], "y": x[:5]}, carry_at=3)
    second, _ = m.predict(x[3:], state=s)
    np.testing.assert_allclose(second, full[3:], rtol=1e-12, atol=1e-13)
    # the returned state is a fresh copy: changing it changes nothing inside
    s[0][...] = 0.0
    np.testing.assert_allclose(m.predict(x[3:], state=m.loss({"x": x[:5], "y": x[:5]}, carry_at=3)[2])[0],
                               full[3:], rtol=1e-12)


def test_other_models_carry_and_state_rules():
    m = OneToMany(cond_classes=2, num_classes=4, cell="lstm", hidden_size=4, dtype="float64", seed=0)
    y = ids((5, B), 4)
    cond = np.array([0, 1, 0])
    _, _, s2 = m.loss({"cond": cond, "y": y}, carry_at=2)
    _, _, s_ref = m.loss({"cond": cond, "y": y[:2]})
    states_equal(s2, s_ref, rtol=1e-12)
    with pytest.raises(ValueError, match="state must be None"):
        m.loss({"cond": cond, "y": y}, state=s2)

    e = EncoderDecoder(tgt_vocab_size=6, src_vocab_size=5, hidden_size=4, dtype="float64", seed=0)
    b = {"x": ids((T, B), 5), "y": np.array([[3, 4, 5], [2, 5, 3], [0, 2, 2]])}
    _, _, d1 = e.loss(b, carry_at=1)
    _, _, d1_ref = e.loss({"x": b["x"], "y": b["y"][:1]})
    states_equal(d1, d1_ref, rtol=1e-12)

    c = SequenceClassifier(num_classes=2, cell="gru", vocab_size=5, hidden_size=4, dtype="float64", seed=0)
    bc = {"x": ids((T, B), 5), "y": np.array([0, 1, 1]), "lengths": LENGTHS}
    _, _, s = c.loss(bc, carry_at=2)
    ref = SequenceTagger(cell="gru", vocab_size=5, num_classes=2, hidden_size=4, dtype="float64", seed=9)
    ref.load_state_dict({k: v for k, v in c.state_dict().items() if not k.startswith("head")}, strict=False)
    states_equal(s, ref.predict(bc["x"][:2], lengths=np.minimum(LENGTHS, 2))[1], rtol=1e-12)

    bi = SequenceTagger(cell="gru", vocab_size=5, num_classes=5, bidirectional=True, hidden_size=3, seed=0)
    x = ids((T, B), 5)
    assert bi.loss({"x": x, "y": x})[2] is None
    with pytest.raises(ValueError, match="bidirectional"):
        bi.loss({"x": x, "y": x}, state=np.zeros((2, B, 3), np.float32))
    with pytest.raises(ValueError, match="bidirectional"):
        bi.step(x[0])


def test_state_shape_errors_name_the_problem():
    m = SequenceTagger(cell="lstm", vocab_size=5, num_classes=5, hidden_size=4, seed=0)
    x = ids((T, B), 5)
    with pytest.raises(TypeError, match=r"pair \(h, c\)"):
        m.loss({"x": x, "y": x}, state=np.zeros((1, B, 4), np.float32))
    with pytest.raises(ValueError, match="same batch size"):
        m.loss({"x": x, "y": x}, state=(np.zeros((1, 2, 4)), np.zeros((1, 2, 4))))
    with pytest.raises(KeyError, match="no 'y'"):
        m.loss({"x": x})
    with pytest.raises(TypeError, match="integer ids"):
        m.loss({"x": x.astype(float), "y": x})
    with pytest.raises(ValueError, match="vocab_size=5"):
        m.loss({"x": x + 5, "y": x})
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        SequenceTagger(vocab_size=5, input_size=3, num_classes=2)
    with pytest.raises(ValueError, match="exactly one of num_classes"):
        SequenceTagger(vocab_size=5)
    with pytest.raises(ValueError, match="cell must be one of"):
        SequenceTagger(cell="lstmm", vocab_size=5, num_classes=5)


# -- step-by-step paths ----------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn-relu", "lstm", "gru"])
def test_tagger_step_loop_equals_predict(cell):
    m = SequenceTagger(cell=cell, num_layers=2, vocab_size=5, num_classes=5, hidden_size=4, dropout=0.3,
                       dtype="float64", seed=0)
    m.train()   # step and predict run without dropout whatever the mode
    x = ids((T, B), 5)
    h0 = random_state(m, B)
    full, s_full = m.predict(x, state=h0)
    state = h0
    for t in range(T):
        out, state = m.step(x[t], state)
        np.testing.assert_allclose(out, full[t], rtol=1e-12, atol=1e-14)
    states_equal(state, s_full, rtol=1e-12)
    assert m.training


def test_one_to_many_generate_matches_teacher_forced_loss():
    m = OneToMany(cond_classes=3, num_classes=5, cell="lstm", num_layers=2, hidden_size=4, dtype="float64", seed=0)
    cond = np.array([0, 2, 1])
    gen = m.generate(cond, length=6)
    assert gen.shape == (6, 3) and gen.dtype.kind == "i"
    # the loss of the greedy sequence under teacher forcing equals the mean −log p of
    # the steps that produced it: both paths compute the same distribution
    m.eval()
    loss, count, _ = m.loss({"cond": cond, "y": gen})
    state, prev, nll = m.initial_state(cond), None, 0.0
    from rnnkit.losses import log_softmax
    for t in range(6):
        logits, state = m.step(prev, cond, state)
        assert np.array_equal(np.argmax(logits, -1), gen[t])
        nll -= log_softmax(logits)[np.arange(3), gen[t]].sum()
        prev = gen[t]
    assert count == 18
    np.testing.assert_allclose(loss, nll / 18, rtol=1e-10)
    s1 = m.generate(cond, 6, temperature=1.0, seed=4)
    np.testing.assert_array_equal(s1, m.generate(cond, 6, temperature=1.0, seed=4))
    assert s1.min() >= 0 and s1.max() < 5
    r = OneToMany(cond_size=2, output_size=2, cell="gru", hidden_size=4, dtype="float64", seed=0)
    g = r.generate(feats((B, 2)), length=3)
    assert g.shape == (3, B, 2) and np.isfinite(g).all()
    with pytest.raises(ValueError, match="temperature must be 0"):
        r.generate(feats((B, 2)), 3, temperature=0.5)


def test_classifier_and_regressor_inference():
    c = SequenceClassifier(num_classes=3, cell="lstm", input_size=2, pooling="attention", hidden_size=4, seed=0)
    x = feats((T, B, 2)).astype(np.float32)
    p = c.predict_proba(x, LENGTHS)
    assert p.shape == (B, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(c.predict(x, LENGTHS), p.argmax(axis=1))
    w = c.attention_weights(x, LENGTHS)
    assert np.all(w[np.arange(T)[:, None] >= LENGTHS[None, :]] == 0)
    # padding past a length changes nothing
    x2 = x.copy()
    x2[3, 1] = 100.0
    np.testing.assert_allclose(c.predict_proba(x2, LENGTHS), p, rtol=1e-6)
    r = SequenceRegressor(output_size=2, cell="gru", vocab_size=5, loss="quantile", quantiles=[0.1, 0.9],
                          hidden_size=4, seed=0)
    assert r.predict(ids((T, B), 5)).shape == (B, 2, 2)
    with pytest.raises(ValueError, match="not 'attention'"):
        SequenceRegressor(input_size=2, hidden_size=4).attention_weights(x)


def test_last_pooling_bidirectional_uses_last_valid_and_first_reverse():
    c = SequenceClassifier(num_classes=2, cell="gru", vocab_size=5, bidirectional=True, hidden_size=3,
                           dtype="float64", seed=0)
    x = ids((T, B), 5)
    c.eval()
    pooled, _, _ = c._encode(x, LENGTHS, None, None, "t")
    y, _ = c.rnn.forward(c.inp.forward(x), None, LENGTHS)
    for b in range(B):
        np.testing.assert_array_equal(pooled[b, :3], y[LENGTHS[b] - 1, b, :3])
        np.testing.assert_array_equal(pooled[b, 3:], y[0, b, 3:])


def test_meanmax_pooling_is_mean_then_max_over_valid_steps():
    c = SequenceClassifier(num_classes=2, cell="gru", input_size=2, bidirectional=True, hidden_size=3,
                           pooling="meanmax", dtype="float64", seed=0)
    x = feats((T, B, 2))
    x[:, 0] += 50.0         # large values past a sequence's end must not win the max
    pooled, _, _ = c._encode(x, LENGTHS, None, None, "t")
    y, _ = c.rnn.forward(c.inp.forward(x), None, LENGTHS)
    assert pooled.shape == (B, 12) and c.head.in_features == 12
    for b in range(B):
        valid = y[:LENGTHS[b], b]
        np.testing.assert_allclose(pooled[b, :6], valid.mean(axis=0))
        np.testing.assert_array_equal(pooled[b, 6:], valid.max(axis=0))


# -- decoding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,bidirectional", [("lstm", True), ("gru", False)])
def test_beam_width_one_equals_greedy(cell, bidirectional):
    e = EncoderDecoder(tgt_vocab_size=7, src_vocab_size=6, cell=cell, bidirectional=bidirectional,
                       hidden_size=5, seed=0)
    x = ids((5, 6), 6, seed=3)
    lengths = np.array([5, 1, 3, 4, 5, 2])
    g = e.greedy(x, lengths, max_len=8)
    assert e.beam_search(x, lengths, width=1, max_len=8) == g
    assert any(len(s) < 8 for s in g)          # some outputs stopped at EOS
    assert all(t not in (0, 1, 2) for s in g for t in s)   # no PAD/BOS/EOS in outputs


def test_beam_search_exhaustive_width_finds_best_normalised_sequence():
    e = EncoderDecoder(tgt_vocab_size=5, src_vocab_size=4, cell="gru", hidden_size=4, dtype="float64", seed=1)
    x = ids((3, 1), 4)
    max_len = 3
    state0 = e.encode(x)

    def logp_of(tokens, end_with_eos):
        state, last, total = state0, np.array([e.bos_id]), 0.0
        for tok in list(tokens) + ([e.eos_id] if end_with_eos else []):
            lp, state = e.decode_step(last, state)
            total += lp[0, tok]
            last = np.array([tok])
        return total

    for alpha in (0.0, 1.0):
        best, best_score = None, -np.inf
        for n in range(max_len + 1):
            for toks in itertools.product([3, 4], repeat=n):
                eos = n < max_len
                L = n + 1 if eos else n
                score = logp_of(toks, eos) / L ** alpha
                if score > best_score:
                    best, best_score = list(toks), score
        got, scores = e.beam_search(x, width=64, max_len=max_len, length_penalty=alpha, return_scores=True)
        assert got[0] == best
        np.testing.assert_allclose(scores[0], best_score, rtol=1e-10)


def test_encoder_decoder_learns_to_copy():
    """A tiny copy task: after training, greedy and beam decoding reproduce the source."""
    r = rng(0)
    V = 6                                  # 0 PAD, 1 BOS, 2 EOS, tokens 3..5
    m = EncoderDecoder(tgt_vocab_size=V, src_vocab_size=V, cell="gru", hidden_size=24, embedding_dim=8,
                       seed=0)
    from rnnkit.optim import Adam
    opt = Adam(m.params, lr=0.02)
    S = 3
    for _ in range(300):
        src = r.integers(3, V, size=(S, 16))
        y = np.concatenate([src, np.full((1, 16), 2)])
        m.zero_grad()
        m.loss({"x": src, "y": y})
        m.backward()
        opt.step(m.grads)
    src = np.array([[3, 5, 4, 4], [4, 3, 5, 3], [5, 3, 4, 5]])
    want = src.T.tolist()
    assert m.greedy(src, max_len=6) == want
    assert m.beam_search(src, width=3, max_len=6) == want


def test_every_model_trains_with_the_trainer_and_resumes_from_its_config(tmp_path):
    from rnnkit.train import TrainConfig, Trainer
    for i, (model, batch) in enumerate(make_all()):
        carry = isinstance(model, SequenceTagger) and not model.bidirectional
        cfg = TrainConfig(epochs=3, lr=0.01, quiet=True, seed=0, carry_state=carry,
                          tbptt_k1=2 if carry else None)
        model.eval()
        before = model.loss(batch)[0]
        out = tmp_path / f"run{i}"
        Trainer(model, cfg, out).fit([batch, batch])
        model.eval()
        assert model.loss(batch)[0] < before, type(model).__name__
        again = Trainer.resume(out)           # rebuilds the model from config.json
        assert type(again.model) is type(model) and again.step == 6
        for k, v in model.params.items():
            np.testing.assert_array_equal(again.model.params[k], v)


def test_class_weighted_classifier_round_trips_and_resumes(tmp_path):
    from rnnkit.losses import softmax_cross_entropy
    from rnnkit.train import TrainConfig, Trainer

    kw = dict(num_classes=3, cell="gru", vocab_size=5, hidden_size=4, dtype="float64", seed=3)
    batch = {"x": ids((T, B), 5), "y": np.array([0, 1, 2]), "lengths": LENGTHS}
    w = np.array([0.5, 1.0, 4.0])
    model = SequenceClassifier(class_weights=w, **kw)
    cfg = model.config()
    assert cfg["class_weights"] == [0.5, 1.0, 4.0] and SequenceClassifier(**kw).config()["class_weights"] is None
    same = build(json.loads(json.dumps(cfg)))
    assert same.config() == cfg
    np.testing.assert_array_equal(same.class_weights, w)
    # the loss is the class-weighted mean of the logits' cross-entropy, over B sequences
    model.eval()
    logits = model.predict_logits(batch["x"], batch["lengths"])
    loss, count, _ = model.loss(batch)
    assert loss == pytest.approx(softmax_cross_entropy(logits, batch["y"], weight=w)[0], rel=1e-12)
    assert loss != pytest.approx(softmax_cross_entropy(logits, batch["y"])[0], rel=1e-6) and count == B
    with pytest.raises(ValueError, match="class_weights must be 3 positive numbers"):
        SequenceClassifier(class_weights=[1.0, 2.0], **kw)
    with pytest.raises(ValueError, match="class_weights apply to classification only"):
        M.base.OutputHead("SequenceRegressor", output_size=1, class_weights=[1.0])
    # a class-weighted run directory resumes from its config.json alone, and two epochs
    # then two more equal four uninterrupted ones
    tc = dict(lr=0.01, quiet=True, seed=0)
    Trainer(model, TrainConfig(epochs=2, **tc), tmp_path / "a").fit([batch, batch])
    again = Trainer.resume(tmp_path / "a", epochs=4)
    assert type(again.model) is SequenceClassifier and again.model.config() == cfg and again.step == 4
    again.fit([batch, batch])
    straight = SequenceClassifier(class_weights=w, **kw)
    Trainer(straight, TrainConfig(epochs=4, **tc), tmp_path / "b").fit([batch, batch])
    assert again.step == 8
    for k, v in straight.params.items():
        np.testing.assert_array_equal(again.model.params[k], v, err_msg=k)


# -- position channels -----------------------------------------------------------------

def test_position_features_follow_each_sequences_own_length():
    from rnnkit.models.sequence import position_features

    pos = position_features(4, np.array([4, 2, 1]), 3, np.float64)
    assert pos.shape == (4, 3, 3)
    u = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    assert np.allclose(pos[:, 0, 0], 2 * u - 1)
    assert np.allclose(pos[:, 0, 1], np.cos(np.pi * u)) and np.allclose(pos[:, 0, 2], np.cos(2 * np.pi * u))
    assert np.allclose(pos[:2, 1, 0], [-1.0, 1.0])          # length 2: its own ends are -1 and 1
    assert np.allclose(pos[0, 2], [-1.0, 1.0, 1.0])         # length 1: u = 0
    assert np.array_equal(position_features(4, None, 3, np.float64)[:, 0], pos[:, 0])


@pytest.mark.parametrize("pooling,bidirectional", [("attention", True), ("last", False)])
def test_position_channels_gradcheck(pooling, bidirectional):
    m = SequenceClassifier(num_classes=3, cell="gru", vocab_size=6, embedding_dim=3, hidden_size=4, pooling=pooling,
                           bidirectional=bidirectional, positions=3, dtype="float64", seed=0)
    assert m.rnn.input_size == 6 and build(m.config()).positions == 3
    assert_gradcheck(m, {"x": ids((T, B), 6), "lengths": LENGTHS, "y": np.array([0, 2, 1])})


def test_position_channels_are_checked():
    kw = dict(num_classes=2, cell="gru", vocab_size=3, embedding_dim=2, hidden_size=3, seed=1)
    with pytest.raises(ValueError, match="positions"):
        SequenceClassifier(positions=-1, **kw)
    assert SequenceClassifier(**kw).config()["positions"] == 0


@pytest.mark.parametrize("cell", ["rnn", "gru", "indrnn", "mingru", "minlstm"])
def test_last_pooling_gradcheck_every_cell(cell):
    """Unidirectional "last" pooling sends ∂L/∂p into the recurrent layer as ∂L/∂h_n (no
    array of zeros for ∂L/∂y): right for every cell, with two layers, ragged lengths and
    a carried state (the LSTM: test_classifier_gradcheck)."""
    m = SequenceRegressor(output_size=2, cell=cell, input_size=3, pooling="last", num_layers=2, **SMALL)
    batch = {"x": feats((T, B, 3)), "lengths": LENGTHS, "y": feats((B, 2), seed=5)}
    assert_gradcheck(m, batch, random_state(m, B))
