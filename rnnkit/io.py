"""Files a run leaves behind: atomic writes, NumPy archives without pickle, checkpoints.

Every write goes to a temporary file in the target's own directory, is flushed and
``fsync``-ed, and then renamed over the target with ``os.replace`` (atomic on POSIX
and Windows); the directory is ``fsync``-ed afterwards so the rename itself survives
a power cut. A crash therefore leaves either the old file or the new one, never a
half-written one.

A checkpoint is a directory::

    config.json    {"format": "rnnkit-checkpoint", "format_version": 1,
                    "rnnkit_version": ..., "model": <model.config()>,
                    "files": {"model.npz": {"sha256": ..., "bytes": ...}, ...},
                    "meta": {...}}
    model.npz      the weights, one numeric array per parameter name
    trainer.json   training state that is not an array (step, epoch, history, the
                   state of every random generator, the training config)
    trainer.npz    training state that is an array (optimizer moments, carried state)

``config.json`` is written last and records the SHA-256 of the other files, so a
checkpoint whose files come from two different saves (a crash between two renames)
or were changed afterwards is refused instead of silently mixing weights.

Loading never executes code and never allocates what a file merely claims: each
``.npy`` header is read and checked before its array (an object dtype is an error,
not an unpickling; the shape's bytes must be the bytes the member holds), weights
must be float32/float64 and training state numeric, and JSON is plain data, read
with limits on its size and nesting depth (:data:`MAX_JSON_BYTES`,
:data:`MAX_JSON_DEPTH`). Temp files of writes that a killed process left behind are
removed the next time a write goes to that directory. Every failure is a
:class:`~rnnkit.errors.CheckpointError` naming the file and what is wrong.

JSON cannot hold arrays, tuples, non-finite floats or (portably) integers beyond
2**53, which the training state needs (a PCG64 generator's state is a 128-bit
integer). :func:`encode_state` / :func:`decode_state` turn such a tree into plain
JSON plus a dict of arrays, with small tags: ``{"__ndarray__": key}``,
``{"__tuple__": [...]}``, ``{"__int__": "digits"}``, ``{"__float__": "nan"}``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rnnkit._files import _read_bytes, _write_bytes, atomic_write, remove_stale_temps
from rnnkit._version import __version__
from rnnkit.errors import CheckpointError, RnnkitError
from rnnkit.npz import _check_numeric, _npz_bytes, _npz_limit, _parse_npz, load_npz, save_npz

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "atomic_write",
    "save_json",
    "load_json",
    "nonfinite_path",
    "remove_stale_temps",
    "save_npz",
    "load_npz",
    "append_jsonl",
    "read_jsonl",
    "save_checkpoint",
    "load_checkpoint",
    "is_checkpoint",
    "check_arrays",
    "encode_state",
    "decode_state",
]

FORMAT_VERSION = 1
FORMAT_NAME = "rnnkit-checkpoint"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.npz"
TRAINER_JSON = "trainer.json"
TRAINER_NPZ = "trainer.npz"

# integers beyond this lose precision in JSON readers that use doubles
_JSON_SAFE_INT = 2 ** 53


# -- JSON ---------------------------------------------------------------------------

# what a JSON file this library reads may hold: run files are kilobytes to a few
# megabytes (a vocabulary, a history); past these a file is refused before parsing
MAX_JSON_BYTES = 256 * 2 ** 20
MAX_JSON_DEPTH = 100
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def nonfinite_path(obj, path: str = "") -> str | None:
    """Where the first NaN or ±inf float in a tree of dicts/lists sits (``"a/b/3"``), or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path or "/")
    if isinstance(obj, np.floating):
        return None if np.isfinite(obj) else (path or "/")
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        found = nonfinite_path(v, f"{path}/{k}" if path else str(k))
        if found is not None:
            return found
    return None


def _json_bytes(obj, where: str = "JSON") -> bytes:
    """Strict JSON: a NaN or inf anywhere is an RnnkitError naming where it sits."""
    bad = nonfinite_path(obj)
    if bad is not None:
        raise RnnkitError(f"{where}: the value at {bad!r} is not a finite number (NaN or inf), "
                          "which JSON cannot hold; the model or the data overflowed")
    # allow_nan=False as a second guard: NaN/Infinity are not JSON
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def save_json(path, obj) -> None:
    """Write ``obj`` as strict JSON, atomically.

    A NaN or inf in ``obj`` is an RnnkitError naming the file and the key (nothing is
    written); a value JSON cannot hold (an object, a set) is a TypeError.
    """
    where = os.fspath(path)
    try:
        data = _json_bytes(obj, where)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: cannot write as JSON: {exc}") from exc
    _write_bytes(path, data)


