"""Variable-length sequences: padding, labels, minibatches, class weights, string encoding."""

import json

import numpy as np
import pytest

from rnnkit.data import (
    CharVocab,
    LabelEncoder,
    class_weights,
    encode_strings,
    minibatches,
    one_hot,
    pad_sequences,
)
from rnnkit.errors import CheckpointError, RnnkitError


def ragged(rng, lengths, F=2):
    return [rng.normal(size=(T, F)) for T in lengths]


# -- padding ---------------------------------------------------------------------------

def test_pad_float_sequences_time_major_and_batch_first():
    rng = np.random.default_rng(0)
    seqs = ragged(rng, [3, 5, 1])
    x, lengths = pad_sequences(seqs)
    assert x.shape == (5, 3, 2) and x.dtype == np.float64
    np.testing.assert_array_equal(lengths, [3, 5, 1])
    for b, s in enumerate(seqs):
        np.testing.assert_array_equal(x[: len(s), b], s)
        assert (x[len(s):, b] == 0).all()
    xb, lb = pad_sequences(seqs, batch_first=True, pad_value=-1.0)
    assert xb.shape == (3, 5, 2)
    np.testing.assert_array_equal(xb[1], seqs[1])
    assert (xb[2, 1:] == -1).all()
    np.testing.assert_array_equal(lb, lengths)


def test_pad_id_sequences_keeps_int_dtype():
    x, lengths = pad_sequences([np.array([1, 2, 3]), np.array([4])], pad_value=9)
    assert x.dtype.kind == "i" and x.shape == (3, 2)
    np.testing.assert_array_equal(x[:, 1], [4, 9, 9])
    x32, _ = pad_sequences([[1, 2], [3]], dtype=np.float32)
    assert x32.dtype == np.float32


def test_pad_errors():
    with pytest.raises(ValueError, match="empty"):
        pad_sequences([])
    with pytest.raises(ValueError, match=r"seqs\[1\] is empty"):
        pad_sequences([np.ones((2, 1)), np.ones((0, 1))])
    with pytest.raises(ValueError, match=r"seqs\[1\] has step shape \(3,\)"):
        pad_sequences([np.ones((2, 2)), np.ones((2, 3))])
    with pytest.raises(TypeError, match="list of arrays"):
        pad_sequences("abc")
    with pytest.raises(TypeError, match="numeric"):
        pad_sequences([np.array(["a", "b"])])


# -- labels ----------------------------------------------------------------------------

def test_label_encoder_round_trip_and_order():
    labels = ["cat", "dog", "cat", "bird"]
    enc = LabelEncoder().fit(labels)
    assert enc.classes == ["bird", "cat", "dog"] and enc.num_classes == len(enc) == 3
    ids = enc.transform(labels)
    np.testing.assert_array_equal(ids, [1, 2, 1, 0])
    assert ids.dtype == np.int64
    assert enc.inverse_transform(ids) == labels
    nums = LabelEncoder().fit(np.array([10, 2, 2, 1]))
    assert nums.classes == [1, 2, 10] and isinstance(nums.classes[0], int)
    given = LabelEncoder(["neg", "pos"])
    np.testing.assert_array_equal(given.fit_transform(["pos", "neg"]), [1, 0])


