"""`rnnkit demo --quick`: both runs, their directories and the report over them."""

import base64
import io
import json
import re
import sys
from html.parser import HTMLParser

import pytest

from conftest import HAVE_MATPLOTLIB, PNG_SIGNATURE
from rnnkit.cli import main


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.imgs, self.chunks = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a":
            self.links.append(a["href"])
        if tag == "img":
            self.imgs.append(a["src"])

    def handle_data(self, data):
        self.chunks.append(data)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    capture = pytest.MonkeyPatch()       # capsys is per test; the demo runs once per module
    buf = io.StringIO()
    capture.setattr(sys, "stdout", buf)
    try:
        code = main(["demo", "--quick", "--out", str(out)])
    finally:
        capture.undo()
    return out, code, buf.getvalue()


def test_quick_demo_writes_both_runs_and_the_report(demo):
    out, code, stdout = demo
    assert code == 0
    for name in ("report.html", "demo.json", "char-lm/config.json", "char-lm/model.npz", "char-lm/report.html",
                 "char-lm/train/metrics.jsonl", "forecast/config.json", "forecast/model.npz",
                 "forecast/report.html", "forecast/metrics.json", "forecast/backtest.csv",
                 "forecast/predictions.csv", "forecast/data.csv"):
        assert (out / name).is_file(), name
    # the last line says where the report is
    assert stdout.strip().splitlines()[-1] == f"report: {(out / 'report.html').resolve()}"


def test_samples_are_printed_while_training(demo):
    _, _, stdout = demo
    epochs = re.findall(r"^  epoch (\d+), step \d+", stdout, flags=re.M)
    assert epochs and epochs[0] == "1"
    assert re.search(r"^    \| def ", stdout, flags=re.M)           # each sample continues the prompt
    assert "naive (last value)" in stdout


def test_top_report_links_and_embeds_both_runs(demo):
    out, _, _ = demo
    page = _Links()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert "char-lm/report.html" in page.links and "forecast/report.html" in page.links
    for link in page.links:
        assert (out / link).is_file()
    if HAVE_MATPLOTLIB:
        assert len(page.imgs) >= 2                                  # training curves and forecast plot
        for src in page.imgs:
            assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    else:
        assert page.imgs == []
    text = "".join(page.chunks)
    assert "Character language model" in text and "Forecaster" in text
    assert "seasonal naive" in text and "bits/char" in text


def test_summary_records_both_parts(demo):
    out, _, _ = demo
    s = json.loads((out / "demo.json").read_text())
    assert s["quick"] is True and s["lm"]["steps"] > 0
    assert s["lm"]["val_bits_per_char"] > 0
    met = s["forecast"]["metrics"]
    assert {"model", "naive", "seasonal_naive"} <= set(met)
    assert met["naive"]["mase"] > 0
    assert s["seconds"] >= s["lm"]["seconds"] + s["forecast"]["seconds"] - 1e-6


def test_demo_refuses_a_foreign_directory_or_a_file(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--force" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
    assert main(["demo", "--quick", "--out", str(tmp_path / "mine.txt")]) == 1
    assert "existing file" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_ctrl_c_in_the_demo_keeps_the_checkpoint_and_exits_130(tmp_path, monkeypatch, capsys):
    from rnnkit.models import SequenceTagger

    real_backward = SequenceTagger.backward
    calls = {"n": 0}

    from rnnkit.tasks.policy import PROBE_CALLS

    def interrupted_backward(self):
        calls["n"] += 1
        if calls["n"] == PROBE_CALLS + 2:           # the second training step, after the timing probe
            raise KeyboardInterrupt
        return real_backward(self)

    monkeypatch.setattr(SequenceTagger, "backward", interrupted_backward)
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err
    state = json.loads((out / "char-lm" / "train" / "trainer.json").read_text())
    assert state["step"] == 1                     # the one finished step is saved
    assert not (out / "report.html").exists() and not (out / "forecast").exists()
