"""Int8 recurrent weights: the packing, the C loops equal to the NumPy reference, the
layers and the language model's loss within 0.01 nats/char of float32."""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import fast
from rnnkit.cli import main
from rnnkit.layers.quantized import (pack, qmatvec, qmatvec_numpy, quantize_inputs, quantize_model,
                                     quantize_rows, unpack)
from rnnkit.tasks.lm import CharLanguageModel

needs_c = pytest.mark.skipif(fast.kernels() is None or not hasattr(fast.kernels(), "qstack_inf"),
                             reason="rnnkit.fast's int8 loops are not built")


def _isas():
    return fast.kernels().ISAS if fast.kernels() is not None else ()


def test_rows_are_symmetric_int8_with_one_scale_per_output_channel():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((37, 21)) * rng.uniform(0.01, 3, (37, 1))
    w[5] = 0.0                                                # an all-zero row
    packed, s = quantize_rows(w)
    Q = unpack(packed, 37, 21).astype(np.float64)
    assert np.abs(Q).max() == 127 and s[5] == 0 and not Q[5].any()
    np.testing.assert_allclose(s, np.abs(w).max(axis=1) / 127, rtol=1e-6)
    assert np.all(np.abs(Q * s[:, None] - w) <= s[:, None] * 0.5 + 1e-6)
    q = np.arange(-30, 30, dtype=np.int8).reshape(3, 20)
    assert np.array_equal(unpack(pack(q), 3, 20), q)


def test_inputs_use_15_bits_and_never_overflow_int32():
    v = np.array([[0.5, -1.0, 0.25], [0, 0, 0]], np.float32)
    q, s = quantize_inputs(v)
    assert q[0].tolist() == [16384, -32767, 8192] and s[1] == 0 and not q[1].any()
    big = np.full((1, 5000), 1.0, np.float32)               # 127 * 5000 * qmax < 2^31
    q, _ = quantize_inputs(big)
    assert 127 * 5000 * q.max() < 2 ** 31


@needs_c
@pytest.mark.parametrize("K", [1, 7, 64, 65, 300])
def test_c_product_equals_numpy_bit_for_bit_on_every_instruction_set(K):
    rng = np.random.default_rng(K)
    x = rng.standard_normal((3, K)).astype(np.float32)
    x[1] *= 1e-3
    W = rng.standard_normal((37, K)).astype(np.float32)
    b = rng.standard_normal(37).astype(np.float32)
    Q, s = quantize_rows(W)
    want = qmatvec_numpy(x, Q, s, b)
    old = fast.isa()
    try:
        for isa in _isas():
            fast.set_isa(isa)
            assert np.array_equal(qmatvec(x, Q, s, b), want), isa
            assert np.array_equal(qmatvec(x, Q, s), qmatvec_numpy(x, Q, s)), isa
    finally:
        fast.set_isa(old)
    # int8 weights: within a few tenths of a percent of the float product
    ref = x @ W.T + b
    assert np.abs(want - ref).max() <= 0.01 * np.abs(ref).max()


@pytest.mark.parametrize("cell,nl,bidir", [("lstm", "tanh", False), ("gru", "tanh", False),
                                            ("rnn", "tanh", False), ("rnn", "relu", False),
                                            ("lstm", "tanh", True), ("gru", "tanh", True)])
