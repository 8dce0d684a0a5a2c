"""Strict readers, bounded sizes, finite outputs and messages in the caller's terms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.errors import CheckpointError, DivergenceError, ResourceLimitError, RnnkitError


def test_ucr_line_with_an_empty_label_is_an_error_naming_the_line(tmp_path):
    from rnnkit.data.ucr import read_ucr_tsv

    p = tmp_path / "a.tsv"
    p.write_text("1\t0.5\t1.5\n\t0.5\t1.5\n")
    with pytest.raises(RnnkitError, match=r"a\.tsv, line 2: empty label"):
        read_ucr_tsv(p)
    p.write_text("1\t0.5\t1.5\t\t\n2\t3\t4\n")          # trailing tabs stay fine
    X, y = read_ucr_tsv(p)
    assert y == ["1", "2"] and X[0].ravel().tolist() == [0.5, 1.5]


def test_labelled_csv_without_a_header_keeps_its_first_series(tmp_path):
    from rnnkit.data.ucr import read_labeled_csv

    p = tmp_path / "a.csv"
    p.write_text("1,0.5,2.5\n0,1.5,3.5\n")
    X, y = read_labeled_csv(p)
    assert y == ["1", "0"] and X[0].ravel().tolist() == [0.5, 2.5]
    p.write_text("label,t1,t2\n1,0.5,2.5\n")                  # a real header
    assert read_labeled_csv(p)[1] == ["1"]
    p.write_text("label,0,1\n1,0.5,2.5\n")                    # column indices are a header too
    assert read_labeled_csv(p)[1] == ["1"]


def test_pairs_line_with_two_tabs_is_an_error(tmp_path):
    from rnnkit.data.text import read_pairs

    p = tmp_path / "p.tsv"
    p.write_text("a\tb\nx\ty\tz\n")
    with pytest.raises(RnnkitError, match=r"p\.tsv, line 2: 2 tabs; expected one"):
        read_pairs(p)
    # Tatoeba's pair files carry a CC-BY attribution in a third column: that one is read
    p.write_text("Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\n")
    assert read_pairs(p) == (["Go."], ["Va !"])


@pytest.mark.parametrize("value, word", [("1e308", "too large"), ("1e-310", "too small")])
def test_extreme_magnitudes_are_refused_naming_the_row(tmp_path, value, word):
    from rnnkit.data.series import read_csv
    from rnnkit.tasks.forecast import Forecaster

    p = tmp_path / "s.csv"
    p.write_text("x\n1\n2\n" + value + "\n4\n")
    with pytest.raises(RnnkitError, match=rf"line 4, column 'x' is {word}"):
        read_csv(p)
    with pytest.raises(RnnkitError, match=rf"row 2, column 0: value .* is {word}"):
        Forecaster(horizon=1).fit(np.array([1.0, 2.0, float(value), 4.0] * 10))


def test_a_constant_series_forecasts_the_constant(tmp_path):
    from rnnkit.tasks.forecast import Forecaster

    fc = Forecaster(horizon=3, hidden_size=4, lookback=4, seed=0).fit(np.full(60, 7.25), epochs=2)
    assert np.array_equal(fc.predict(np.full(60, 7.25)), np.full(3, 7.25))
    fc.save(tmp_path / "fc")
    assert np.array_equal(Forecaster.load(tmp_path / "fc").predict(np.full(60, 7.25)), np.full(3, 7.25))
    zeros = Forecaster(horizon=2, hidden_size=4, lookback=4).fit(np.zeros(60), epochs=1)
    m = zeros.backtest(np.zeros(60), n_origins=3)["metrics"]["model"]
    assert m["mae"] == 0.0 and m["mape"] is None           # undefined, not NaN


def _lm_dir(tmp_path):
    from rnnkit.tasks.lm import CharLanguageModel

    lm = CharLanguageModel(hidden_size=8, num_layers=1, seq_len=8, batch_size=2)
    lm.fit("abcab cabba " * 30, max_steps=3, out_dir=tmp_path / "run")
    return lm, tmp_path / "run"


def test_trainer_json_with_a_negative_step_is_refused(tmp_path):
    import hashlib

    from rnnkit.tasks.lm import CharLanguageModel

    _, run = _lm_dir(tmp_path)
    tj = run / "train" / "trainer.json"
    state = json.loads(tj.read_text())
    state["step"] = -5
    tj.write_text(json.dumps(state))
    header = json.loads((run / "train" / "config.json").read_text())
    header["files"]["trainer.json"]["sha256"] = hashlib.sha256(tj.read_bytes()).hexdigest()
    (run / "train" / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match="trainer.json has step -5; it must be >= 0"):
        CharLanguageModel(hidden_size=8, num_layers=1, seq_len=8, batch_size=2).fit(
            "abcab cabba " * 30, max_steps=6, out_dir=run, resume=True)


def test_huge_config_sizes_are_refused_before_allocation(tmp_path):
    from rnnkit.tasks.lm import CharLanguageModel

    _, run = _lm_dir(tmp_path)
    header = json.loads((run / "config.json").read_text())
    for key, value in (("hidden_size", 10 ** 12), ("num_layers", 10 ** 9)):
        bad = json.loads(json.dumps(header))
        bad["model"][key] = value
        (run / "config.json").write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=rf"config\.json does not describe a valid model: .*"
                                                  rf"{key}={value}.* need about .* more than the .* available"):
            CharLanguageModel.load(run)


def test_huge_finite_weights_are_an_error_not_nan(tmp_path):
    lm, _ = _lm_dir(tmp_path)
    for v in lm.model_.params.values():
        v[...] = 3e38
    with pytest.raises(DivergenceError, match="overflow"):
        lm.evaluate("abcab cabba")
    with pytest.raises(DivergenceError, match="overflow"):
        lm.sample("ab", 5, seed=0)


def test_divergence_names_the_step_not_a_layer():
    from rnnkit.tasks.lm import CharLanguageModel

    with pytest.raises(DivergenceError, match=r"training diverged at step 1 \(epoch 1, batch 1\): the update "
                                              r"made the weights .* too large"):
        CharLanguageModel(hidden_size=8, num_layers=1, seq_len=8, batch_size=2).fit(
            "abcab cabba " * 30, max_steps=5, lr=1e30)


def test_seq2seq_output_length_is_bounded():
    from rnnkit.tasks.seq2seq import MAX_OUTPUT_LENGTH, Seq2Seq

    with pytest.raises(ValueError, match=rf"max_output_length must be at most {MAX_OUTPUT_LENGTH}"):
        Seq2Seq(max_output_length=10 ** 9)


def test_messages_name_the_command_line_flags():
    from rnnkit.cli.messages import for_command

    flags = {"--hidden", "--missing", "--val-fraction", "--fill"}
    assert for_command("x.tsv, line 3: missing value; pass missing='trim' or 'interpolate'", flags) == \
        "x.tsv, line 3: missing value; pass --missing trim or interpolate"
    assert for_command("split_text: val_fraction=0.9 of 10 items leaves 9", flags) == \
        "--val-fraction 0.9 of 10 items leaves 9"
    assert for_command("CharLanguageModel.fit: hidden_size must be >= 1", flags) == "--hidden must be >= 1"
    assert for_command("a: unknown 'é' (build it with unknown_char=... to map others)", flags) == \
        "a: unknown 'é'"
    assert for_command("Train.tsv: line 3", flags) == "Train.tsv: line 3"     # file names stay


def test_cli_size_flags_are_refused_naming_the_flag(tmp_path, capsys, monkeypatch):
    from rnnkit.cli import main

    monkeypatch.setenv("RNNKIT_MEMORY_LIMIT", "2G")
    cases = [(["gradients", "--length", "10000000", "--out", str(tmp_path / "g")], "--length 10000000"),
             (["memory", "--length", "100000000", "--out", str(tmp_path / "m")], "--length 100000000"),
             (["seq2seq", "--dates", "1000000000", "--out", str(tmp_path / "s")], "--dates 1000000000"),
             (["seq2seq", "--hidden", "1000000000", "--out", str(tmp_path / "h")], "--hidden 1000000000")]
    for argv, flag in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and flag in err and "more than the 2.0 GiB" in err, err
        assert len(err.strip().splitlines()) == 1


def test_resource_limit_error_is_an_rnnkit_error():
    assert issubclass(ResourceLimitError, RnnkitError)
