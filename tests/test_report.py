"""The run report (rnnkit.report): valid HTML, embedded PNGs, escaping, metrics records."""

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from conftest import PNG_SIGNATURE
from rnnkit import report as rp

VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Page(HTMLParser):
    """Collects tags, text and image sources; records any nesting error."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.imgs, self.text = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    p.close()
    assert not p.errors, p.errors
    assert p.stack == [], f"unclosed tags: {p.stack}"
    return p


def png_bytes(width: int = 4) -> bytes:
    """A real PNG from matplotlib (the path the report uses)."""
    plt = rp.pyplot()
    fig, ax = plt.subplots(figsize=(width, 2))
    ax.plot([0, 1, 2], [1, 0, 1])
    return rp.figure_png(fig)


def decoded_images(page: _Page) -> list[bytes]:
    out = []
    for attrs in page.imgs:
        src = attrs["src"]
        m = re.fullmatch(r"data:image/png;base64,([A-Za-z0-9+/=]+)", src)
        assert m, f"not a PNG data URI: {src[:60]}"
        out.append(base64.b64decode(m.group(1), validate=True))
    return out


RECORDS = [
    {"event": "train", "step": 10, "epoch": 1, "train_loss": 2.0, "val_loss": None, "grad_norm": 1.5, "lr": 1e-3},
    {"event": "val", "step": 10, "epoch": 1, "train_loss": None, "val_loss": 2.2, "grad_norm": None, "lr": 1e-3},
    {"event": "train", "step": 20, "epoch": 2, "train_loss": 1.5, "val_loss": None, "grad_norm": 0.9, "lr": 5e-4},
    {"event": "val", "step": 20, "epoch": 2, "train_loss": None, "val_loss": 1.9, "grad_norm": None, "lr": 5e-4},
]


def test_page_parses_and_embeds_section_and_training_images():
    pytest.importorskip("matplotlib")
    png = png_bytes()
    assert png.startswith(PNG_SIGNATURE)
    sections = [rp.Section("Forecast", text="origin 0", figures=[png]),
                rp.Section("Curves", figures=[rp.pyplot().figure()])]   # a live figure is rendered too
    page = parse(rp.render("run", sections, config={"hidden": 8}, records=RECORDS, timing={"fit": 1.25}))
    images = decoded_images(page)
    # two section figures and the training curves
    assert len(images) == 3
    assert all(img.startswith(PNG_SIGNATURE) for img in images)
    assert images[0] == png                      # embedded byte for byte
    text = "".join(page.text)
    for heading in ("Forecast", "Curves", "Training", "Timing", "Configuration"):
        assert heading in text
    assert '"hidden": 8' in text                 # the config is shown as JSON
    assert "1.25" in text


def test_text_table_title_and_config_are_escaped():
    evil = '<script>alert("x")</script> & <b>'
    sections = [rp.Section(evil, text=evil, table=[[evil, 1.5]], header=[evil, "v"])]
    raw = rp.render(evil, sections, config={"note": evil})
    page = parse(raw)
    assert "script" not in page.tags and "b" not in page.tags
    assert "<script>" not in raw
    # the text survives escaping: every occurrence reads back as the original
    text = "".join(page.text)
    assert text.count(evil) >= 4                 # title, h1, h2, pre, th, td


def test_trusted_html_fragment_is_kept():
    page = parse(rp.render("r", [rp.Section("Links", html='<p><a href="sub/report.html">run</a></p>')]))
    assert "a" in page.tags


def test_report_without_records_config_or_plots(tmp_path):
    path = rp.write_report(tmp_path / "r" / "report.html", "empty run", [])
    page = parse(path.read_text(encoding="utf-8"))
    text = "".join(page.text)
    assert "empty run" in text
    assert "Training" not in text and "Configuration" not in text and "Timing" not in text
    assert page.imgs == []


def test_table_formats_floats_and_keeps_other_cells():
    raw = rp.render("t", [rp.Section("T", table=[["pi", 3.14159265358979], ["n", 7], ["none", None]],
                                     header=["k", "v"])])
    assert "3.14159" in raw and "3.14159265" not in raw       # 6 significant digits
    assert "<td>7</td>" in raw and "<td>None</td>" in raw


def test_read_metrics_skips_a_cut_line_and_missing_file(tmp_path):
    assert rp.read_metrics(tmp_path / "nope.jsonl") == []
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n\n" + json.dumps(RECORDS[1]) + "\n" + '{"event": "tr',
                    encoding="utf-8")
    assert rp.read_metrics(path) == RECORDS[:2]


def test_training_figure_needs_a_loss():
    pytest.importorskip("matplotlib")
    assert rp.training_figure([]) is None
    assert rp.training_figure([{"step": 1, "lr": 0.1}]) is None
    # non-finite values are left out rather than breaking the plot
    fig = rp.training_figure(RECORDS + [{"step": 30, "train_loss": float("nan"), "grad_norm": float("inf")}])
    assert fig is not None and len(fig.axes) == 3
    xs, ys = fig.axes[0].lines[0].get_data()
    assert list(xs) == [10, 20] and list(ys) == [2.0, 1.5]
    rp.pyplot().close(fig)


def test_write_run_report_reads_metrics_and_config(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "train").mkdir()
    with (tmp_path / "train" / "metrics.jsonl").open("w", encoding="utf-8") as f:
        for r in RECORDS:
            f.write(json.dumps(r) + "\n")
    (tmp_path / "config.json").write_text(json.dumps({"model": {"cell": "gru"}}), encoding="utf-8")
    path = rp.write_run_report(tmp_path, "a run", [rp.Section("Data", text="rows: 3")])
    assert path == tmp_path / "report.html"
    png = (tmp_path / "training.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    page = parse(path.read_text(encoding="utf-8"))
    assert png in decoded_images(page)           # the same curves as the file beside it
    text = "".join(page.text)
    assert '"cell": "gru"' in text and "rows: 3" in text
    assert "last record" in text                 # the last metrics record as a table


def test_save_figure_writes_png_atomically(tmp_path):
    pytest.importorskip("matplotlib")
    plt = rp.pyplot()
    fig, _ = plt.subplots()
    data = rp.save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes() == data and data.startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]    # no temporary file left


def test_note_instead_of_plots_without_matplotlib(monkeypatch):
    monkeypatch.setattr(rp, "have_matplotlib", lambda: False)
    page = parse(rp.render("r", [], records=RECORDS))
    text = "".join(page.text)
    assert "pip install" in text and page.imgs == []
    assert "last record" in text