def test_label_encoder_unknown_labels_named():
    enc = LabelEncoder().fit(["a", "b"])
    with pytest.raises(RnnkitError, match=r"unknown labels 'c', 'z' \(known: 'a', 'b'\)"):
        enc.transform(["a", "z", "c", "z"])
    with pytest.raises(RnnkitError, match="not fitted"):
        LabelEncoder().transform(["a"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc.inverse_transform([2])
    with pytest.raises(TypeError, match="labels must be"):
        LabelEncoder().fit([(1, 2)])
    with pytest.raises(ValueError, match="unique"):
        LabelEncoder(["a", "a"])


def test_label_encoder_dict_round_trip():
    enc = LabelEncoder().fit([3, 1, 2, "x"])
    d = json.loads(json.dumps(enc.to_dict()))
    back = LabelEncoder.from_dict(d)
    assert back.classes == enc.classes == [1, 2, 3, "x"]
    np.testing.assert_array_equal(back.transform([3, "x"]), enc.transform([3, "x"]))
    with pytest.raises(CheckpointError):
        LabelEncoder.from_dict({"classes": "ab"})
    with pytest.raises(CheckpointError):
        LabelEncoder.from_dict({"classes": [[1]]})


# -- minibatches -----------------------------------------------------------------------

def test_minibatches_cover_all_padded_to_batch_max():
    rng = np.random.default_rng(0)
    lengths = [4, 9, 2, 7, 3, 5, 6]
    xs = ragged(rng, lengths, F=3)
    y = np.arange(7) % 2
    batches = list(minibatches(xs, y, batch_size=3, seed=0))
    assert [len(b["lengths"]) for b in batches] == [3, 3, 1]
    seen = np.concatenate([b["index"] for b in batches])
    assert sorted(seen) == list(range(7))
    for b in batches:
        T = b["x"].shape[0]
        assert b["x"].shape[1:] == (len(b["index"]), 3)
        assert T == max(lengths[i] for i in b["index"])  # padded only to the batch max
        np.testing.assert_array_equal(b["lengths"], [lengths[i] for i in b["index"]])
        np.testing.assert_array_equal(b["y"], y[b["index"]])
        for j, i in enumerate(b["index"]):
            np.testing.assert_array_equal(b["x"][: lengths[i], j], xs[i])


def test_minibatches_seeded_shuffling_is_reproducible():
    xs = [np.ones((i + 1, 1)) for i in range(20)]
    order = lambda **kw: np.concatenate([b["index"] for b in minibatches(xs, batch_size=4, **kw)])
    np.testing.assert_array_equal(order(seed=3), order(seed=3))
    assert not np.array_equal(order(seed=3), order(seed=4))
    np.testing.assert_array_equal(order(shuffle=False), np.arange(20))
    rng = np.random.default_rng(5)
    e1, e2 = order(seed=rng), order(seed=rng)  # one generator: a new order per epoch
    assert not np.array_equal(e1, e2)
    rng2 = np.random.default_rng(5)
    np.testing.assert_array_equal(order(seed=rng2), e1)


def test_minibatches_sequence_targets_and_drop_last():
    xs = [np.arange(n) for n in (3, 1, 4, 2, 5)]
    ys = [np.arange(n) + 100 for n in (2, 3, 1, 1, 2)]
    batches = list(minibatches(xs, ys, batch_size=2, shuffle=False, drop_last=True))
    assert len(batches) == 2
    b = batches[0]
    assert b["x"].shape == (3, 2) and b["y"].shape == (3, 2)
    np.testing.assert_array_equal(b["y_lengths"], [2, 3])
    np.testing.assert_array_equal(b["y"][:, 1], [100, 101, 102])
    no_y = next(iter(minibatches(xs, batch_size=5, shuffle=False)))
    assert "y" not in no_y and no_y["x"].shape == (5, 5)


def test_minibatches_errors_at_call_time():
    xs = [np.ones((2, 1))] * 3
    with pytest.raises(ValueError, match="x has 3 samples but y has 2"):
        minibatches(xs, [0, 1])
    with pytest.raises(RnnkitError, match="no full batch"):
        minibatches(xs, batch_size=4, drop_last=True)
    with pytest.raises(TypeError, match="seed"):
        minibatches(xs, seed="1")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        minibatches(xs, batch_size=0)


# -- class weights, strings, one-hot ---------------------------------------------------

def test_balanced_class_weights():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    w = class_weights(labels)
    np.testing.assert_allclose(w, [10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)])
    counts = np.bincount(labels)
    np.testing.assert_allclose((counts * w).sum(), len(labels))  # each class contributes n/K
    np.testing.assert_allclose(counts * w, counts[0] * w[0])
    w4 = class_weights(np.array([0, 0, 2]), num_classes=4)
    np.testing.assert_allclose(w4, [0.75, 0.0, 1.5, 0.0])
    np.testing.assert_array_equal(class_weights(labels, kind="none"), np.ones(3))
    with pytest.raises(TypeError, match="integer class ids"):
        class_weights(["a", "b"])
    with pytest.raises(ValueError, match="out of range for num_classes=2"):
        class_weights(np.array([0, 3]), num_classes=2)
    with pytest.raises(ValueError, match="kind must be one of"):
        class_weights(labels, kind="sqrt")


def test_encode_strings_dna_and_text():
    seqs = encode_strings(["ACGT", "TTA"], "ACGT")
    np.testing.assert_array_equal(seqs[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(seqs[1], [3, 3, 0])
    with pytest.raises(RnnkitError, match=r"strings\[1\] has characters outside the alphabet.*'N', 'x'"):
        encode_strings(["ACGT", "ANxC"], "ACGT")
    skipped = encode_strings(["ANC"], "ACGT", on_unknown="skip")
    np.testing.assert_array_equal(skipped[0], [0, 1])
    vocab = CharVocab.from_text("hello", unk="?")
    out = encode_strings(["help"], vocab)
    assert vocab.decode(out[0]) == "hel?"
    with pytest.raises(TypeError, match="list of strings"):
        encode_strings("ACGT", "ACGT")
    # padding the encoded strings gives a batch the cells accept
    x, lengths = pad_sequences(seqs)
    assert x.shape == (4, 2) and list(lengths) == [4, 3]


def test_one_hot():
    ids = np.array([[0, 2], [1, 1]])
    oh = one_hot(ids, 3)
    assert oh.shape == (2, 2, 3) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh.argmax(-1), ids)
    assert (oh.sum(-1) == 1).all()
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        one_hot(np.array([3]), 3)
    with pytest.raises(TypeError, match="integers"):
        one_hot(np.array([0.5]), 3)


def test_minibatches_accept_an_equal_length_array_and_labels_reject_2d():
    x = np.arange(24, dtype=np.float32).reshape(4, 3, 2)  # (n, T, F)
    b = next(iter(minibatches(x, np.array([0, 1, 0, 1]), batch_size=4, shuffle=False)))
    assert b["x"].shape == (3, 4, 2) and b["x"].dtype == np.float32
    np.testing.assert_array_equal(b["x"][:, 2], x[2])
    np.testing.assert_array_equal(b["lengths"], [3, 3, 3, 3])
    with pytest.raises(ValueError, match="1 dim"):
        LabelEncoder().fit(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="one str"):
        LabelEncoder().fit("abc")


def test_minibatches_bucket_batches_similar_lengths_and_keeps_equal_lengths_as_they_were():
    rng = np.random.default_rng(0)
    xs = [np.zeros((int(n), 2)) for n in rng.integers(5, 200, 960)]

    def used(**kw):          # the share of the batches' padded steps that are sequence steps
        batches = list(minibatches(xs, np.arange(960), batch_size=32, seed=np.random.default_rng(1), **kw))
        seen = np.sort(np.concatenate([b["index"] for b in batches]))
        np.testing.assert_array_equal(seen, np.arange(960))            # every sequence once
        assert all((b["y"] == b["index"]).all() for b in batches)
        return sum(b["lengths"].sum() for b in batches) / sum(b["x"].shape[0] * b["x"].shape[1] for b in batches)

    assert used() < 0.6 and used(bucket=16) > 0.9
    first = [b["index"] for b in minibatches(xs, seed=np.random.default_rng(2), bucket=16)]
    again = [b["index"] for b in minibatches(xs, seed=np.random.default_rng(3), bucket=16)]
    assert not all(len(a) == len(b) and (a == b).all() for a, b in zip(first, again))   # new batches per draw
    equal = [np.zeros((10, 1)) for _ in range(100)]
    plain = [b["index"] for b in minibatches(equal, seed=5)]
    bucketed = [b["index"] for b in minibatches(equal, seed=5, bucket=16)]
    assert all((a == b).all() for a, b in zip(plain, bucketed))
    with pytest.raises(ValueError, match="bucket"):
        list(minibatches(xs, bucket=-1))
