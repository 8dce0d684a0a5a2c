"""benchmarks/apps.py: the stratified folds and the cross-validation command."""


import numpy as np
import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def apps():
    return load_benchmark("apps")


def test_stratified_folds_hold_each_class_in_proportion(apps):
    y = ["a"] * 23 + ["b"] * 11 + ["c"] * 6
    fold = apps.stratified_folds(y, 5, seed=3)
    assert fold.shape == (40,) and set(fold.tolist()) == set(range(5))
    for c, n in (("a", 23), ("b", 11), ("c", 6)):
        counts = np.bincount(fold[[i for i, v in enumerate(y) if v == c]], minlength=5)
        assert counts.sum() == n and counts.max() - counts.min() <= 1
    sizes = np.bincount(fold, minlength=5)
    assert sizes.max() - sizes.min() <= 1          # the classes' remainders spread over the folds
    assert np.array_equal(fold, apps.stratified_folds(y, 5, seed=3))
    assert not np.array_equal(fold, apps.stratified_folds(y, 5, seed=4))
    with pytest.raises(ValueError, match="folds"):
        apps.stratified_folds(y, 1)


def test_cv_scores_every_row_once(apps, tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(24):
        label = "AT" if i % 2 else "GC"
        lines.append(f"{label}\t" + "".join(rng.choice(list(label), size=12)))
    path = tmp_path / "all.tsv"
    path.write_text("\n".join(lines) + "\n")
    apps.main(["cv", str(path), "--folds", "2", "--time-limit", "8", "--set", "hidden_size=8"])
    out = capsys.readouterr().out
    assert "24 rows, 2 stratified folds" in out and "{'hidden_size': 8}" in out
    assert out.count("fold ") == 2 and "(12/12)" in out
    last = out.strip().splitlines()[-1]
    assert "baseline TF-IDF + logistic regression 1.0000" in last      # the alphabets tell the classes apart
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        apps.main(["cv", str(path), "--set", "hidden_size"])


def test_batched_dtw_matches_the_plain_recursion(apps):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 3))
    refs = [rng.standard_normal((m, 3)) for m in (2, 7, 5)]

    def plain(a, b):
        D = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
        C = np.full((len(a) + 1, len(b) + 1), np.inf)
        C[0, 0] = 0.0
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                C[i, j] = D[i - 1, j - 1] + min(C[i - 1, j], C[i, j - 1], C[i - 1, j - 1])
        return C[-1, -1] / (len(a) + len(b))

    assert np.allclose(apps._dtw_many(a, refs), [plain(a, b) for b in refs])
    assert apps._dtw(a, a) == 0.0 and apps._dtw(a, refs[1]) > 0
