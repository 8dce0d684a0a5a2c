"""ONNX export of the variants: peepholes through the LSTM operator's P input, zoneout and
recurrent dropout exported as the eval-mode (plain) cell, and a clear error for what the
ONNX standard has no operator for."""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.export.onnx import export_onnx, run_onnx

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

LENGTHS = np.array([5, 3, 1])


@pytest.mark.parametrize("kw", [dict(peephole=True), dict(peephole=True, zoneout=0.3, recurrent_dropout=0.3),
                                dict(zoneout=0.3)])
def test_lstm_variants_export_and_match(tmp_path, kw):
    layer = rk.Recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, seed=0, **kw)
    rng = np.random.default_rng(1)
    for k, v in layer.params.items():         # peepholes large enough to matter
        if k.startswith("weight_c"):
            v[...] = rng.normal(size=v.shape)
    layer.eval()
    x = rng.normal(size=(5, 3, 3)).astype(np.float32)
    h0 = tuple(rng.normal(size=(4, 3, 4)).astype(np.float32) for _ in range(2))
    y, (h, c) = layer.forward(x, h0, LENGTHS)
    yo, (ho, co) = run_onnx(export_onnx(layer, tmp_path / "m.onnx"), x, h0, LENGTHS)
    for ours, theirs in ((y, yo), (h, ho), (c, co)):
        assert np.abs(ours - theirs).max() < 1e-5 * max(1.0, np.abs(ours).max())
    if "peephole" in kw:      # the peepholes are in the graph: zeroing them changes the result
        for k, v in layer.params.items():
            if k.startswith("weight_c"):
                v[...] = 0
        assert np.abs(layer.forward(x, h0, LENGTHS)[0] - yo).max() > 1e-3


@pytest.mark.parametrize("cell,kw,match", [
    ("lstm", dict(proj_size=2), "proj_size=2 cannot be exported"),
    ("lstm", dict(layer_norm=True), "layer_norm=True cannot be exported"),
    ("gru", dict(layer_norm=True), "no input for layer-normalised cells"),
    ("indrnn", {}, "no IndRNN operator"),
    ("mingru", {}, "no minGRU operator"),
    ("minlstm", {}, "no minLSTM operator"),
])
def test_what_onnx_lacks_is_a_clear_error(tmp_path, cell, kw, match):
    with pytest.raises(ValueError, match=match):
        export_onnx(rk.Recurrent(cell, 3, 4, **kw), tmp_path / "m.onnx")
    model = rk.models.SequenceRegressor(output_size=1, input_size=3, cell=cell,
                                        hidden_size=4) if not kw else None
    if model is not None:
        with pytest.raises(ValueError, match=match):
            export_onnx(model, tmp_path / "r.onnx")
    assert not (tmp_path / "m.onnx").exists()
