"""Activations of a character model, interpretable units, the coloured-text page."""

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from rnnkit.cells import CELLS
from rnnkit.diagnostics import activations as act
from rnnkit.diagnostics.gradflow import cell_params
from rnnkit.models.tagger import SequenceTagger

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT = 'say("hi there") and (x + 1)\nthen "quote" ok\n'


def _vocab(text):
    return {c: i for i, c in enumerate(sorted(set(text)))}


def _char_model(cell, num_layers=2, hidden=6):
    V = len(_vocab(TEXT))
    return SequenceTagger(cell, hidden, num_layers=num_layers, vocab_size=V, embedding_dim=5,
                          num_classes=V, dtype="float64", seed=3)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_collect_activations_reads_the_cell_caches(cell):
    model = _char_model(cell)
    ids = act.encode_text(TEXT, _vocab(TEXT))
    model.train()
    acts = act.collect_activations(model, ids)
    assert model.training                                          # mode restored
    assert acts["cell"] == cell and len(acts["layers"]) == 2
    assert set(acts["layers"][0]) == set(act.PARTS[cell])
    T, H = len(TEXT), 6
    for part in acts["layers"][1].values():
        assert part.shape == (T, H)
    # the top layer's h equals the cells run by hand on the embedded text
    x = model.params["embedding.weight"][ids][:, None, :]
    y0, _, _ = CELLS[cell].forward(cell_params(model.rnn, 0), x)
    y1, _, _ = CELLS[cell].forward(cell_params(model.rnn, 1), y0)
    np.testing.assert_allclose(acts["layers"][1]["h"], y1[:, 0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(acts["layers"][0]["h"], y0[:, 0], rtol=1e-12, atol=1e-14)


def test_lstm_gates_satisfy_the_cell_equations():
    model = _char_model("lstm", num_layers=1)
    ids = act.encode_text(TEXT, _vocab(TEXT))
    a = act.collect_activations(model, ids)["layers"][0]
    c_prev = np.vstack([np.zeros((1, 6)), a["c"][:-1]])
    np.testing.assert_allclose(a["c"], a["f"] * c_prev + a["i"] * a["g"], rtol=1e-12)   # c = f⊙c₋₁ + i⊙g
    np.testing.assert_allclose(a["h"], a["o"] * np.tanh(a["c"]), rtol=1e-12)           # h = o⊙tanh(c)
    # the input gate from its own equation, i = σ(W_ii x + b_ii + W_hi h₋₁ + b_hi)
    p = cell_params(model.rnn, 0)
    x = model.params["embedding.weight"][ids]
    h_prev = np.vstack([np.zeros((1, 6)), a["h"][:-1]])
    pre = x @ p["weight_ih"][:6].T + p["bias_ih"][:6] + h_prev @ p["weight_hh"][:6].T + p["bias_hh"][:6]
    np.testing.assert_allclose(a["i"], _sigmoid(pre), rtol=1e-10)


def test_gru_gates_satisfy_the_cell_equation():
    model = _char_model("gru", num_layers=1)
    a = act.collect_activations(model, act.encode_text(TEXT, _vocab(TEXT)))["layers"][0]
    h_prev = np.vstack([np.zeros((1, 6)), a["h"][:-1]])
    np.testing.assert_allclose(a["h"], (1 - a["z"]) * a["n"] + a["z"] * h_prev, rtol=1e-12)


def test_encode_text_accepts_dict_callable_and_vocab_object():
    vocab = _vocab(TEXT)

    class Vocab:
        def encode(self, text):
            return [vocab[c] for c in text]

    expected = np.array([vocab[c] for c in TEXT])
    np.testing.assert_array_equal(act.encode_text(TEXT, vocab), expected)
    np.testing.assert_array_equal(act.encode_text(TEXT, Vocab()), expected)
    np.testing.assert_array_equal(act.encode_text(TEXT, lambda t: [vocab[c] for c in t]), expected)
    with pytest.raises(ValueError, match="not in the vocabulary: '@'"):
        act.encode_text("a@", {"a": 0})
    with pytest.raises(ValueError, match="one integer id per character"):
        act.encode_text("ab", lambda t: [0])
    with pytest.raises(ValueError, match="ids must lie"):
        act.collect_activations(_char_model("rnn"), np.array([0, 99]))


def test_text_features_by_hand():
    f = act.text_features('a "b" (c)\nd')
    #                      a ␣ " b " ␣ ( c ) ↵ d
    np.testing.assert_array_equal(f["inside_quotes"], [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(f["position_in_line"], [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    np.testing.assert_array_equal(f["inside_parens"], [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(f["is_space"], [0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0])


def test_find_interpretable_units_finds_a_planted_unit():
    rng = np.random.default_rng(0)
    T, H = len(TEXT), 5
    feats = act.text_features(TEXT)
    h = rng.standard_normal((T, H)) * 0.3
    h[:, 3] = -feats["inside_quotes"] + 0.01 * rng.standard_normal(T)   # anti-correlated is fine
    h[:, 1] = 0.5                                                       # constant: r = 0, not NaN
    c = rng.standard_normal((T, H)) * 0.3
    c[:, 0] = feats["position_in_line"] * 0.1
    acts = {"cell": "lstm", "layers": [{"h": h, "c": c}]}
    ranking = act.find_interpretable_units(TEXT, acts, top=3)
    assert len(ranking) == 3
    found = {(r["part"], r["unit"]): r for r in ranking[:2]}
    assert found[("h", 3)]["feature"] == "inside_quotes" and found[("h", 3)]["corr"] < -0.99
    assert found[("c", 0)]["feature"] == "position_in_line" and found[("c", 0)]["corr"] > 0.999
    everything = act.find_interpretable_units(TEXT, acts, top=100)
    const = [r for r in everything if r["part"] == "h" and r["unit"] == 1][0]
    assert all(v == 0.0 for v in const["all"].values())
    assert [abs(r["corr"]) for r in everything] == sorted((abs(r["corr"]) for r in everything), reverse=True)
    with pytest.raises(ValueError, match="feature 'bad'"):
        act.find_interpretable_units(TEXT, acts, features={"bad": np.zeros(3)})


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.headings, self.images, self.links = [], [], [], []
        self._in_text = False
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("class") == "text":
            self.sections.append([])
            self._in_text = True
        elif tag == "span" and self._in_text:
            self.sections[-1].append(attrs)
        elif tag == "h2":
            self._in_h2 = True
            self.headings.append("")
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if key in attrs:
                self.links.append(attrs[key])

    def handle_endtag(self, tag):
        if tag == "div":
            self._in_text = False
        elif tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings[-1] += data


def test_activation_html_colours_every_character():
    T, H = len(TEXT), 3
    h = np.zeros((T, H))
    h[:, 0] = np.linspace(-1, 1, T)
    f = np.full((T, H), 0.5)
    f[0, 2] = 1.0
    acts = {"cell": "lstm", "layers": [{"h": h, "f": f}]}
    page = act.activation_html(TEXT, acts, units=[(0, "h", 0), (0, "f", 2)], title="units <&>",
                               heatmaps=False)
    parser = _PageParser()
    parser.feed(page)
    parser.close()
    assert len(parser.sections) == 2
    for spans in parser.sections:
        assert len(spans) == T
        assert all(re.fullmatch(r"background-color:rgb\(\d+,\d+,\d+\)", s["style"]) for s in spans)
    first = parser.sections[0]
    assert first[0]["style"] == "background-color:rgb(55,55,255)"        # −1: deep blue
    assert first[-1]["style"] == "background-color:rgb(255,55,55)"       # +1: deep red
    assert first[0]["title"] == "-1.000"
    gate = parser.sections[1]
    assert gate[0]["style"] == "background-color:rgb(255,55,55)"         # a gate at 1 is red
    assert gate[1]["style"] == "background-color:rgb(255,255,255)"       # a gate at ½ is white
    assert parser.headings == ["layer 0 · h · unit 0", "layer 0 · f · unit 2"]
    assert "<title>units &lt;&amp;&gt;</title>" in page
    assert parser.links == []                                            # nothing external
    with pytest.raises(ValueError, match="no part 'c'"):
        act.activation_html(TEXT, acts, units=[(0, "c", 0)], heatmaps=False)


def test_write_activation_report_with_heatmaps(tmp_path):
    pytest.importorskip("matplotlib")
    model = _char_model("gru")
    out = act.write_activation_report(tmp_path / "units.html", model, TEXT, _vocab(TEXT), top=3)
    page = (tmp_path / "units.html").read_text(encoding="utf-8")
    parser = _PageParser()
    parser.feed(page)
    assert len(out["units"]) == 3 and len(parser.sections) == 3
    assert all(len(s) == len(TEXT) for s in parser.sections)
    best = out["units"][0]
    assert parser.headings[0].startswith(f"layer {best['layer']} · {best['part']} · unit {best['unit']} — tracks")
    assert len(parser.images) == 1 and parser.links == parser.images
    prefix = "data:image/png;base64,"
    assert parser.images[0].startswith(prefix)
    assert base64.b64decode(parser.images[0][len(prefix):])[:8] == PNG_SIGNATURE


def test_gate_heatmaps_png_is_a_png():
    pytest.importorskip("matplotlib")
    from rnnkit.diagnostics.plots import gate_heatmaps_png

    model = _char_model("lstm", num_layers=1)
    layer = act.collect_activations(model, act.encode_text(TEXT, _vocab(TEXT)))["layers"][0]
    assert gate_heatmaps_png(layer, text=TEXT)[:8] == PNG_SIGNATURE
    with pytest.raises(ValueError, match="none of the parts"):
        gate_heatmaps_png({"q": np.zeros((3, 2))})
