"""The library's one set of argument checks (rnnkit._checks) and its users."""

import numpy as np
import pytest

from rnnkit import _checks as C
from rnnkit import optim


@pytest.mark.parametrize("kwargs, value, message", [
    (dict(low=0.0), -1, r"x must be >= 0, got -1"),
    (dict(low=0.0, low_open=True), 0.0, r"x must be > 0, got 0.0"),
    (dict(high=1.0), 2, r"x must be <= 1, got 2"),
    (dict(high=1.0, high_open=True), 1.0, r"x must be < 1, got 1.0"),
    (dict(low=0.0, high=1.0, high_open=True), 1.0, r"x must lie in \[0, 1\), got 1.0"),
    (dict(low=0.5, high=1.0, low_open=True), 0.5, r"x must lie in \(0.5, 1\], got 0.5"),
    (dict(), float("nan"), r"x must be finite, got nan"),
    (dict(low=0.0), np.inf, r"x must be finite, got inf"),
])
def test_check_number_states_the_rule(kwargs, value, message):
    with pytest.raises(ValueError, match=rf"^f: {message}$"):
        C.check_number(value, "x", "f", **kwargs)


def test_check_number_accepts_numpy_scalars_and_returns_python_floats():
    for v in (2, 2.0, np.float32(2.0), np.int64(2), np.array(2.0)):
        out = C.check_number(v, "x", "f", low=0.0)
        assert type(out) is float and out == 2.0
    assert C.check_number(None, "x", "f", allow_none=True) is None
    for bad in (True, "1", None, [1.0], np.array([1.0])):
        with pytest.raises(TypeError, match="f: x must be a number, got"):
            C.check_number(bad, "x", "f")
    with pytest.raises(TypeError, match="x must be None or a number, got str"):
        C.check_number("1", "x", "f", allow_none=True)


def test_integer_flag_and_seed_checks():
    assert C.check_positive_int(np.array(3), "n", "f") == 3
    assert type(C.check_positive_int(np.int64(3), "n", "f")) is int
    for bad in (2.0, True, "2", None):
        with pytest.raises(TypeError, match="f: n must be an integer"):
            C.check_positive_int(bad, "n", "f")
    with pytest.raises(ValueError, match="f: n must be >= 1, got 0"):
        C.check_positive_int(0, "n", "f")
    assert C.check_flag(np.bool_(True), "b", "f") is True and C.check_flag(False, "b", "f") is False
    for bad in (1, 0, "yes", None):
        with pytest.raises(TypeError, match="f: b must be True or False"):
            C.check_flag(bad, "b", "f")
    assert C.check_seed(None, "f") is None and C.check_seed(np.int64(7), "f") == 7
    with pytest.raises(TypeError, match="seed must be an integer, got NoneType"):
        C.check_seed(None, "f", allow_none=False)
    with pytest.raises(TypeError, match="seed must be None or an integer, got float"):
        C.check_seed(1.0, "f")
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        C.check_seed(-1, "f")
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\), got 1"):
        C.check_prob(1, "p", "f")


def test_callers_use_the_shared_checks():
    """The checks that once had private copies now raise the shared messages."""
    params = {"w": np.zeros(3)}
    with pytest.raises(TypeError, match="SGD: nesterov must be True or False, got int"):
        optim.SGD(params, momentum=0.9, nesterov=1)
    with pytest.raises(TypeError, match="Adam: amsgrad must be True or False"):
        optim.Adam(params, amsgrad="no")
    with pytest.raises(ValueError, match="seq: seed must be >= 0, got -2"):
        from rnnkit.data._util import as_rng
        as_rng(-2, "seq")
    from rnnkit.tasks import _common
    assert _common.check_number is C.check_number and _common.check_flag is C.check_flag
    with pytest.raises(TypeError, match="task: seed must be an integer, got NoneType"):
        _common.check_seed(None, "task")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_all_finite_finds_every_nan_and_inf_at_every_place(dtype, bad, layout):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 2, 70)).astype(dtype)
    base[0, 0, 0] = np.finfo(dtype).max            # large and subnormal values are finite
    base[0, 0, 1] = np.finfo(dtype).tiny / 4
    for where in [(0, 0, 2), (2, 1, 69), (1, 0, 33)]:
        a = base.copy()
        if bad is not None:
            a[where] = bad
        view = a if layout == "contiguous" else a[:, :, where[2] % 3::3]     # holds a[where]
        assert C.all_finite(view) is (bad is None)
        assert C.all_finite(view) == bool(np.isfinite(view).all())


def test_the_compiled_finite_check_answers_only_for_arrays_it_reads_whole():
    from rnnkit import fast

    if not fast.available():
        pytest.skip("the compiled loops do not run here")
    finite = fast._ext.all_finite
    assert finite(np.zeros((2, 5), np.float32)) is True
    assert finite(np.array([1.0, np.nan])) is False
    assert finite(np.zeros((4, 4), np.float32)[:, 1]) is None     # not C-contiguous: NumPy decides
    assert finite(np.zeros(3, np.int64)) is None
    assert finite(np.zeros(3, np.float16)) is None
    assert finite([1.0, 2.0]) is None