def test_quantized_layer_is_close_to_float_and_c_equals_numpy(cell, nl, bidir):
    layer = rk.Recurrent(cell, 10, 24, num_layers=2, nonlinearity=nl, bidirectional=bidir, seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3, 10)).astype(np.float32)
    lengths = np.array([6, 2, 4])
    shape = (2 * (2 if bidir else 1), 3, 24)
    h0 = rng.standard_normal(shape).astype(np.float32) * 0.5
    h0 = (h0, h0 * 2) if cell == "lstm" else h0
    with rk.no_grad():
        y_f, h_f = layer.forward(x, h0, lengths)
    layer.quantize("int8")
    y_q, h_q = layer.forward(x, h0, lengths)
    assert np.abs(y_q - y_f).max() < 0.03
    assert not y_q[2:, 1].any()                                 # past a sequence's end: 0
    xt, h0c, lens = layer._check_inputs(x, h0, lengths)
    y_n, h_n = layer._quant.run(xt, h0c, lens, numpy=True)
    np.testing.assert_allclose(y_q, y_n, atol=2e-4)
    for a, b in zip(*(s if cell == "lstm" else (s,) for s in (h_q, h_n))):
        np.testing.assert_allclose(a, b, atol=2e-4)
    # a generation step (the whole stack in one call) equals the same step in a sequence
    if not bidir:
        y1, _ = layer.forward(x[:1, :1])
        np.testing.assert_allclose(y1[0], layer.forward(x[:1, :2])[0][0, :1], atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_int8_stack_on_several_threads_gives_the_same_bits_as_on_one(cell):
    if not fast.available():
        pytest.skip("needs the compiled loops")
    layer = rk.Recurrent(cell, 7, 48, num_layers=3, seed=3).quantize("int8")     # 3 panels of channels
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3, 7)).astype(np.float32)
    lengths = np.array([5, 1, 3])
    h0 = rng.standard_normal((3, 3, 48)).astype(np.float32)
    h0 = (h0, -h0) if cell == "lstm" else h0
    flops, threads = fast.set_flops_per_thread(0), fast.set_max_threads(2)     # every loop on 2 threads
    try:
        y_many, h_many = layer.forward(x, h0, lengths)
        fast.set_max_threads(1)
        y_one, h_one = layer.forward(x, h0, lengths)
    finally:
        fast.set_flops_per_thread(flops)
        fast.set_max_threads(threads)
    np.testing.assert_array_equal(y_many, y_one)
    for a, b in zip(*(s if cell == "lstm" else (s,) for s in (h_many, h_one))):
        np.testing.assert_array_equal(a, b)
    assert not y_many[1:, 1].any() and y_many[:, 0].all()
    xt, h0c, lens = layer._check_inputs(x, h0, lengths)
    y_n, _ = layer._quant.run(xt, h0c, lens, numpy=True)
    np.testing.assert_allclose(y_many, y_n, atol=2e-4)


def test_quantized_layer_errors():
    layer = rk.Recurrent("lstm", 4, 8, seed=0)
    with pytest.raises(ValueError, match="quantize must be None .* 'int8', got 'int4'"):
        layer.quantize("int4")
    layer.quantize("int8")
    layer.forward(np.ones((2, 1, 4), np.float32))
    with pytest.raises(RuntimeError, match="int8 weights for inference"):
        layer.backward(np.ones((2, 1, 8), np.float32))
    layer.quantize(None)
    layer.forward(np.ones((2, 1, 4), np.float32))
    layer.backward(np.ones((2, 1, 8), np.float32))                # float again: trains
    with pytest.raises(ValueError, match="plain rnn, lstm and gru"):
        rk.Recurrent("lstm", 4, 8, layer_norm=True).quantize()
    with pytest.raises(ValueError, match="float32"):
        rk.Recurrent("gru", 4, 8, dtype=np.float64).quantize()
    with pytest.raises(ValueError, match="quantize must be"):
        quantize_model(rk.Recurrent("gru", 4, 8), "bfloat8")


TEXT = "the cat sat on the mat and the dog sat on the log. " * 60


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("qlm") / "run"
    lm = CharLanguageModel(cell="lstm", hidden_size=48, num_layers=2, embedding_dim=8, seq_len=32,
                           batch_size=8, seed=0).fit(TEXT, epochs=4, lr=1e-2)
    lm.save(out)
    return out


def test_int8_language_model_loss_is_within_001_nats_of_float32(lm_dir):
    held_out = "the dog sat on the mat and the cat sat on the log. " * 4
    f = CharLanguageModel.load(lm_dir)
    q = CharLanguageModel.load(lm_dir, quantize="int8")
    nf, nq = f.evaluate(held_out)["nats_per_char"], q.evaluate(held_out)["nats_per_char"]
    assert nf < 1.5                                              # the model learned something
    assert abs(nq - nf) < 0.01
    assert len(q.sample("the ", 40, seed=0)) == 40
    assert q.greedy("the c", 10) == f.greedy("the c", 10)
    with pytest.raises(ValueError, match="CharLanguageModel.load: quantize must be"):
        CharLanguageModel.load(lm_dir, quantize="int16")


def test_cli_generate_and_evaluate_take_quantize(lm_dir, tmp_path, capsys):
    assert main(["generate", str(lm_dir), "--prompt", "the ", "--length", "20", "--seed", "1",
                 "--quantize", "int8"]) == 0
    assert capsys.readouterr().out.startswith("the ")
    text = tmp_path / "held.txt"
    text.write_text(TEXT[:300], encoding="utf-8")
    assert main(["evaluate", str(lm_dir), str(text), "--quantize", "int8"]) == 0
    assert '"nats_per_char"' in capsys.readouterr().out
    assert main(["generate", str(lm_dir), "--quantize", "int4"]) == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err
