"""Fuzzing the command line: malformed files, run directories and arguments end cleanly.

Every case runs ``rnnkit.cli.main([...])`` in this process and asserts what a user
must see: exit status 1 (``error: …``, one line) or 2 (a usage error), or 0 where
the generated input happens to be valid; never a traceback, never a hang (each case
runs under a timer), and no NaN or Infinity in any JSON file it wrote or printed.

Generators (hypothesis) cover every reader (text, UCR ``.tsv``/``.ts``, labelled CSV,
forecasting CSV, seq2seq pairs), mutations of a trained run's ``config.json``,
``model.npz`` and ``train/trainer.json``, and hostile sizes on the command line.

A fast subset runs by default (well under a minute). ``RNNKIT_FUZZ=full`` runs
``RNNKIT_FUZZ_EXAMPLES`` (default 100) examples per generator (1,000+ cases);
``RNNKIT_FUZZ_LOG=FILE`` appends one JSON line per case (its outcome) for counting;
with ``RNNKIT_FUZZ_COUNT_ONLY=1`` as well, problems are logged instead of failing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import zipfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rnnkit.cli import main  # noqa: E402

FULL = os.environ.get("RNNKIT_FUZZ", "").lower() == "full"
EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "100")) if FULL else 6
CASE_SECONDS = 60 if FULL else 30
LOG = os.environ.get("RNNKIT_FUZZ_LOG")
COUNT_ONLY = bool(LOG) and os.environ.get("RNNKIT_FUZZ_COUNT_ONLY") == "1"   # measure, do not fail
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not FULL, database=None,
                suppress_health_check=list(HealthCheck))
TINY = ["--hidden", "4", "--layers", "1", "--epochs", "1", "--time-limit", "5", "--quiet"]


class Hang(BaseException):
    """Raised by the timer: the case ran past its limit."""


def _alarm(signum, frame):
    raise Hang()


def _no_nonfinite(text: str, where: str) -> None:
    def refuse(name):
        raise AssertionError(f"{where}: JSON holds {name}")
    json.loads(text, parse_constant=refuse)


def _json_files(root) -> list[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        out += [os.path.join(dirpath, n) for n in names if n.endswith((".json", ".jsonl"))]
    return out


def run_case(kind: str, argv: list[str], written=(), ok_allowed: bool = True, json_stdout: bool = False):
    """Run one command; assert the clean-failure contract; return (status, stdout, stderr)."""
    before = {p: os.stat(p).st_mtime_ns for root in written for p in _json_files(root)}
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    hung = False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
    except Hang:
        hung, code = True, None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    stdout, stderr = out.getvalue(), err.getvalue()
    problems = []
    if hung:
        problems.append("hang")
    elif code not in ((0, 1, 2) if ok_allowed else (1, 2)):
        problems.append(f"exit {code}")
    if "Traceback" in stderr:
        problems.append("traceback")
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if code == 1 and not (len(lines) == 1 and lines[0].startswith("error: ")):
        problems.append("not one error line")
    invalid = []
    for root in written:
        for path in _json_files(root):
            if before.get(path) == os.stat(path).st_mtime_ns:
                continue                  # an input the case wrote, not the command's output
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            chunks = text.splitlines() if path.endswith(".jsonl") else [text]
            for chunk in chunks:
                try:
                    if chunk.strip():
                        _no_nonfinite(chunk, path)
                except (AssertionError, ValueError) as exc:
                    invalid.append(str(exc)[:200])
    if json_stdout and code == 0:
        try:
            _no_nonfinite(stdout, "stdout")
        except (AssertionError, ValueError) as exc:
            invalid.append(f"stdout: {str(exc)[:200]}")
    if invalid:
        problems.append("invalid output")
    if LOG:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "argv": [str(a) for a in argv][:12], "code": code,
                                "problems": problems, "stderr": stderr[-400:], "invalid": invalid[:2]}) + "\n")
    if COUNT_ONLY:
        return code, stdout, stderr
    assert not problems, f"{kind} {argv}: {problems}\nstderr: {stderr[-2000:]}\ninvalid: {invalid[:2]}"
    return code, stdout, stderr


@pytest.fixture(autouse=True)
def _bounded_memory(monkeypatch):
    # sizes the estimates let through must not take the (shared) machine's memory
    monkeypatch.setenv("RNNKIT_MEMORY_LIMIT", "2G")


# -- trained runs to mutate --------------------------------------------------------------------------

TEXT = ("the quick brown fox jumps over the lazy dog; " * 40)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    (root / "t.txt").write_text(TEXT)
    code = main(["train-lm", str(root / "t.txt"), "--out", str(root / "run"), "--hidden", "8", "--layers", "1",
                 "--seq-len", "16", "--batch", "4", "--max-steps", "6", "--quiet"])
    assert code == 0
    return root


@pytest.fixture(scope="module")
def s2s_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2s")
    code = main(["seq2seq", "--out", str(root / "run"), "--dates", "60", "--hidden", "8", "--embedding", "4",
                 "--epochs", "1", "--quiet"])
    assert code == 0
    return root


def _copy_run(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def _rehash(directory) -> None:
    """Record the current files' SHA-256 in config.json, so a mutation reaches the parsers."""
    cfg_path = os.path.join(directory, "config.json")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            header = json.load(f)
        for name, info in header["files"].items():
            with open(os.path.join(directory, name), "rb") as g:
                data = g.read()
            info["sha256"], info["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(header, f)


# -- value generators -----------------------------------------------------------------------------------

NUMBERS = st.sampled_from(["0", "1", "-1", "0.5", "1e308", "-1e308", "1e300", "1e-310", "5e-324", "nan", "inf",
                           "-inf", "NaN", "1e999", "9" * 400, "0x10", "1_000", " 2 ", "+3", "1,5", ""])
TOKENS = st.one_of(NUMBERS, st.text(min_size=0, max_size=6),
                   st.sampled_from(["a", "label", "?", "@data", "@problemName x", "@classLabel true 1 2",
                                    "@univariate true", "#", ":", "\t", ",", '"', "2020-01-01", "\x00"]))
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-10 ** 20, max_value=10 ** 20),
              st.sampled_from([10 ** 12, 10 ** 9, -5, 0, 2 ** 63, 1e308]),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=8)


