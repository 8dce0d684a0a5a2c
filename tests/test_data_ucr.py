"""Readers for labelled series files (.tsv, .ts, CSV), on small files written here."""

import numpy as np
import pytest

from rnnkit.data import read_labeled_csv, read_labeled_sequences, read_ucr_ts, read_ucr_tsv
from rnnkit.errors import RnnkitError


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# -- .tsv ------------------------------------------------------------------------------

def test_tsv_equal_and_nan_padded_lengths(tmp_path):
    p = write(tmp_path, "a_TRAIN.tsv",
              "1\t0.5\t1.5\t2.5\n"
              "-1\t3.0\tNaN\tNaN\n"
              "\n"
              "2.0000000e+00\t1\t2\tNaN\n")
    xs, labels = read_ucr_tsv(p)
    assert labels == ["1", "-1", "2"]  # integral numbers normalized
    assert [x.shape for x in xs] == [(3, 1), (1, 1), (2, 1)]
    assert all(x.dtype == np.float64 for x in xs)
    np.testing.assert_array_equal(xs[0][:, 0], [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(xs[2][:, 0], [1, 2])


def test_tsv_interior_nan_error_or_interpolate(tmp_path):
    p = write(tmp_path, "gap.tsv", "a\t1\t2\t3\nb\t1\tNaN\t3\tNaN\n")
    with pytest.raises(RnnkitError, match=r"gap.tsv, line 2: missing value inside the series at position 1"):
        read_ucr_tsv(p)
    xs, labels = read_ucr_tsv(p, missing="interpolate")
    np.testing.assert_array_equal(xs[1][:, 0], [1, 2, 3])
    assert labels == ["a", "b"]
    with pytest.raises(RnnkitError, match="line 2: missing value at position 1"):
        read_ucr_tsv(p, missing="error")


def test_tsv_malformed_lines(tmp_path):
    p = write(tmp_path, "bad.tsv", "1\t1\t2\n1\t1\tx2\n")
    with pytest.raises(RnnkitError, match=r"bad.tsv, line 2: non-numeric value 'x2'"):
        read_ucr_tsv(p)
    q = write(tmp_path, "lab.tsv", "1\t1\t2\n3\n")
    with pytest.raises(RnnkitError, match="line 2: expected a label followed by values"):
        read_ucr_tsv(q)
    r = write(tmp_path, "allnan.tsv", "1\tNaN\tNaN\n")
    with pytest.raises(RnnkitError, match="line 1: the series has no values"):
        read_ucr_tsv(r)
    e = write(tmp_path, "empty.tsv", "\n\n")
    with pytest.raises(RnnkitError, match="no series"):
        read_ucr_tsv(e)
    with pytest.raises(RnnkitError, match="not found"):
        read_ucr_tsv(tmp_path / "missing.tsv")


def test_tsv_whitespace_delimiter(tmp_path):
    p = write(tmp_path, "ws.txt", "1  0.1 0.2\n2 0.3   0.4\n")
    xs, labels = read_ucr_tsv(p, delimiter=None)
    assert labels == ["1", "2"]
    np.testing.assert_array_equal(xs[1][:, 0], [0.3, 0.4])


# -- .ts -------------------------------------------------------------------------------

UNIVARIATE_TS = """# a comment
@problemName Tiny
@timeStamps false
@missing false
@univariate true
@equalLength false
@classLabel true up down
@data
1.0,2.0,3.0:up
3.0,2.0:down
"""

MULTIVARIATE_TS = """@problemName TinyMV
@timeStamps false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true a b
@data
1,2,3:10,20,30:a
4,5,6:40,50,60:b
"""


def test_ts_univariate_variable_length(tmp_path):
    xs, labels = read_ucr_ts(write(tmp_path, "u.ts", UNIVARIATE_TS))
    assert labels == ["up", "down"]
    assert xs[0].shape == (3, 1) and xs[1].shape == (2, 1)
    np.testing.assert_array_equal(xs[1][:, 0], [3, 2])


def test_ts_multivariate_dimensions_are_features(tmp_path):
    xs, labels = read_ucr_ts(write(tmp_path, "m.ts", MULTIVARIATE_TS))
    assert labels == ["a", "b"]
    assert xs[0].shape == (3, 2)
    np.testing.assert_array_equal(xs[1], [[4, 40], [5, 50], [6, 60]])


def test_ts_missing_values_error_or_trim(tmp_path):
    text = MULTIVARIATE_TS.replace("4,5,6:40,50,60:b", "4,5,?:40,50,?:b")
    p = write(tmp_path, "miss.ts", text)
    with pytest.raises(RnnkitError, match=r"miss.ts, line 10: missing value at position 2 \(dimension 0\)"):
        read_ucr_ts(p)
    xs, _ = read_ucr_ts(p, missing="trim")
    np.testing.assert_array_equal(xs[1], [[4, 40], [5, 50]])
    uneven = write(tmp_path, "uneven.ts", MULTIVARIATE_TS.replace("4,5,6:40,50,60:b", "4,5,6:40,50,?:b"))
    with pytest.raises(RnnkitError, match=r"line 10: dimensions have different lengths \[3, 2\]"):
        read_ucr_ts(uneven, missing="trim")


@pytest.mark.parametrize("old,new,message", [
    ("1,2,3:10,20,30:a", "1,2,3:10,20,30:c", r"line 9: label 'c' is not among the declared"),
    ("1,2,3:10,20,30:a", "1,2,3:a", r"line 9: 1 dimensions, but @dimensions says 2"),
    ("4,5,6:40,50,60:b", "4,five,6:40,50,60:b", r"line 10: non-numeric value 'five'"),
    ("@timeStamps false", "@timeStamps true", r"line 2: time-stamped .ts files"),
    ("@data\n1,2,3:10,20,30:a\n4,5,6:40,50,60:b\n", "", r"no @data line"),
    ("1,2,3:10,20,30:a\n4,5,6:40,50,60:b\n", "", r"no cases after @data"),
    ("@data\n", "", r"line 8: expected a @tag header line or @data, got '1,2,3:10,20,30:a'"),
    ("@univariate false", "@univariate maybe", r"line 3: @univariate must be true or false"),
    ("@dimensions 2", "@dimensions two", r"line 4: @dimensions must be an integer"),
])
def test_ts_malformed(tmp_path, old, new, message):
    p = write(tmp_path, "bad.ts", MULTIVARIATE_TS.replace(old, new))
    with pytest.raises(RnnkitError, match=message):
        read_ucr_ts(p)


def test_ts_header_text_before_data_and_univariate_mismatch(tmp_path):
    p = write(tmp_path, "junk.ts", "@problemName X\nhello\n@data\n1,2:a\n")
    with pytest.raises(RnnkitError, match="line 2: expected a @tag header line"):
        read_ucr_ts(p)
    q = write(tmp_path, "uv.ts", UNIVARIATE_TS.replace("3.0,2.0:down", "3.0,2.0:1,1:down"))
    with pytest.raises(RnnkitError, match="line 10: 2 dimensions in a @univariate true file"):
        read_ucr_ts(q)


def test_ts_regression_targets_and_no_labels(tmp_path):
    reg = "@problemName R\n@univariate true\n@targetLabel true\n@data\n1,2,3:0.5\n4,5:1.25\n"
    xs, ys = read_ucr_ts(write(tmp_path, "r.ts", reg))
    assert ys == [0.5, 1.25] and xs[1].shape == (2, 1)
    unl = "@problemName U\n@classLabel false\n@data\n1,2,3\n4,5\n"
    xs, labels = read_ucr_ts(write(tmp_path, "n.ts", unl))
    assert labels is None and len(xs) == 2


# -- labelled CSV and the dispatcher ---------------------------------------------------

def test_labeled_csv_by_name_and_index(tmp_path):
    p = write(tmp_path, "c.csv", "t1,t2,t3,label\n1,2,3,yes\n4,5,,no\n")
    xs, labels = read_labeled_csv(p, label_column="label")
    assert labels == ["yes", "no"]
    assert xs[0].shape == (3, 1) and xs[1].shape == (2, 1)
    np.testing.assert_array_equal(xs[1][:, 0], [4, 5])
    xs2, labels2 = read_labeled_csv(p, label_column=-1)
    assert labels2 == labels
    q = write(tmp_path, "nohead.csv", "0,1.5,2.5\n1,3.5,4.5\n")
    xs3, labels3 = read_labeled_csv(q, header=False)
    assert labels3 == ["0", "1"]
    np.testing.assert_array_equal(xs3[0][:, 0], [1.5, 2.5])


def test_labeled_csv_errors(tmp_path):
    p = write(tmp_path, "c.csv", "label,t1,t2\nyes,1,2\nno,1,oops\n")
    with pytest.raises(RnnkitError, match=r"no column 'class'; available columns: 'label', 't1', 't2'"):
        read_labeled_csv(p, label_column="class")
    with pytest.raises(RnnkitError, match=r"c.csv, line 3: non-numeric value 'oops'"):
        read_labeled_csv(p, label_column="label")
    q = write(tmp_path, "e.csv", "label,t1\n,1\n")
    with pytest.raises(RnnkitError, match="line 2: empty label"):
        read_labeled_csv(q)
    with pytest.raises(ValueError, match="needs header=True"):
        read_labeled_csv(q, label_column="label", header=False)


def test_read_labeled_sequences_dispatches_by_suffix(tmp_path):
    xs, labels = read_labeled_sequences(write(tmp_path, "d.ts", UNIVARIATE_TS))
    assert labels == ["up", "down"]
    xs, labels = read_labeled_sequences(write(tmp_path, "d.tsv", "1\t1\t2\n"))
    assert labels == ["1"] and xs[0].shape == (2, 1)
    xs, labels = read_labeled_sequences(write(tmp_path, "d.csv", "label,a\nx,1\n"))
    assert labels == ["x"]
    with pytest.raises(RnnkitError, match=r"unsupported file type '\.xlsx'; expected one of \.tsv, \.ts, \.csv"):
        read_labeled_sequences(tmp_path / "d.xlsx")


def test_gzip_files_read_by_the_suffix_before_gz(tmp_path):
    import gzip

    def gz(name, text):
        p = tmp_path / name
        p.write_bytes(gzip.compress(text.encode("utf-8")))
        return p

    xs, labels = read_labeled_sequences(gz("d.ts.gz", UNIVARIATE_TS))
    assert labels == ["up", "down"]
    xs, labels = read_labeled_sequences(gz("d.tsv.gz", "1\t1\t2\n"))
    assert labels == ["1"] and xs[0].shape == (2, 1)
    X, y = read_labeled_sequences(gz("acc.csv.gz", "id,label,t,ax\nw1,walk,0,1\nw1,walk,1,3\n"))
    assert y == ["walk"] and X[0].shape == (2, 1)          # the long layout, told by the header
    X, y = read_labeled_sequences(gz("d.arff.gz", "@relation d\n@attribute a numeric\n@attribute c {x}\n@data\n1,x\n"))
    assert y == ["x"] and X[0].shape == (1, 1)


def test_multichannel_long_csv(tmp_path):
    from rnnkit.data.ucr import read_multichannel_csv

    p = tmp_path / "acc.csv"
    p.write_text("id,label,t,ax,ay\nw1,walk,0,1,2\nr1,run,0,5,6\nw1,walk,1,3,4\nr1,run,1,7,8\nr1,run,2,9,10\n")
    X, y = read_labeled_sequences(p)                    # the id column selects the long layout
    assert y == ["walk", "run"]
    np.testing.assert_array_equal(X[0], [[1, 2], [3, 4]])
    assert X[1].shape == (3, 2)
    p.write_text("id,label,ax\nw1,walk,1\nw1,run,2\n")
    with pytest.raises(RnnkitError, match="line 3: case 'w1' changes label"):
        read_multichannel_csv(p)
    p.write_text("id,label,ax\nw1,walk,1\nw1,walk,\nw1,walk,3\n")
    with pytest.raises(RnnkitError, match="line 2: missing value at position 1"):
        read_multichannel_csv(p)
    X, _ = read_multichannel_csv(p, missing="interpolate")
    np.testing.assert_array_equal(X[0][:, 0], [1, 2, 3])


def test_labeled_csv_finds_a_label_column_at_the_end(tmp_path):
    # a class appended to every row (no header), a header naming it, and labels first as before
    last = write(tmp_path, "last.csv", "0.51,0.22,1.0\n0.13,0.94,0.0\n0.35,0.46,1.0\n0.27,0.18,0.0\n")
    xs, labels = read_labeled_csv(last)
    assert labels == ["1", "0", "1", "0"] and xs[0][:, 0].tolist() == [0.51, 0.22]
    named = write(tmp_path, "named.csv", "t0,t1,Class\n0.5,0.2,up\n0.1,0.9,down\n")
    assert read_labeled_csv(named)[1] == ["up", "down"]
    first = write(tmp_path, "first.csv", "1,0.5,0.7\n2,0.25,3.0\n1,0.5,2.0\n")
    assert read_labeled_csv(first)[1] == ["1", "2", "1"]


def test_id_files_in_either_layout_and_channels_named_x_y_z(tmp_path):
    # one row per id is the layout of one series per row, not one step of many channels
    wide = write(tmp_path, "wide.csv", "id,class,t1,t2,t3\na,up,1,2,3\nb,down,3,2,1\n")
    xs, labels = read_labeled_sequences(wide)
    assert labels == ["up", "down"] and xs[0][:, 0].tolist() == [1.0, 2.0, 3.0]
    # channels x, y, z before the label column: 'label' names it, not 'y'
    long = write(tmp_path, "acc.csv", "id,t,x,y,z,label\nw,0,1,2,3,walk\nw,1,4,5,6,walk\nr,0,7,8,9,run\n"
                                      "r,1,1,1,1,run\n")
    xs, labels = read_labeled_sequences(long)
    assert labels == ["walk", "run"] and xs[0].tolist() == [[1, 2, 3], [4, 5, 6]]


def test_a_subject_column_is_not_a_value_of_the_series(tmp_path):
    path = tmp_path / "features.csv"             # the layout of UCI HAR's feature CSV (Kaggle)
    path.write_text("f1,f2,f3,subject,Activity\n0.1,0.2,0.3,1,WALKING\n0.4,0.5,0.6,2,STANDING\n"
                    "0.7,0.8,0.9,1,WALKING\n")
    X, y = read_labeled_sequences(path)
    assert y == ["WALKING", "STANDING", "WALKING"]
    np.testing.assert_array_equal(X[1].ravel(), [0.4, 0.5, 0.6])
