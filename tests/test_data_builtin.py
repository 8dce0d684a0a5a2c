"""Built-in offline data: the stdlib text and the demo series (with its fallback)."""

import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import BuiltinSeries, BuiltinText, CharVocab, builtin_series, stdlib_text
from rnnkit.data.builtin import STDLIB_FILES
from rnnkit.errors import RnnkitError


def test_stdlib_text_is_real_source_and_deterministic():
    t = stdlib_text(max_chars=5_000)
    assert isinstance(t, BuiltinText) and t.name == "python-stdlib"
    assert len(t.text) == 5_000
    assert t.files[0] == STDLIB_FILES[0] and "textwrap.py" in t.description
    first = (Path(sysconfig.get_paths()["stdlib"]) / STDLIB_FILES[0]).read_text(encoding="utf-8")
    assert t.text == first.replace("\r\n", "\n")[:5_000]
    assert stdlib_text(max_chars=5_000).text == t.text
    assert "def " in t.text
    vocab = CharVocab.from_text(t.text)
    assert vocab.decode(vocab.encode(t.text)) == t.text


def test_stdlib_text_joins_several_files():
    t = stdlib_text(max_chars=60_000)
    assert len(t.files) >= 2 and len(t.text) == 60_000
    assert list(t.files) == list(STDLIB_FILES[: len(t.files)])


def test_stdlib_text_fallback_to_sorted_py_files(tmp_path):
    (tmp_path / "b_mod.py").write_text("B = 2\n")
    (tmp_path / "a_mod.py").write_text("A = 1\n")
    (tmp_path / "notes.txt").write_text("ignored")
    t = stdlib_text(max_chars=None, stdlib_dir=tmp_path)
    assert t.files == ("a_mod.py", "b_mod.py")
    assert t.text == "A = 1\n\n\nB = 2\n"
    assert "sorted" in t.description
    with pytest.raises(RnnkitError, match="no readable Python source"):
        stdlib_text(stdlib_dir=tmp_path / "nothing")
    with pytest.raises(ValueError, match="max_chars"):
        stdlib_text(max_chars=0)


def test_builtin_series_uses_matplotlib_sample_data_when_available():
    pytest.importorskip("matplotlib")
    s = builtin_series()
    assert isinstance(s, BuiltinSeries) and s.name == "stock-close"
    assert s.values.ndim == 2 and s.values.shape[1] == 1 and len(s.values) > 500
    assert len(s.dates) == len(s.values) and s.dates == sorted(s.dates)
    assert np.isfinite(s.values).all() and (s.values > 0).all()
    assert "goog.npz" in s.description and s.dates[0] in s.description
    assert builtin_series(source="matplotlib").name == "stock-close"


def test_builtin_series_falls_back_to_synthetic_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib…` fail
    monkeypatch.setitem(sys.modules, "matplotlib.cbook", None)
    s = builtin_series()
    assert s.name == "synthetic-temperature" and s.columns == ("temperature",)
    assert s.values.shape == (1096, 1) and len(s.dates) == 1096
    assert "synthetic" in s.description and "seed 0" in s.description
    np.testing.assert_array_equal(builtin_series(source="synthetic").values, s.values)
    with pytest.raises(RnnkitError, match="not available.*source='synthetic'"):
        builtin_series(source="matplotlib")
    with pytest.raises(ValueError, match="source must be one of"):
        builtin_series(source="web")
