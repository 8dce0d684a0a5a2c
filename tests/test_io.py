"""Checkpoint files: atomic writes, npz without pickle, and every way a checkpoint is refused."""

import json
import os
import zipfile

import numpy as np
import pytest

from rnnkit import io as rkio
from rnnkit.errors import CheckpointError, ResourceLimitError, RnnkitError


def _weights():
    rng = np.random.default_rng(0)
    return {"rnn.weight_ih_l0": rng.standard_normal((12, 3)).astype(np.float32),
            "rnn.weight_hh_l0": rng.standard_normal((12, 4)).astype(np.float32),
            "head.bias": rng.standard_normal(5)}


def _state():
    pcg = np.random.default_rng(7).bit_generator.state
    return {"step": 12, "epoch": 1, "best": float("inf"), "nan": float("nan"), "none": None,
            "optimizer": {"step": np.array(12), "exp_avg/w": np.ones((2, 3), np.float32)},
            "carry": (np.zeros((1, 2, 4)), np.ones((1, 2, 4))), "rng": pcg,
            "history": [{"step": 1, "loss": 2.5}], "flag": True}


@pytest.fixture
def ckpt(tmp_path):
    d = tmp_path / "run"
    rkio.save_checkpoint(d, {"model": "Toy", "hidden_size": 4}, _weights(), _state())
    return d


def test_checkpoint_round_trip_is_exact(ckpt):
    c = rkio.load_checkpoint(ckpt, expected=_weights())
    assert c.config == {"model": "Toy", "hidden_size": 4}
    assert c.format_version == rkio.FORMAT_VERSION
    for k, v in _weights().items():
        assert c.arrays[k].dtype == v.dtype and np.array_equal(c.arrays[k], v)
    s = c.training_state
    assert s["step"] == 12 and s["best"] == float("inf") and np.isnan(s["nan"]) and s["none"] is None
    assert isinstance(s["carry"], tuple) and np.array_equal(s["carry"][1], np.ones((1, 2, 4)))
    assert s["optimizer"]["exp_avg/w"].dtype == np.float32
    assert s["optimizer"]["step"].shape == () and s["optimizer"]["step"] == 12   # 0-d stays 0-d
    # the 128-bit PCG64 state survives JSON: a generator restored from it draws the same numbers
    g = np.random.default_rng()
    g.bit_generator.state = s["rng"]
    assert np.array_equal(g.random(5), np.random.default_rng(7).random(5))
    assert s["history"] == [{"step": 1, "loss": 2.5}] and s["flag"] is True
    # big ints are strings in the JSON (portable to readers that use doubles)
    text = (ckpt / rkio.TRAINER_JSON).read_text()
    assert '"__int__"' in text
    header = json.loads((ckpt / rkio.CONFIG_FILE).read_text())
    assert header["format_version"] == rkio.FORMAT_VERSION and header["model"]["hidden_size"] == 4


def test_same_arrays_give_same_bytes(tmp_path):
    rkio.save_npz(tmp_path / "a.npz", _weights())
    rkio.save_npz(tmp_path / "b.npz", _weights())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:   # a plain .npz numpy reads
        assert np.array_equal(z["head.bias"], _weights()["head.bias"])


def test_npz_names_that_clash_with_savez_arguments(tmp_path):
    arrays = {"file": np.arange(3), "allow_pickle": np.ones(2)}
    rkio.save_npz(tmp_path / "x.npz", arrays)
    back = rkio.load_npz(tmp_path / "x.npz")
    assert set(back) == {"file", "allow_pickle"} and np.array_equal(back["file"], np.arange(3))


def test_model_only_checkpoint_drops_stale_trainer_files(ckpt):
    assert (ckpt / rkio.TRAINER_NPZ).exists()
    rkio.save_checkpoint(ckpt, {"model": "Toy"}, _weights(), None, meta={"kind": "best"})
    assert not (ckpt / rkio.TRAINER_NPZ).exists() and not (ckpt / rkio.TRAINER_JSON).exists()
    c = rkio.load_checkpoint(ckpt)
    assert c.training_state is None and c.meta == {"kind": "best"}


@pytest.mark.parametrize("name", [rkio.MODEL_FILE, rkio.TRAINER_NPZ])
def test_truncated_by_one_byte_is_refused(ckpt, name):
    path = ckpt / name
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match=rf"{name}: not a complete \.npz \(zip\) archive"):
        rkio.load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="truncated"):
        rkio.load_npz(path)


def test_truncated_json_is_refused(ckpt):
    path = ckpt / rkio.TRAINER_JSON
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(CheckpointError, match=r"trainer\.json: not valid JSON"):
        rkio.load_checkpoint(ckpt)


def test_flipped_byte_is_refused(ckpt):
    path = ckpt / rkio.MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF           # inside an array's data: the zip CRC catches it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.npz.*(CRC|corrupted|SHA-256)"):
        rkio.load_checkpoint(ckpt)


