"""ONNX export: the graph ONNX Runtime runs equals rnnkit's own forward.

Every cell (rnn tanh/relu, lstm, gru) x layers {1, 2} x bidirectional x bias, each
with random non-zero weights and initial states, on whole and ragged batches
(sequence_lens); then the models (tagger with ids or float features, classifier
and regressor with pooling="last"), the single-step path, and the errors.
"""

import itertools
import os
import sys

import numpy as np
import pytest

import rnnkit as rk
from conftest import assert_all_close, rel_err
from rnnkit.errors import RnnkitError
from rnnkit.export import MIN_OPSET, OnnxRunner, export_onnx, run_onnx
from rnnkit.models import OneToOne, SequenceClassifier, SequenceRegressor, SequenceTagger

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

T, B, I, H = 5, 3, 3, 4
RAGGED = np.array([5, 1, 3])          # the full length, length 1 and one in between
RTOL = 1e-5
CELLS = {"rnn_tanh": ("rnn", "tanh"), "rnn_relu": ("rnn", "relu"), "lstm": ("lstm", "tanh"),
         "gru": ("gru", "tanh")}


def assert_onnx_close(onnx_out: dict, ours: dict) -> None:
    """ONNX Runtime's outputs equal rnnkit's, tensor by tensor (float32, to RTOL)."""
    assert all(a.dtype == np.float32 for a in onnx_out.values())
    assert_all_close(onnx_out, ours, RTOL, peer="rnnkit")


def perturb(module, seed: int) -> None:
    """Make every parameter distinct and non-zero (bias_ih != bias_hh, so a misplaced
    bias block or gate shows)."""
    rng = np.random.default_rng(seed)
    for v in module.params.values():
        v += (0.3 * rng.standard_normal(v.shape)).astype(v.dtype)


def random_state(cell, n, rng, dtype=np.float32):
    if cell == "lstm":
        return tuple(rng.standard_normal((n, B, H)).astype(dtype) for _ in range(2))
    return rng.standard_normal((n, B, H)).astype(dtype)


def split_state(cell, state, prefix="h_n") -> dict:
    if cell == "lstm":
        return {prefix: state[0], prefix.replace("h", "c", 1): state[1]}
    return {prefix: state}


def node_ops(path) -> list:
    return [n.op_type for n in onnx.load(path).graph.node]


# -- Recurrent: the whole grid -------------------------------------------------------------

@pytest.mark.parametrize("name,num_layers,bidirectional,bias",
                         list(itertools.product(CELLS, [1, 2], [False, True], [True, False])))
