"""Labelled text files in the layouts people write them: label first or last, a header, CSV."""

import json

import pytest

from rnnkit.cli import main
from rnnkit.data.labeled_text import looks_like_labeled_text, read_labeled_text, read_text_file
from rnnkit.errors import RnnkitError

ROWS = [("great film, loved it", "pos"), ("boring film", "neg"), ("what a fine story", "pos"),
        ("dull and slow", "neg"), ("warm and funny", "pos")]
TEXTS, LABELS = [t for t, _ in ROWS], [lab for _, lab in ROWS]


def test_text_then_label_lines_are_read_the_right_way_round(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("".join(f"{t}\t{lab}\n" for t, lab in ROWS))
    assert looks_like_labeled_text(p) and read_labeled_text(p) == (TEXTS, LABELS)
    q = tmp_path / "l.tsv"
    q.write_text("".join(f"{lab}\t{t}\n" for t, lab in ROWS))
    assert read_labeled_text(q) == (TEXTS, LABELS)


def test_a_header_line_is_skipped(tmp_path):
    for header, line in (("label\ttext", "{lab}\t{t}"), ("Sentence\tSentiment", "{t}\t{lab}")):
        p = tmp_path / "h.tsv"
        p.write_text(header + "\n" + "".join(line.format(t=t, lab=lab) + "\n" for t, lab in ROWS))
        assert read_labeled_text(p) == (TEXTS, LABELS)


def test_csv_with_named_text_and_label_columns(tmp_path):
    p = tmp_path / "reviews.csv"
    p.write_text("id,review,sentiment\n" + "".join(f'{i},"{t}",{lab}\n' for i, (t, lab) in enumerate(ROWS)))
    assert looks_like_labeled_text(p) and read_labeled_text(p) == (TEXTS, LABELS)
    bad = tmp_path / "bad.csv"
    bad.write_text('text,label\n"fine",pos\n"no label",\n')
    with pytest.raises(RnnkitError, match="line 3: the label column 'label' is empty"):
        read_labeled_text(bad)
    unlabelled = tmp_path / "new.csv"
    unlabelled.write_text('text\n"great, just great"\nawful\n')
    assert read_text_file(unlabelled) == (["great, just great", "awful"], None)
    series = tmp_path / "series.csv"                 # a CSV of numbers names no text column
    series.write_text("label,v1,v2\n1,0.5,0.25\n2,1.0,2.0\n")
    assert not looks_like_labeled_text(series)


def test_classify_reads_a_csv_of_reviews(tmp_path):
    p = tmp_path / "reviews.csv"
    p.write_text("review,sentiment\n" + "".join(f'"{t} {i}",{lab}\n' for i in range(8) for t, lab in ROWS))
    out = tmp_path / "run"
    assert main(["classify", str(p), "--out", str(out), "--epochs", "1", "--ensemble", "1", "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["classes"] == ["neg", "pos"]


def test_a_csv_of_numbers_is_not_text_whatever_its_header(tmp_path):
    sensors = tmp_path / "s.csv"
    sensors.write_text("id,sequence,label\na,1.5,up\nb,2.5,down\n")       # a column named like text, of numbers
    assert not looks_like_labeled_text(sensors)


def test_a_csv_without_named_columns_says_what_it_needs(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("comment_text,score\nhello there,0.5\n")
    with pytest.raises(RnnkitError, match=r"c\.csv: a CSV of texts needs a header naming its text column"):
        read_labeled_text(p)


def test_a_csv_of_two_columns_is_words_and_labels_whatever_the_header(tmp_path):
    body = "".join(f'"{t}, {i}",{lab}\n' for i in range(3) for t, lab in ROWS)
    want = ([f"{t}, {i}" for i in range(3) for t, _ in ROWS], [lab for _ in range(3) for _, lab in ROWS])
    for head in ("comment_text,toxic\n", ""):
        p = tmp_path / "two.csv"
        p.write_text(head + body)
        assert looks_like_labeled_text(p) and read_labeled_text(p) == want
    flipped = tmp_path / "flipped.csv"
    flipped.write_text("label_id,sentence_text\n" + "".join(f'{lab},"{t} {i}"\n' for i in range(3)
                                                             for t, lab in ROWS))
    assert read_labeled_text(flipped)[1][:2] == ["pos", "neg"]


def test_tab_separated_fields_quoted_as_csv_writers_quote_them(tmp_path):
    import csv

    path = tmp_path / "quoted.tsv"
    with open(path, "w", newline="", encoding="utf-8") as f:     # pandas' to_csv(sep="\t") quotes so
        w = csv.writer(f, delimiter="\t")
        w.writerow(["label", "text"])
        w.writerows([("pos", 'loved it, said "Al"'), ("neg", "dull"), ("pos", '"Great" movie')] * 4)
    texts, labels = read_labeled_text(path)
    assert texts[:3] == ['loved it, said "Al"', "dull", '"Great" movie'] and labels[:3] == ["pos", "neg", "pos"]
    raw = tmp_path / "raw.tsv"                                   # quotes a writer did not add stay
    raw.write_text('pos\t"Great" movie\nneg\tsaid "no" twice\n' * 4, encoding="utf-8")
    assert read_labeled_text(raw)[0][:2] == ['"Great" movie', 'said "no" twice']


def test_fasttext_lines_give_their_first_label(tmp_path):
    p = tmp_path / "train.ft.txt"
    p.write_text("".join(f"__label__{lab} {t}\n" for t, lab in ROWS) + "__label__pos __label__extra two labels\n")
    assert looks_like_labeled_text(p)
    assert read_labeled_text(p) == (TEXTS + ["two labels"], LABELS + ["pos"])
    p.write_text("".join(f"__label__{lab} {t}\n" for t, lab in ROWS * 4) + "no label here\n")
    with pytest.raises(RnnkitError, match=r"train.ft.txt, line 21: expected '__label__LABEL text'"):
        read_labeled_text(p)


def write_documents(root, rows, unlabelled=0):
    for i, (t, lab) in enumerate(rows):
        (root / lab).mkdir(parents=True, exist_ok=True)
        (root / lab / f"{i}_7.txt").write_text(f"{t}\nsecond line {i}\n")
    if unlabelled:                        # aclImdb's layout: unlabelled reviews and other files beside
        (root / "unsup").mkdir()
        for i in range(unlabelled):
            (root / "unsup" / f"{i}_0.txt").write_text("no label")
        (root / "labeledBow.feat").write_text("0 0:1\n")


def test_a_folder_of_label_folders_of_documents(tmp_path, capsys):
    from rnnkit.data.channels import is_channel_folder
    from rnnkit.data.labeled_text import read_text_folder
    from rnnkit.errors import DataNote

    write_documents(tmp_path / "train", ROWS * 8, unlabelled=3)
    write_documents(tmp_path / "test", ROWS * 2)
    assert not is_channel_folder(tmp_path / "train")            # words, not a recording per row
    with pytest.warns(DataNote, match=r"40 documents in 2 label folders \(neg, pos\); unsup \(no label\) not read"):
        texts, labels, files = read_text_folder(tmp_path / "train")
    k = files.index(str(tmp_path / "train" / "neg" / "1_7.txt"))
    assert texts[k] == f"{ROWS[1][0]} second line 1" and labels[k] == "neg"          # lines joined by a space
    assert labels.count("pos") == 24 and len(files) == 40
    out = tmp_path / "run"
    assert main(["classify", str(tmp_path / "train"), "--test", str(tmp_path / "test"), "--out", str(out),
                 "--epochs", "1", "--ensemble", "1"]) == 0
    assert "40 documents in 2 label folders" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["classes"] == ["neg", "pos"]
    # evaluate prints JSON on stdout; what the reader says goes to stderr
    assert main(["evaluate", str(out), str(tmp_path / "test")]) == 0
    said = capsys.readouterr()
    assert sum(json.loads(said.out)["support"]) == 10 and "10 documents in 2 label folders" in said.err
    empty = tmp_path / "empty"
    write_documents(empty, ROWS)
    (empty / "pos" / "blank.txt").write_text("  \n")
    with pytest.raises(RnnkitError, match=r"blank.txt: an empty document"):
        read_text_folder(empty)


def test_a_csv_of_a_label_column_and_several_text_columns(tmp_path):
    rows = [(3, "Wall St. Bears Claw Back", "Short-sellers, Wall Street's dwindling band, are seeing green."),
            (4, "New chip is fast", "The maker says it doubles the speed."),
            (2, "Team wins the cup", "A late goal settles the final."),
            (3, "Oil prices rise", "Crude climbs on supply worries.")] * 2
    rows = [(c, f"{t} {i}", f"{d} ({i})") for i, (c, t, d) in enumerate(rows)]     # texts differ, labels repeat
    body = "".join(f'"{c}","{t}","{d}"\n' for c, t, d in rows)
    joined = [f"{t} {d}" for _, t, d in rows]
    plain = tmp_path / "ag.csv"                       # AG News as shipped: no header
    plain.write_text(body)
    assert looks_like_labeled_text(plain) and read_labeled_text(plain) == (joined, [str(c) for c, _, _ in rows])
    headed = tmp_path / "ag_head.csv"                 # Kaggle's copy: "Class Index,Title,Description"
    headed.write_text('"Class Index","Title","Description"\n' + body)
    assert read_labeled_text(headed) == (joined, [str(c) for c, _, _ in rows])
    numbers = tmp_path / "numbers.csv"                # no column of words: not text
    numbers.write_text("".join(f"{i % 2},{i}.5,{i}.25\n" for i in range(8)))
    assert not looks_like_labeled_text(numbers)


def test_json_lines_of_reviews(tmp_path):
    p = tmp_path / "reviews.jsonl"
    p.write_text("".join(json.dumps({"review_id": f"r{i}", "stars": 5.0 if lab == "pos" else 1.0, "text": t}) + "\n"
                         for i, (t, lab) in enumerate(ROWS)))
    assert looks_like_labeled_text(p)
    assert read_labeled_text(p) == (TEXTS, ["5" if lab == "pos" else "1" for lab in LABELS])
    amazon = tmp_path / "amazon.jsonl"                # a label key wins over a rating; reviewText is text
    amazon.write_text("".join(json.dumps({"overall": 4.0, "reviewText": t, "label": lab}) + "\n" for t, lab in ROWS))
    assert read_labeled_text(amazon) == (TEXTS, LABELS)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "fine", "label": "pos"}) + "\n{not json\n")
    with pytest.raises(RnnkitError, match=r"bad.jsonl, line 2: not a JSON object"):
        read_labeled_text(bad)
    nokey = tmp_path / "nokey.jsonl"
    nokey.write_text(json.dumps({"body_text": "fine", "x": 1}) + "\n")
    with pytest.raises(RnnkitError, match=r"nokey.jsonl, line 1: keys body_text, x; expected a text key"):
        read_labeled_text(nokey)


def test_a_sensor_csv_with_spaced_labels_stays_a_series_file(tmp_path):
    from rnnkit.tasks.classify_inputs import detect_input

    rows = "".join(f"case{c},{'walking upstairs' if c % 2 else 'sitting down'},{t},{t * 0.1:.2f},{c * 0.5:.2f},1.0\n"
                   for c in range(6) for t in range(10))
    p = tmp_path / "har.csv"
    p.write_text("id,label,t,ax,ay,az\n" + rows)
    assert not looks_like_labeled_text(p) and detect_input(p) == "series"