def _rows(sep: str, min_rows=0, max_rows=12):
    return st.lists(st.lists(TOKENS, min_size=0, max_size=8).map(sep.join), min_size=min_rows,
                    max_size=max_rows).map("\n".join)


DEEP = "\x00deep\x00"


def _dumps(tree) -> str:
    """JSON text of a mutated tree, with 100,000 nested brackets where DEEP stands."""
    return json.dumps(tree).replace(json.dumps(DEEP), "[" * 100_000 + "]" * 100_000)


def _paths_in(tree, prefix=()):
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths_in(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths_in(v, prefix + (i,))
    return out


def _mutate_json(tree, data):
    """Replace, delete or deepen one node of a JSON tree, chosen by hypothesis."""
    paths = _paths_in(tree)
    path = data.draw(st.sampled_from(paths[1:] if len(paths) > 1 else paths))
    action = data.draw(st.sampled_from(["replace", "replace", "delete", "deep"]))
    if not path:
        return data.draw(JSON_VALUES)
    parent = tree
    for k in path[:-1]:
        parent = parent[k]
    if action == "delete":
        del parent[path[-1]]
    elif action == "deep":
        parent[path[-1]] = DEEP          # written out by _dumps (json.dumps would recurse)
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    return tree


# -- readers ------------------------------------------------------------------------------------------------

@FUZZ
@given(body=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                      st.sampled_from(["", "\n", "a", "ab" * 200, "\ufeff" + TEXT, "\x00" * 50])),
       raw=st.booleans())
def test_fuzz_train_lm_text(tmp_path_factory, body, raw):
    d = tmp_path_factory.mktemp("lmtext")
    p = d / "in.txt"
    p.write_bytes(body.encode("latin-1", "replace") if raw else body.encode("utf-8", "surrogatepass"))
    run_case("train-lm text", ["train-lm", p, "--out", d / "run", "--seq-len", "8", "--batch", "2",
                               "--max-steps", "2", *TINY], written=[d / "run"])


@FUZZ
@given(body=_rows("\t"), suffix=st.sampled_from([".tsv", ".ts", ".csv"]),
       sep=st.sampled_from(["\t", ",", " ", ":"]), missing=st.sampled_from(["error", "trim", "interpolate"]))
