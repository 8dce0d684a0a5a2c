"""NumPy ``.npz`` archives without pickle, their headers checked before anything is allocated.

Written by hand (stored members, fixed timestamps: the same arrays give the same
bytes); read member by member: zip magic, ``.npy`` magic and header, a numeric dtype
(float32/float64 only for weights), and the bytes the header's shape implies equal to
the bytes the member holds. Every failure is a :class:`~rnnkit.errors.CheckpointError`
naming the file.
"""

from __future__ import annotations

import io as _io
import math
import os
import zipfile
from typing import Mapping

import numpy as np

from rnnkit._files import _read_bytes, _write_bytes
from rnnkit.errors import CheckpointError

__all__ = ["save_npz", "load_npz"]

# bool, signed int, unsigned int, float: everything a model or optimizer stores
_NUMERIC_KINDS = "biuf"


def _check_numeric(name: str, arr: np.ndarray, where: str, exc_type=TypeError) -> None:
    if arr.dtype.kind not in _NUMERIC_KINDS or arr.dtype.fields is not None:
        raise exc_type(f"{where}: array {name!r} must be numeric (bool, int or float), "
                       f"got dtype {arr.dtype}")


def _npz_bytes(arrays: Mapping[str, np.ndarray], where: str) -> bytes:
    """An .npz archive as ``np.savez`` writes it (stored, one ``name.npy`` per array).

    Written by hand rather than through ``np.savez`` so that no array name can clash
    with its keyword arguments, pickling is off, and the bytes depend only on the
    arrays (a fixed member timestamp): saving the same weights twice gives the same file.
    """
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in arrays.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"{where}: array names must be non-empty strings, got {name!r}")
            arr = np.asarray(value)
            _check_numeric(name, arr, where)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)
    return buf.getvalue()


def save_npz(path, arrays: Mapping[str, np.ndarray]) -> None:
    """Save named numeric arrays as an uncompressed ``.npz``, atomically; no pickle.

    ``np.load(path)`` reads the result. An object, string or structured array is a
    TypeError (it could only be stored by pickling).
    """
    data = _npz_bytes(arrays, f"save_npz: {os.fspath(path)}")
    _write_bytes(path, data)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, float_only: bool) -> np.ndarray:
    """One ``.npy`` member, its header checked before anything is allocated.

    The magic string, the header (dtype, shape, order) and the dtype (numeric; only
    float32/float64 with ``float_only``) are checked, and the bytes the header's shape
    implies must be exactly the bytes the member holds: a header claiming (10**12,)
    is refused instead of allocated.
    """
    name = info.filename
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
        except (ValueError, EOFError) as exc:
            raise CheckpointError(f"{path}: member {name!r} is not a NumPy array (.npy): {exc}") from exc
        try:
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"format version {version} (rnnkit writes 1.0 and 2.0)")
        except (ValueError, SyntaxError, TypeError, EOFError) as exc:
            raise CheckpointError(f"{path}: member {name!r} has a malformed .npy header: {exc}") from exc
        key = name[:-4]
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in _NUMERIC_KINDS:
            raise CheckpointError(f"{path}: array {key!r} must be numeric, got dtype {dtype} "
                                  "(object arrays are never unpickled)")
        if float_only and not (dtype.kind == "f" and dtype.itemsize in (4, 8)):
            raise CheckpointError(f"{path}: array {key!r} has dtype {dtype}; model weights must be "
                                  "float32 or float64")
        expected = dtype.itemsize * math.prod(shape)
        held = info.file_size - f.tell()
        if expected != held:
            raise CheckpointError(f"{path}: array {key!r}: its header says shape {shape} of {dtype} "
                                  f"({expected} bytes) but the member holds {held} bytes")
        buf = bytearray(f.read(held))
    arr = np.ndarray(shape, dtype=dtype, buffer=buf, order="F" if fortran else "C")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _parse_npz(data: bytes, path: str, float_only: bool = False) -> dict[str, np.ndarray]:
    """Read every array of an in-memory ``.npz``; any defect is a CheckpointError."""
    if not data:
        raise CheckpointError(f"{path}: file is empty")
    if not data.startswith(b"PK"):
        raise CheckpointError(f"{path}: not an .npz (zip) archive (it does not start with the zip magic)")
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(_io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise CheckpointError(f"{path}: duplicate members in the archive")
            for n in names:
                if not n.endswith(".npy") or len(n) == 4:
                    raise CheckpointError(f"{path}: unexpected member {n!r} (an .npz holds only .npy files)")
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise CheckpointError(f"{path}: member {info.filename!r} is compressed; rnnkit "
                                          "writes and reads stored (uncompressed) archives only")
            # testzip reads every member and checks its CRC-32: catches flipped bytes
            bad = zf.testzip()
            if bad is not None:
                raise CheckpointError(f"{path}: member {bad!r} is corrupted (CRC mismatch)")
            for info in infos:
                out[info.filename[:-4]] = _read_member(zf, info, path, float_only)
    except CheckpointError:
        raise
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: not a complete .npz (zip) archive — truncated or "
                              f"corrupted ({exc})") from exc
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot read the archive: {exc}") from exc
    return out


def _npz_limit() -> int:
    """The largest archive read into memory: what the machine has available."""
    from rnnkit.limits import available_memory
    return available_memory()


def load_npz(path, float_only: bool = False) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` into memory, refusing anything unsafe or broken.

    Checks that the file is a complete, uncompressed zip archive with intact CRCs,
    that every member is a ``.npy`` array whose header matches its size, and that every
    array is numeric (float32/float64 only with ``float_only``). Nothing is unpickled.
    Errors are CheckpointError naming the file.
    """
    path = os.fspath(path)
    return _parse_npz(_read_bytes(path, _npz_limit()), path, float_only)