def test_file_from_another_save_is_refused(ckpt, tmp_path):
    other = tmp_path / "other"
    w = _weights()
    w["head.bias"] = w["head.bias"] + 1.0
    rkio.save_checkpoint(other, {"model": "Toy"}, w, None)
    (ckpt / rkio.MODEL_FILE).write_bytes((other / rkio.MODEL_FILE).read_bytes())
    with pytest.raises(CheckpointError, match=r"model\.npz: contents do not match the SHA-256"):
        rkio.load_checkpoint(ckpt)


class _Boom:
    """Unpickling this would create a marker file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_object_array_is_refused_without_running_code(ckpt, tmp_path):
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _Boom(str(marker))
    np.savez(ckpt / rkio.MODEL_FILE, **{"rnn.weight_ih_l0": evil})   # allow_pickle=True by default
    with pytest.raises(CheckpointError, match=r"model\.npz: array 'rnn\.weight_ih_l0' must be numeric, got dtype object"):
        rkio.load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="pickle"):
        rkio.load_npz(ckpt / rkio.MODEL_FILE)
    assert not marker.exists()


def test_non_numeric_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="'names' must be numeric"):
        rkio.save_npz(tmp_path / "s.npz", {"names": np.array(["a", "b"])})
    np.savez(tmp_path / "s.npz", names=np.array(["a", "b"]))
    with pytest.raises(CheckpointError, match=r"'names' must be numeric, got dtype <U1"):
        rkio.load_npz(tmp_path / "s.npz")


def test_missing_unexpected_key_and_shape_mismatch_are_named(ckpt):
    expected = {k: v.shape for k, v in _weights().items()}
    with pytest.raises(CheckpointError, match=r"model\.npz: missing key 'head\.weight'"):
        rkio.load_checkpoint(ckpt, expected={**expected, "head.weight": (5, 4)})
    smaller = dict(expected)
    del smaller["head.bias"]
    with pytest.raises(CheckpointError, match=r"unexpected key 'head\.bias'"):
        rkio.load_checkpoint(ckpt, expected=smaller)
    want = r"key 'rnn\.weight_hh_l0' has shape \(12, 4\), the model expects \(12, 5\)"
    with pytest.raises(CheckpointError, match=want):
        rkio.load_checkpoint(ckpt, expected={**expected, "rnn.weight_hh_l0": (12, 5)})


def test_format_version_is_checked(ckpt):
    path = ckpt / rkio.CONFIG_FILE
    header = json.loads(path.read_text())
    header["format_version"] = rkio.FORMAT_VERSION + 1
    path.write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"format version 2 is not supported"):
        rkio.load_checkpoint(ckpt)
    header["format_version"] = "1"
    path.write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match="format_version must be an integer"):
        rkio.load_checkpoint(ckpt)
    path.write_text(json.dumps({"hidden_size": 4}))
    with pytest.raises(CheckpointError, match="not an rnnkit checkpoint"):
        rkio.load_checkpoint(ckpt)


def test_missing_files_are_named(ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint directory not found"):
        rkio.load_checkpoint(tmp_path / "nowhere")
    os.unlink(ckpt / rkio.TRAINER_NPZ)
    with pytest.raises(CheckpointError, match=r"trainer\.npz: file not found"):
        rkio.load_checkpoint(ckpt)
    os.unlink(ckpt / rkio.CONFIG_FILE)
    assert not rkio.is_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match=r"config\.json: file not found"):
        rkio.load_checkpoint(ckpt)


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "model.npz"
    rkio.save_npz(path, {"w": np.arange(4.0)})
    before = path.read_bytes()

    def fail(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rkio.atomic_write(path, fail)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    with pytest.raises(TypeError, match="'bad' must be numeric"):
        rkio.save_checkpoint(tmp_path / "c", {}, {"bad": np.array([object()])})
    assert not (tmp_path / "c" / rkio.CONFIG_FILE).exists()


def test_json_and_jsonl(tmp_path):
    rkio.save_json(tmp_path / "a.json", {"x": [1, 2]})
    assert rkio.load_json(tmp_path / "a.json") == {"x": [1, 2]}
    with pytest.raises(RnnkitError, match=r"b\.json: the value at 'x/1' is not a finite number"):
        rkio.save_json(tmp_path / "b.json", {"x": [1.0, float("nan")]})
    assert not (tmp_path / "b.json").exists()
    with pytest.raises(TypeError, match="cannot write as JSON"):
        rkio.save_json(tmp_path / "b.json", {"x": {1, 2}})
    log = tmp_path / "m.jsonl"
    for i in range(3):
        rkio.append_jsonl(log, {"step": i})
    assert rkio.read_jsonl(log) == [{"step": 0}, {"step": 1}, {"step": 2}]
    with open(log, "a") as f:               # a crash mid-append leaves an unterminated line
        f.write('{"step": 3, "lo')
    assert rkio.read_jsonl(log) == [{"step": 0}, {"step": 1}, {"step": 2}]
    log.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(CheckpointError, match="line 2 is not valid JSON"):
        rkio.read_jsonl(log)


def test_encode_state_refuses_what_it_cannot_store():
    with pytest.raises(TypeError, match="dict keys must be strings"):
        rkio.encode_state({1: 2})
    with pytest.raises(TypeError, match="cannot store set at a"):
        rkio.encode_state({"a": {1}})
    with pytest.raises(CheckpointError, match="refers to array 'x', which is missing"):
        rkio.decode_state({"__ndarray__": "x"}, {})


def test_npz_with_foreign_member_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil.pkl", b"\x80\x04N.")
    with pytest.raises(CheckpointError, match="unexpected member 'evil.pkl'"):
        rkio.load_npz(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="file is empty"):
        rkio.load_npz(path)


# -- hostile files: bounded reads, no allocation from a header, no stale temps ------------------

def _npz_with_member(path, name: str, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(name, payload)


def test_deeply_nested_json_is_refused_without_recursion(tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match=r"deep\.json: JSON nested 100000 levels deep"):
        rkio.load_json(p)
    # brackets inside strings do not count
    p.write_text(json.dumps({"s": "[" * 5000 + '\\"{'}))
    assert rkio.load_json(p)["s"].startswith("[[[")
    p.write_text('{"x": NaN}')
    with pytest.raises(CheckpointError, match="NaN is not a JSON number"):
        rkio.load_json(p)
    p.write_text('{"x": ' + "9" * 5000 + "}")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        rkio.load_json(p)


def test_npy_header_claiming_a_huge_shape_is_refused_before_allocation(tmp_path):
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 12,)})
    p = tmp_path / "big.npz"
    _npz_with_member(p, "w.npy", buf.getvalue() + b"\0" * 16)
    with pytest.raises(CheckpointError, match=r"header says shape \(1000000000000,\) of float32 "
                                              r"\(4000000000000 bytes\) but the member holds 16 bytes"):
        rkio.load_npz(p)


def test_member_that_is_not_an_array_and_int_weights_are_refused(tmp_path):
    p = tmp_path / "junk.npz"
    _npz_with_member(p, "w.npy", b"this is not an array")
    with pytest.raises(CheckpointError, match=r"member 'w\.npy' is not a NumPy array"):
        rkio.load_npz(p)
    (tmp_path / "plain.npz").write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="does not start with the zip magic"):
        rkio.load_npz(tmp_path / "plain.npz")
    rkio.save_npz(tmp_path / "ints.npz", {"w": np.arange(6, dtype=np.int64)})
    assert rkio.load_npz(tmp_path / "ints.npz")["w"].dtype == np.int64          # training state may
    with pytest.raises(CheckpointError, match=r"'w' has dtype int64; model weights must be float32 or float64"):
        rkio.load_npz(tmp_path / "ints.npz", float_only=True)
    # a big-endian float32 loads, in native order, with its values
    rkio.save_npz(tmp_path / "be.npz", {"w": np.arange(3, dtype=">f4")})
    w = rkio.load_npz(tmp_path / "be.npz", float_only=True)["w"]
    assert w.dtype.isnative and w.tolist() == [0.0, 1.0, 2.0]


def test_checkpoint_with_int64_weights_is_refused(tmp_path):
    weights = {**_weights(), "head.bias": np.arange(5, dtype=np.int64)}
    rkio.save_checkpoint(tmp_path / "run", {"model": "Toy"}, weights)
    with pytest.raises(CheckpointError, match=r"model\.npz: array 'head\.bias' has dtype int64"):
        rkio.load_checkpoint(tmp_path / "run")


def test_stale_temp_files_are_removed_on_the_next_write(tmp_path):
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".model.npz.{dead}-0123456789ab.tmp"
    live = tmp_path / f".model.npz.{os.getpid()}-0123456789ab.tmp"   # a write in progress here
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    other = tmp_path / ".notes.tmp"
    other.write_bytes(b"user file")
    from rnnkit import _files
    _files._cleaned_dirs.discard(str(tmp_path))
    rkio.save_json(tmp_path / "a.json", {"x": 1})
    assert not stale.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".notes.tmp", live.name, "a.json"])


def test_memory_limit_names_the_argument(monkeypatch):
    from rnnkit import limits
    from rnnkit.layers import Recurrent
    monkeypatch.setenv("RNNKIT_MEMORY_LIMIT", "1M")
    assert limits.available_memory() == 2 ** 20
    with pytest.raises(ResourceLimitError, match=r"Recurrent\(lstm\): input_size=8, hidden_size=1000, "
                                                 r"num_layers=1: the weights need about 30\.8 MiB .* "
                                                 r"more than the 1\.0 MiB of memory available"):
        Recurrent("lstm", 8, 1000)
    Recurrent("lstm", 8, 16)
    monkeypatch.delenv("RNNKIT_MEMORY_LIMIT")
    with pytest.raises(ResourceLimitError, match=r"hidden_size=1000000000000"):
        Recurrent("gru", 8, 10 ** 12)
    with pytest.raises(ResourceLimitError, match=r"num_layers=1000000000"):
        Recurrent("rnn", 8, 16, num_layers=10 ** 9)