def test_fuzz_classify_files(tmp_path_factory, body, suffix, sep, missing):
    d = tmp_path_factory.mktemp("clf")
    p = d / f"train{suffix}"
    p.write_text(body.replace("\t", sep), encoding="utf-8", errors="surrogatepass")
    run_case("classify", ["classify", p, "--out", d / "run", "--missing", missing, "--batch", "4", *TINY],
             written=[d / "run"])


@FUZZ
@given(header=st.lists(TOKENS, min_size=0, max_size=4).map(",".join), body=_rows(",", 0, 40),
       extra=st.sampled_from([[], ["--column", "x"], ["--date-column", "date"], ["--fill", "interpolate"],
                              ["--fill", "drop"], ["--period", "0"], ["--quantiles", "0.1,0.9"]]))
def test_fuzz_forecast_csv(tmp_path_factory, header, body, extra):
    d = tmp_path_factory.mktemp("fc")
    p = d / "s.csv"
    p.write_text(header + "\n" + body, encoding="utf-8", errors="surrogatepass")
    run_case("forecast", ["forecast", p, "--horizon", "2", "--out", d / "run", *extra, *TINY], written=[d / "run"])


@FUZZ
@given(values=st.lists(st.sampled_from(["0", "1e308", "1e300", "1e-310", "5e-324", "3", "-1e200", "7"]),
                       min_size=30, max_size=60))
def test_fuzz_forecast_magnitudes(tmp_path_factory, values):
    d = tmp_path_factory.mktemp("fcm")
    p = d / "s.csv"
    p.write_text("date,x\n" + "".join(f"2020-01-{i % 28 + 1:02d},{v}\n" for i, v in enumerate(values)))
    run_case("forecast magnitudes", ["forecast", p, "--horizon", "2", "--out", d / "run", *TINY],
             written=[d / "run"])


@FUZZ
@given(body=st.lists(st.lists(st.text(alphabet="ab1\t -", max_size=6), min_size=1, max_size=4).map("\t".join),
                     min_size=0, max_size=30).map("\n".join))
def test_fuzz_seq2seq_pairs(tmp_path_factory, body):
    d = tmp_path_factory.mktemp("pairs")
    p = d / "pairs.tsv"
    p.write_text(body, encoding="utf-8")
    run_case("seq2seq pairs", ["seq2seq", "--train", p, "--out", d / "run", "--embedding", "4", "--batch", "4",
                               *TINY], written=[d / "run"])


@FUZZ
@given(command=st.sampled_from(["classify", "forecast", "seq2seq", "train-lm"]),
       limit=st.sampled_from(["0.01", "0.2", "0.7", "1.5"]))
