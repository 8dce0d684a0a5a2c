"""The UCR/UEA archive's other layouts: Weka .arff (uni- and multivariate), whitespace .txt,
and comma-separated files without a suffix."""

import numpy as np
import pytest

from rnnkit.data.arff import read_arff
from rnnkit.data.ucr import read_labeled_sequences
from rnnkit.errors import RnnkitError

UNI = """% a comment
@relation Demo
@attribute att0 numeric
@attribute att1 numeric
@attribute att2 numeric
@attribute target {1,2}

@data
0.5,1.5,2.5,1
-1,?,3,2
4,5,?,1.0
"""

MULTI = """@relation Motions
@attribute relationalAtt relational
  @attribute t0 numeric
  @attribute t1 numeric
@end relationalAtt
@attribute activity {walk,run}
@data
'1,2\\n3,4\\n5,6',walk
"0.5,?\\n1,?\\n3,?",'run'
"""


def test_univariate_arff(tmp_path):
    p = tmp_path / "d.arff"
    p.write_text(UNI)
    X, y = read_arff(p, missing="interpolate")
    assert y == ["1", "2", "1"]
    np.testing.assert_array_equal(X[0][:, 0], [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(X[1][:, 0], [-1.0, 1.0, 3.0])          # interpolated
    np.testing.assert_array_equal(X[2][:, 0], [4.0, 5.0])                 # the trailing gap trimmed
    with pytest.raises(RnnkitError, match=r"d\.arff, line 10: missing value inside the series"):
        read_arff(p, missing="trim")


def test_multivariate_arff(tmp_path):
    p = tmp_path / "m.arff"
    p.write_text(MULTI)
    X, y = read_labeled_sequences(p, missing="trim")
    assert y == ["walk", "run"] and X[0].shape == (2, 3)
    np.testing.assert_array_equal(X[0], [[1, 3, 5], [2, 4, 6]])
    assert X[1].shape == (1, 3)                                          # the trailing gap of every channel
    bad = tmp_path / "bad.arff"
    bad.write_text(MULTI.replace("'1,2\\n3,4\\n5,6'", "'1,2\\n3\\n5,6'"))
    with pytest.raises(RnnkitError, match=r"line 8: the channels have different lengths \(2, 1, 2\)"):
        read_arff(bad)
    nodata = tmp_path / "nodata.arff"
    nodata.write_text("@relation x\n@attribute a numeric\n")
    with pytest.raises(RnnkitError, match="no @data line"):
        read_arff(nodata)


def test_whitespace_txt_and_files_without_a_suffix(tmp_path):
    txt = tmp_path / "Demo_TRAIN.txt"
    txt.write_text("  1.0000000e+00  5.0e-01  1.5e+00\n  2.0000000e+00 -1.0e+00  3.0e+00\n")
    X, y = read_labeled_sequences(txt)
    assert y == ["1", "2"] and X[1][:, 0].tolist() == [-1.0, 3.0]
    bare = tmp_path / "Demo_TEST"
    bare.write_text("1,0.5,1.5\n2,-1,3\n")
    X, y = read_labeled_sequences(bare)
    assert y == ["1", "2"] and X[0][:, 0].tolist() == [0.5, 1.5]
    with pytest.raises(RnnkitError, match=r"unsupported file type '\.xlsx'"):
        read_labeled_sequences(tmp_path / "data.xlsx")
