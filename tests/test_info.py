"""rnnkit info: versions, which recurrent loops run (C or NumPy, instruction set, threads), the BLAS."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import rnnkit
from rnnkit import fast
from rnnkit.info import format_info, info

ROOT = str(Path(__file__).resolve().parents[1])


def run_cli(code: str, **env_extra) -> str:
    env = {**{k: v for k, v in os.environ.items() if k != "RNNKIT_NO_COMPILE"},
           "PYTHONPATH": ROOT, **env_extra}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return out.stdout


def test_info_says_what_runs(monkeypatch):
    monkeypatch.delenv("RNNKIT_NO_COMPILE", raising=False)
    d = info()
    assert d["versions"]["rnnkit"] == rnnkit.__version__
    assert d["versions"]["numpy"] == np.__version__
    loops = d["loops"]
    if fast.available():
        assert loops["runs"] == "C" and loops["isa"] == fast.isa() and loops["isa"] in loops["isas"]
        assert loops["threads"] == fast.max_threads() >= 1
        assert f"recurrent loops: C, {fast.isa()}" in format_info(d)
        assert "compiled: rnn, lstm, gru, indrnn, mingru, minlstm, lstm with proj_size and/or layer_norm" in format_info(d)
        assert "NumPy: peephole" in format_info(d)
    else:
        assert loops["runs"] == "NumPy"
    blas = [p for p in d["pools"] if p["user_api"] == "blas"]
    assert blas and all(p["num_threads"] >= 1 for p in blas)      # NumPy always brings one
    assert f"BLAS: {blas[0]['internal_api']}" in format_info(d)
    monkeypatch.setenv("RNNKIT_NO_COMPILE", "1")
    d = info()
    assert d["loops"]["runs"] == "NumPy" and "RNNKIT_NO_COMPILE" in d["loops"]["status"]
    assert "recurrent loops: NumPy" in format_info(d)


def test_the_command_prints_it_and_json():
    text = run_cli("from rnnkit.cli import main; main(['info'])")
    assert text.startswith(f"versions: rnnkit {rnnkit.__version__}, python ")
    d = json.loads(run_cli("from rnnkit.cli import main; main(['info', '--json'])"))
    assert d["loops"]["runs"] == ("C" if fast.available() else "NumPy")


def test_the_command_says_numpy_runs_without_the_loops():
    # as on a machine whose install found no C compiler
    code = ("import sys; sys.modules['rnnkit.fast._fastrnn'] = None; "
            "from rnnkit.cli import main; main(['info'])")
    line = [s for s in run_cli(code).splitlines() if s.startswith("recurrent loops:")]
    assert len(line) == 1
    assert line[0].startswith("recurrent loops: NumPy (NumPy cells: rnnkit.fast._fastrnn ")