def test_fuzz_tiny_time_limits(tmp_path_factory, command, limit):
    """A time limit too short for a step is a clean error; one that allows a step leaves a
    complete run directory, within the limit and a little slack."""
    import time
    d = tmp_path_factory.mktemp("limit")
    rng = np.random.default_rng(0)
    if command == "classify":
        (d / "in.tsv").write_text("".join(f"{i % 2}\t" + "\t".join(f"{v:.3f}" for v in rng.random(20) + i % 2) + "\n"
                                          for i in range(40)))
        args = ["classify", d / "in.tsv", "--test", d / "in.tsv"]
    elif command == "forecast":
        (d / "in.csv").write_text("x\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(120)))
        args = ["forecast", d / "in.csv", "--horizon", "3", "--test-fraction", "0.2"]
    elif command == "seq2seq":
        args = ["seq2seq", "--dates", "200"]
    else:
        (d / "in.txt").write_text(TEXT)
        args = ["train-lm", d / "in.txt"]
    start = time.perf_counter()
    code, _, _ = run_case("time limit", [*args, "--out", d / "run", "--hidden", "8", "--time-limit", limit,
                                         "--quiet"], written=[d / "run"])
    wall = time.perf_counter() - start
    if code == 0 and not COUNT_ONLY:
        assert wall < float(limit) + 2.5, f"{command} --time-limit {limit}: {wall:.2f} s"
        for name in ("config.json", "model.npz", "metrics.json", "report.html"):
            assert (d / "run" / name).is_file(), f"{command} --time-limit {limit}: no {name}"


# -- applying a saved model -----------------------------------------------------------------------------

@FUZZ
@given(text=st.text(max_size=200), prompt=st.text(max_size=5),
       opts=st.sampled_from([[], ["--temperature", "0"], ["--top-k", "1"], ["--top-p", "0.5"], ["--beam", "3"],
                             ["--length", "1"], ["--temperature", "1e308"], ["--top-k", "1000000000"]]))
def test_fuzz_evaluate_and_generate(lm_run, tmp_path_factory, text, prompt, opts):
    d = tmp_path_factory.mktemp("ev")
    p = d / "held.txt"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    run_case("evaluate", ["evaluate", lm_run / "run", p], json_stdout=True)
    run_case("generate", ["generate", lm_run / "run", "--prompt", prompt.replace("\x00", ""), "--length", "20",
                          "--seed", "1", *opts])


# -- mutated run directories ---------------------------------------------------------------------------

def _npz_member(data, arrays: dict) -> bytes:
    """A new model.npz: the original members with one replaced, dropped, added or corrupted."""
    name = data.draw(st.sampled_from(sorted(arrays)))
    how = data.draw(st.sampled_from(["int64", "shape", "huge_header", "garbage", "drop", "extra", "object",
                                     "float16", "nan", "huge_values", "bigendian"]))
    arrays = dict(arrays)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for k, a in arrays.items():
            if k != name:
                zf.writestr(k + ".npy", _npy(a))
                continue
            if how == "drop":
                continue
            if how == "garbage":
                zf.writestr(k + ".npy", b"not an array at all")
            elif how == "huge_header":
                hdr = io.BytesIO()
                np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False,
                                                           "shape": (10 ** 12,)})
                zf.writestr(k + ".npy", hdr.getvalue() + b"\0" * 64)
            elif how == "object":
                zf.writestr(k + ".npy", _npy(np.array([None, 1], dtype=object), pickle=True))
            else:
                b = {"int64": lambda: a.astype(np.int64), "shape": lambda: a.reshape(-1)[:-1],
                     "extra": lambda: a, "float16": lambda: a.astype(np.float16),
                     "nan": lambda: np.full_like(a, np.nan), "huge_values": lambda: np.full_like(a, 3e38),
                     "bigendian": lambda: a.astype(a.dtype.newbyteorder(">"))}[how]()
                zf.writestr(k + ".npy", _npy(b))
                if how == "extra":
                    zf.writestr("surplus.npy", _npy(a))
    return buf.getvalue()


def _npy(a, pickle: bool = False) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array(b, a, allow_pickle=pickle)
    return b.getvalue()


@FUZZ
@given(data=st.data(), rehash=st.booleans(), command=st.sampled_from(["generate", "evaluate"]))
def test_fuzz_model_npz(lm_run, tmp_path_factory, data, rehash, command):
    d = _copy_run(lm_run / "run", tmp_path_factory.mktemp("npz") / "run")
    from rnnkit import io as rkio
    npz = d / "model.npz"
    style = data.draw(st.sampled_from(["member", "member", "truncate", "flip", "empty"]))
    raw = npz.read_bytes()
    if style == "member":
        raw = _npz_member(data, rkio.load_npz(npz))
    elif style == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif style == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:]
    else:
        raw = b""
    npz.write_bytes(raw)
    if rehash:
        _rehash(d)
    argv = ["generate", d, "--length", "5", "--seed", "0"] if command == "generate" else \
        ["evaluate", d, lm_run / "t.txt"]
    run_case(f"model.npz {style}", argv, json_stdout=command == "evaluate")


@FUZZ
@given(data=st.data(), command=st.sampled_from(["generate", "evaluate", "seq2seq"]))
def test_fuzz_config_json(lm_run, s2s_run, tmp_path_factory, data, command):
    src = s2s_run / "run" if command == "seq2seq" else lm_run / "run"
    d = _copy_run(src, tmp_path_factory.mktemp("cfg") / "run")
    cfg = d / "config.json"
    if data.draw(st.booleans()):
        cfg.write_text(_dumps(_mutate_json(json.loads(cfg.read_text()), data)))
    else:
        raw = cfg.read_bytes()
        i = data.draw(st.integers(0, len(raw) - 1))
        cfg.write_bytes(raw[:i] + data.draw(st.sampled_from([b"", b"\xff", b"[" * 100000, b"NaN", b"1e999"])))
    argv = {"generate": ["generate", d, "--length", "5", "--seed", "0"],
            "evaluate": ["evaluate", d, lm_run / "t.txt"],
            "seq2seq": ["seq2seq", "--model", d, "1 March 2001", "2001-03-01"]}[command]
    run_case(f"config.json {command}", argv, json_stdout=command == "evaluate")