def test_recurrent_matches_forward(tmp_path, name, num_layers, bidirectional, bias):
    cell, nonlinearity = CELLS[name]
    layer = rk.Recurrent(cell, I, H, num_layers, nonlinearity=nonlinearity, bias=bias,
                         bidirectional=bidirectional, seed=3)
    perturb(layer, 4)
    path = export_onnx(layer, tmp_path / "layer.onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    op = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell]
    assert node_ops(path).count(op) == num_layers     # one standard node per layer

    runner = OnnxRunner(path)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = random_state(cell, layer.num_layers * layer.num_directions, rng)
    for lengths in (None, RAGGED):
        y, h_n = layer.forward(x, h0, lengths)
        y_o, h_n_o = runner.run(x, h0, lengths)
        assert_onnx_close({"y": y_o, **split_state(cell, h_n_o)}, {"y": y, **split_state(cell, h_n)})
    if bidirectional:
        # the reverse direction of a ragged sequence starts at its own last step
        assert np.all(y_o[1:, 1] == 0) and np.all(y_o[3:, 2] == 0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_batch_first_opset_min_and_no_optional_inputs(tmp_path, cell):
    layer = rk.Recurrent(cell, I, H, 2, batch_first=True, bidirectional=True, seed=1)
    perturb(layer, 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    h0 = random_state(cell, 4, rng)

    path = export_onnx(layer, tmp_path / "bf.onnx", opset=MIN_OPSET)
    proto = onnx.load(path)
    assert proto.opset_import[0].version == MIN_OPSET
    y, h_n = layer.forward(x, h0, RAGGED)
    y_o, h_n_o = run_onnx(path, x, h0, RAGGED)
    assert_onnx_close({"y": y_o, **split_state(cell, h_n_o)}, {"y": y, **split_state(cell, h_n)})

    # without the h0/c0 and lengths inputs: zeros and whole sequences
    bare = export_onnx(layer, tmp_path / "bare.onnx", initial_state=False, lengths=False)
    runner = OnnxRunner(bare)
    assert runner.input_names == ["x"]
    y, h_n = layer.forward(x)
    y_o, h_n_o = runner.run(x)
    assert_onnx_close({"y": y_o, **split_state(cell, h_n_o)}, {"y": y, **split_state(cell, h_n)})
    with pytest.raises(ValueError, match="initial_state=False"):
        runner.run(x, h0)
    with pytest.raises(ValueError, match="lengths=False"):
        runner.run(x, lengths=RAGGED)


def test_float64_layer_exports_as_float32_by_default(tmp_path):
    layer = rk.Recurrent("gru", I, H, 2, dtype=np.float64, seed=0)
    perturb(layer, 1)
    x = np.random.default_rng(1).standard_normal((T, B, I))
    y, h_n = layer.forward(x, lengths=RAGGED)
    y_o, h_n_o = run_onnx(export_onnx(layer, tmp_path / "f32.onnx"), x, lengths=RAGGED)
    assert y_o.dtype == np.float32
    assert rel_err(y_o, y) < RTOL and rel_err(h_n_o, h_n) < RTOL

    path = export_onnx(layer, tmp_path / "f64.onnx", dtype="float64")
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert {w.dtype for w in weights.values() if w.dtype.kind == "f"} == {np.dtype(np.float64)}
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


# -- the models ------------------------------------------------------------------------------

def test_tagger_with_ids_matches_predict_and_steps(tmp_path):
    # what CharLanguageModel builds: ids through an embedding, logits over the vocabulary
    model = SequenceTagger(cell="lstm", hidden_size=H, num_layers=2, vocab_size=7, embedding_dim=5,
                           num_classes=7, seed=0)
    perturb(model, 1)
    path = export_onnx(model, tmp_path / "tagger.onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    runner = OnnxRunner(path)
    assert runner.input_names == ["x", "h0", "c0", "lengths"]
    assert runner.output_names == ["logits", "h_n", "c_n"]

    rng = np.random.default_rng(2)
    x = rng.integers(0, 7, (T, B))
    state = random_state("lstm", 2, rng)
    out, s = model.predict(x, RAGGED, state)
    out_o, s_o = runner.run(x, state, RAGGED)
    assert_onnx_close({"logits": out_o, **split_state("lstm", s_o)}, {"logits": out, **split_state("lstm", s)})

    # generation: one step at a time, carrying only the state
    s, s_o = None, None
    for t in range(T):
        out, s = model.step(x[t], s)
        out_o, s_o = runner.step(x[t], s_o)
        assert_onnx_close({"logits": out_o, **split_state("lstm", s_o)}, {"logits": out, **split_state("lstm", s)})
    with pytest.raises(ValueError, match="vocab_size=7"):
        runner.run(np.full((T, B), 7))
    with pytest.raises(TypeError, match="integer ids"):
        runner.run(x.astype(np.float32))


def test_tagger_with_features_bidirectional_quantiles(tmp_path):
    model = SequenceTagger(cell="gru", hidden_size=H, num_layers=2, input_size=I, output_size=2,
                           loss="quantile", quantiles=[0.1, 0.5, 0.9], bidirectional=True, seed=0)
    perturb(model, 3)
    path = export_onnx(model, tmp_path / "bi.onnx")
    runner = OnnxRunner(path)
    # a bidirectional tagger carries no state, as its predict
    assert runner.input_names == ["x", "lengths"] and runner.output_names == ["prediction"]
    x = np.random.default_rng(4).standard_normal((T, B, I)).astype(np.float32)
    out, s = model.predict(x, RAGGED)
    out_o, s_o = runner.run(x, lengths=RAGGED)
    assert s is None and s_o is None
    assert out_o.shape == (T, B, 2, 3)
    assert_onnx_close({"prediction": out_o}, {"prediction": out})
    with pytest.raises(ValueError, match="takes no state"):
        runner.run(x, np.zeros((4, B, H), np.float32))
    with pytest.raises(ValueError, match="step by step"):
        runner.step(x[0])
    with pytest.raises(ValueError, match=r"\(T, B, 3\)"):
        runner.run(x[..., :2])


@pytest.mark.parametrize("cell,num_layers,bidirectional",
                         [("lstm", 2, True), ("gru", 1, False), ("rnn-relu", 2, False), ("rnn", 1, True)])
def test_classifier_last_pooling(tmp_path, cell, num_layers, bidirectional):
    model = SequenceClassifier(num_classes=3, cell=cell, hidden_size=H, num_layers=num_layers,
                               vocab_size=6, embedding_dim=4, bidirectional=bidirectional, seed=0)
    perturb(model, 5)
    path = export_onnx(model, tmp_path / "clf.onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    runner = OnnxRunner(path)
    assert runner.output_names == ["logits"]
    x = np.random.default_rng(6).integers(0, 6, (T, B))
    for lengths in (None, RAGGED):
        assert_onnx_close({"logits": runner.run(x, lengths=lengths)}, {"logits": model.predict_logits(x, lengths)})


def test_regressor_last_pooling_with_features(tmp_path):
    model = SequenceRegressor(output_size=2, cell="lstm", hidden_size=H, num_layers=2, input_size=I,
                              bidirectional=True, seed=1)
    perturb(model, 7)
    path = export_onnx(model, tmp_path / "reg.onnx")
    x = np.random.default_rng(8).standard_normal((T, B, I))          # float64: the runner casts
    pred = model.predict(x, RAGGED)
    pred_o = run_onnx(path, x, lengths=RAGGED)
    assert_onnx_close({"prediction": pred_o}, {"prediction": pred})
    with pytest.raises(ValueError, match="takes no state"):
        run_onnx(path, x, h0=np.zeros((4, B, H), np.float32))


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_unsupported_pooling_is_named(tmp_path, pooling):
    model = SequenceClassifier(num_classes=2, hidden_size=H, input_size=I, pooling=pooling, seed=0)
    with pytest.raises(ValueError, match=f"pooling {pooling!r} is not supported, only pooling='last'"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not os.listdir(tmp_path)


def test_bad_arguments(tmp_path):
    layer = rk.Recurrent("rnn", I, H, seed=0)
    with pytest.raises(TypeError, match="cannot export a OneToOne"):
        export_onnx(OneToOne(hidden_size=H, input_size=I, num_classes=2), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset must be >= 14, got 13"):
        export_onnx(layer, tmp_path / "m.onnx", opset=13)
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_onnx(layer, tmp_path / "m.onnx", dtype="float16")
    with pytest.raises(TypeError, match="lengths must be True or False"):
        export_onnx(layer, tmp_path / "m.onnx", lengths=1)
    assert not os.listdir(tmp_path)

    path = export_onnx(layer, tmp_path / "m.onnx")
    runner = OnnxRunner(path)
    x = np.zeros((T, B, I), np.float32)
    with pytest.raises(ValueError, match=r"expected x of shape \(T, B, 3\)"):
        runner.run(np.zeros((T, B, 2), np.float32))
    with pytest.raises(TypeError, match="floats"):
        runner.run(x.astype(np.int64))
    with pytest.raises(ValueError, match=r"state of shape \(1, 3, 4\)"):
        runner.run(x, np.zeros((1, 2, H), np.float32))
    with pytest.raises(TypeError, match="one array"):
        runner.run(x, (np.zeros((1, B, H), np.float32),) * 2)
    with pytest.raises(ValueError, match="lengths must lie in"):
        runner.run(x, lengths=np.array([0, 1, 2]))


def test_runner_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(RnnkitError, match="file not found"):
        OnnxRunner(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(RnnkitError, match="cannot load"):
        OnnxRunner(tmp_path / "junk.onnx")
    # a valid ONNX graph that export_onnx did not write
    h = onnx.helper
    graph = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "g",
                         [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.save(proto, tmp_path / "foreign.onnx")
    with pytest.raises(RnnkitError, match="not a graph written by rnnkit"):
        OnnxRunner(tmp_path / "foreign.onnx")


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path):
    a = rk.Recurrent("lstm", I, H, seed=0)
    b = rk.Recurrent("lstm", I, H, seed=1)
    path = tmp_path / "m.onnx"
    export_onnx(a, path)
    export_onnx(b, path)
    assert os.listdir(tmp_path) == ["m.onnx"]
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    y_o, _ = run_onnx(path, x)
    assert rel_err(y_o, b.forward(x)[0]) < RTOL and rel_err(y_o, a.forward(x)[0]) > 1e-2


def test_clear_errors_without_onnx_or_onnxruntime(tmp_path, monkeypatch):
    layer = rk.Recurrent("gru", I, H, seed=0)
    path = export_onnx(layer, tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)                 # import onnx -> ImportError
    with pytest.raises(RnnkitError, match=r'pip install "rnnkit\[onnx\]"'):
        export_onnx(layer, tmp_path / "n.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RnnkitError, match=r'needs the onnxruntime package.*pip install "rnnkit\[onnx\]"'):
        OnnxRunner(path)