def _json_depth(data: bytes) -> int:
    """The deepest nesting of brackets in JSON text, strings skipped (no recursion)."""
    stripped = _JSON_STRING.sub(b'""', data)
    buf = np.frombuffer(stripped, dtype=np.uint8)
    step = (np.isin(buf, (ord("["), ord("{"))).astype(np.int32)
            - np.isin(buf, (ord("]"), ord("}"))).astype(np.int32))
    return int(np.cumsum(step).max(initial=0))


def _parse_json(data: bytes, path: str):
    if len(data) > MAX_JSON_BYTES:
        raise CheckpointError(f"{path}: {len(data)} bytes is more than the {MAX_JSON_BYTES} bytes a "
                              "JSON file of rnnkit may hold")
    depth = _json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(f"{path}: JSON nested {depth} levels deep, more than the "
                              f"{MAX_JSON_DEPTH} a file of rnnkit may hold (corrupted?)")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON (truncated or corrupted?): {exc}") from exc
    except ValueError as exc:   # NaN/Infinity; int() of more digits than Python converts
        raise CheckpointError(f"{path}: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise CheckpointError(f"{path}: JSON nested too deeply (corrupted?)") from exc


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def load_json(path):
    """Read a JSON file; a missing, unreadable, malformed, too large or too deeply nested
    file, or one holding NaN/Infinity, is a CheckpointError naming it."""
    path = os.fspath(path)
    return _parse_json(_read_bytes(path, MAX_JSON_BYTES), path)


def append_jsonl(path, record: Mapping, fsync: bool = True) -> None:
    """Append one JSON object as one line (metrics logs); creates the file if needed.

    The line is written with a single ``write`` on a file opened for appending, so
    concurrent readers see whole lines; a crash can at worst leave an unterminated
    last line, which :func:`read_jsonl` skips.
    """
    path = os.fspath(path)
    try:
        line = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise TypeError(f"append_jsonl: {path}: cannot write record as JSON: {exc}") from exc
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def read_jsonl(path) -> list[dict]:
    """Read a JSON-lines file written by :func:`append_jsonl`.

    A malformed line is a CheckpointError naming its number, except an unterminated
    last line (a write cut short by a crash), which is dropped.
    """
    path = os.fspath(path)
    text = _read_bytes(path).decode("utf-8", errors="replace")
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if i == len(lines):  # no newline after it: cut short
                break
            raise CheckpointError(f"{path}: line {i} is not valid JSON: {exc}") from exc
    return out


# -- state trees <-> JSON + arrays --------------------------------------------------

def encode_state(tree, prefix: str = "") -> tuple[Any, dict[str, np.ndarray]]:
    """Split a tree of dicts/lists/tuples/scalars/arrays into (plain JSON, arrays).

    Arrays go to the returned dict under their path (``"optimizer/m/rnn.weight_ih_l0"``)
    and are replaced by ``{"__ndarray__": path}``; tuples, big integers and non-finite
    floats get the tags listed in the module docstring; NumPy scalars become Python ones.
    Dict keys must be strings.

    Shapes:
        arrays keep their shapes and dtypes exactly
    """
    arrays: dict[str, np.ndarray] = {}

    def enc(obj, path):
        if isinstance(obj, np.ndarray):
            key = path or "_"
            _check_numeric(key, obj, "encode_state")
            arrays[key] = obj
            return {"__ndarray__": key}
        if isinstance(obj, np.generic):
            obj = obj.item()
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return obj if abs(obj) < _JSON_SAFE_INT else {"__int__": str(obj)}
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise TypeError(f"encode_state: dict keys must be strings, got {k!r} at {path or '/'}")
                out[k] = enc(v, f"{path}/{k}" if path else k)
            return out
        if isinstance(obj, tuple):
            return {"__tuple__": [enc(v, f"{path}/{i}" if path else str(i)) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [enc(v, f"{path}/{i}" if path else str(i)) for i, v in enumerate(obj)]
        raise TypeError(f"encode_state: cannot store {type(obj).__name__} at {path or '/'}")

    return enc(tree, prefix), arrays


def decode_state(tree, arrays: Mapping[str, np.ndarray], where: str = "state"):
    """Invert :func:`encode_state`; a reference to a missing array is a CheckpointError."""

    def dec(obj):
        if isinstance(obj, dict):
            if len(obj) == 1:
                (tag, val), = obj.items()
                if tag == "__ndarray__":
                    if val not in arrays:
                        raise CheckpointError(f"{where}: refers to array {val!r}, which is missing")
                    return arrays[val]
                if tag == "__tuple__":
                    return tuple(dec(v) for v in val)
                if tag == "__int__":
                    return int(val)
                if tag == "__float__":
                    return float(val)
            return {k: dec(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [dec(v) for v in obj]
        return obj

    try:
        return dec(tree)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: malformed state: {exc}") from exc


# -- checkpoints --------------------------------------------------------------------

@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    ``config`` is the model's config (``model.config()`` at save time), ``arrays`` the
    weights by parameter name, ``training_state`` the tree given to
    :func:`save_checkpoint` (None when none was saved), ``meta`` free-form notes.
    """

    directory: str
    config: dict
    arrays: dict[str, np.ndarray]
    training_state: dict | None = None
    meta: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(directory, config: dict, arrays: Mapping[str, np.ndarray],
                    training_state: dict | None = None, meta: dict | None = None) -> str:
    """Write a checkpoint directory (see the module docstring); returns its path.

    ``config`` must be JSON-able (it is what rebuilds the model); ``arrays`` are the
    weights; ``training_state`` is any tree :func:`encode_state` accepts (arrays in
    it go to ``trainer.npz``). Each file is written atomically and ``config.json``,
    which lists the SHA-256 of the others, last. Files of an earlier save that this
    one does not include (``trainer.*`` when ``training_state`` is None) are removed.

    Shapes:
        arrays: name -> any numeric array (stored exactly, dtype included)
    """
    directory = os.fspath(directory)
    where = f"save_checkpoint: {directory}"
    if not isinstance(config, dict):
        raise TypeError(f"{where}: config must be a dict, got {type(config).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"{where}: meta must be a dict or None, got {type(meta).__name__}")
    # serialise everything before touching the disk: a bad value fails with nothing written
    blobs: dict[str, bytes] = {MODEL_FILE: _npz_bytes(dict(arrays), where)}
    if training_state is not None:
        state_json, state_arrays = encode_state(training_state)
        blobs[TRAINER_NPZ] = _npz_bytes(state_arrays, where)
        blobs[TRAINER_JSON] = _json_bytes(state_json, os.path.join(directory, TRAINER_JSON))
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "model": config,
        "meta": meta or {},
        "files": {name: {"sha256": _sha256(b), "bytes": len(b)} for name, b in blobs.items()},
    }
    try:
        header_bytes = _json_bytes(header, os.path.join(directory, CONFIG_FILE))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: config/meta must be JSON-able: {exc}") from exc
    os.makedirs(directory, exist_ok=True)
    for name, data in blobs.items():
        _write_bytes(os.path.join(directory, name), data)
    _write_bytes(os.path.join(directory, CONFIG_FILE), header_bytes)
    for stale in (TRAINER_JSON, TRAINER_NPZ):
        if stale not in blobs:
            try:
                os.unlink(os.path.join(directory, stale))
            except FileNotFoundError:
                pass
    return directory


def is_checkpoint(directory) -> bool:
    """True when ``directory`` holds a ``config.json`` (whether or not it is valid)."""
    return os.path.isfile(os.path.join(os.fspath(directory), CONFIG_FILE))


def check_arrays(arrays: Mapping[str, np.ndarray], expected, where: str) -> None:
    """Raise CheckpointError unless ``arrays`` has exactly the keys and shapes of ``expected``.

    ``expected`` is a Module (its ``params``) or a dict name -> array or shape. The
    first missing key, unexpected key or shape mismatch is named, with ``where``
    (the file) in front.
    """
    params = getattr(expected, "params", expected)
    if not isinstance(params, Mapping):
        raise TypeError("check_arrays: expected must be a Module, a dict of arrays or a dict of "
                        f"shapes, got {type(expected).__name__}")
    shapes = {k: tuple(np.shape(v)) if isinstance(v, np.ndarray) else tuple(v) for k, v in params.items()}
    missing = sorted(set(shapes) - set(arrays))
    unexpected = sorted(set(arrays) - set(shapes))
    if missing:
        more = f" (and {len(missing) - 1} more: {missing[1:]})" if len(missing) > 1 else ""
        raise CheckpointError(f"{where}: missing key {missing[0]!r}{more} expected by the model")
    if unexpected:
        more = f" (and {len(unexpected) - 1} more: {unexpected[1:]})" if len(unexpected) > 1 else ""
        raise CheckpointError(f"{where}: unexpected key {unexpected[0]!r}{more} that the model does not have")
    for k, shape in shapes.items():
        if np.shape(arrays[k]) != shape:
            raise CheckpointError(f"{where}: key {k!r} has shape {np.shape(arrays[k])}, "
                                  f"the model expects {shape}")


def load_checkpoint(directory, expected=None) -> Checkpoint:
    """Read and verify a checkpoint directory written by :func:`save_checkpoint`.

    Checks, each failure a CheckpointError naming the file (and key): ``config.json``
    is valid JSON in this format with a version this code reads; every listed file is
    present, a complete zip archive of ``.npy`` arrays whose headers match their sizes
    (weights float32/float64, training state numeric; nothing unpickled), and has
    the recorded SHA-256; with ``expected`` (a Module, or a dict name -> array or shape)
    the weights have exactly its keys and shapes.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise CheckpointError(f"{directory}: checkpoint directory not found")
    cfg_path = os.path.join(directory, CONFIG_FILE)
    header = load_json(cfg_path)
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{cfg_path}: not an rnnkit checkpoint (no \"format\": \"{FORMAT_NAME}\")")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{cfg_path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION or version < 1:
        raise CheckpointError(f"{cfg_path}: checkpoint format version {version} is not supported "
                              f"(this rnnkit {__version__} reads versions 1 to {FORMAT_VERSION}); "
                              "it was written by a newer rnnkit?")
    config, files, meta = header.get("model"), header.get("files"), header.get("meta", {})
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path}: \"model\" must be an object with the model config")
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise CheckpointError(f"{cfg_path}: \"files\" must list {MODEL_FILE}")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{cfg_path}: \"meta\" must be an object")

    def load_listed(name: str, parse):
        """Parse a file listed in config.json, then check it is the one that was saved."""
        path = os.path.join(directory, name)
        info = files[name]
        if not isinstance(info, dict) or "sha256" not in info:
            raise CheckpointError(f"{cfg_path}: no sha256 recorded for {name}")
        data = _read_bytes(path, MAX_JSON_BYTES if name.endswith(".json") else _npz_limit())
        # parse first: a truncated archive gets the precise message, not just "changed"
        value = parse(data, path)
        if _sha256(data) != info["sha256"]:
            raise CheckpointError(
                f"{path}: contents do not match the SHA-256 recorded in {CONFIG_FILE} "
                f"({len(data)} bytes, {info.get('bytes')} expected): the file was changed after "
                "saving or comes from another save (interrupted write?)")
        return value

    arrays = load_listed(MODEL_FILE, lambda data, path: _parse_npz(data, path, float_only=True))
    if expected is not None:
        check_arrays(arrays, expected, os.path.join(directory, MODEL_FILE))

    training_state = None
    if TRAINER_JSON in files or TRAINER_NPZ in files:
        if TRAINER_JSON not in files or TRAINER_NPZ not in files:
            raise CheckpointError(f"{cfg_path}: lists only one of {TRAINER_JSON} and {TRAINER_NPZ}")
        json_path = os.path.join(directory, TRAINER_JSON)
        state_json = load_listed(TRAINER_JSON, _parse_json)
        state_arrays = load_listed(TRAINER_NPZ, _parse_npz)
        training_state = decode_state(state_json, state_arrays, where=json_path)
    return Checkpoint(directory=directory, config=config, arrays=arrays,
                      training_state=training_state, meta=meta, format_version=version)