@FUZZ
@given(data=st.data(), rehash=st.booleans())
def test_fuzz_trainer_json(lm_run, tmp_path_factory, data, rehash):
    d = _copy_run(lm_run / "run", tmp_path_factory.mktemp("tr") / "run")
    tj = d / "train" / "trainer.json"
    tree = json.loads(tj.read_text())
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(["step", "epoch", "batch_in_epoch", "last_eval_step", "elapsed"]))
        tree[key] = data.draw(st.sampled_from([-5, -1, 10 ** 12, 1e308, "x", None, [], 0.5]))
    else:
        tree = _mutate_json(tree, data)
    tj.write_text(_dumps(tree))
    if rehash:
        _rehash(d / "train")
    run_case("trainer.json", ["train-lm", lm_run / "t.txt", "--out", d, "--resume", "--max-steps", "8", "--quiet"],
             written=[d])


# -- hostile sizes on the command line ------------------------------------------------------------------

HUGE = ["1000000000", "1000000", "100000000", "10000000000000"]


@FUZZ
@given(case=st.sampled_from([
    ("train-lm", ["--hidden"]), ("train-lm", ["--layers"]), ("train-lm", ["--embedding"]),
    ("train-lm", ["--batch"]), ("train-lm", ["--seq-len"]), ("gradients", ["--length"]),
    ("gradients", ["--hidden"]), ("memory", ["--length"]), ("memory", ["--hidden"]), ("memory", ["--batch"]),
    ("seq2seq", ["--dates"]), ("seq2seq", ["--hidden"]), ("forecast", ["--lookback"]),
    ("forecast", ["--horizon"]), ("classify", ["--hidden"]), ("generate", ["--length"])]),
       size=st.sampled_from(HUGE))
def test_fuzz_sizes(lm_run, tmp_path_factory, case, size):
    d = tmp_path_factory.mktemp("size")
    command, flag = case
    csv_path = d / "s.csv"
    csv_path.write_text("date,x\n" + "".join(f"2020-01-{i % 28 + 1:02d},{i % 7}\n" for i in range(60)))
    tsv = d / "c.tsv"
    tsv.write_text("".join(f"{i % 2}\t{i}\t{i + 1}\t{i % 3}\n" for i in range(20)))
    base = {"train-lm": ["train-lm", lm_run / "t.txt", "--out", d / "run", "--max-steps", "2", "--quiet"],
            "gradients": ["gradients", "--out", d / "run", "--cell", "rnn", "--quiet"],
            "memory": ["memory", "--out", d / "run", "--cell", "rnn", "--steps", "2", "--quiet"],
            "seq2seq": ["seq2seq", "--out", d / "run", "--epochs", "1", "--time-limit", "5", "--quiet"],
            "forecast": ["forecast", csv_path, "--horizon", "2", "--out", d / "run", "--time-limit", "5", "--quiet"],
            "classify": ["classify", tsv, "--out", d / "run", "--time-limit", "5", "--quiet"],
            "generate": ["generate", lm_run / "run", "--seed", "0"]}[command]
    if command == "generate":
        # a long output streams: stopping it early (here by the timer) is the user's choice, not a hang
        return _generate_streams(lm_run)
    run_case(f"size {command} {flag[0]}", base + flag + [size], written=[d / "run"])


def _generate_streams(lm_run):
    out = io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, 3)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            main(["generate", str(lm_run / "run"), "--length", "1000000000", "--seed", "0"])
    except Hang:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    streamed = len(out.getvalue()) > 100
    if LOG:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": "size generate --length", "argv": ["generate", "--length", "1000000000"],
                                "code": None, "problems": [] if streamed else ["hang"], "stderr": "",
                                "invalid": []}) + "\n")
    if not COUNT_ONLY:
        assert streamed, "generate --length 1000000000 printed nothing within 3 s"
