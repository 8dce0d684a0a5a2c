"""The audio front end: WAV reading, filterbank, DCT, deltas, features, folders."""

import os
import wave

import numpy as np
import pytest

from rnnkit.data import audio
from rnnkit.errors import DataNote, RnnkitError


def write_wav(path, x, rate=8000, width=2, channels=1):
    """x: float (n,) or (n, channels) in [-1, 1)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if width == 1:
        data = np.clip(np.round(x * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    else:
        data = np.clip(np.round(x * 2 ** (8 * width - 1)), -2 ** (8 * width - 1),
                       2 ** (8 * width - 1) - 1).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def test_read_wav_16bit_stereo_to_mono(tmp_path):
    left = np.array([0.5, -0.25, 0.0, 0.125])
    right = np.array([0.0, 0.25, -0.5, 0.125])
    write_wav(tmp_path / "s.wav", np.stack([left, right], 1), rate=11025, channels=2)
    x, rate = audio.read_wav(tmp_path / "s.wav")
    assert rate == 11025
    np.testing.assert_allclose(x, (left + right) / 2, atol=1 / 32768)


def test_read_wav_8bit(tmp_path):
    v = np.array([0.0, 0.5, -0.5, -1.0])
    write_wav(tmp_path / "b.wav", v, width=1)
    x, rate = audio.read_wav(tmp_path / "b.wav")
    np.testing.assert_allclose(x, v, atol=1 / 128)


def write_tagged(path, tag: int, samples: bytes, width: int, channels=1, rate=8000):
    """A plain RIFF/WAVE file with format tag ``tag`` (3: IEEE float, 7: µ-law), which the
    wave module refuses."""
    fmt = tag.to_bytes(2, "little") + channels.to_bytes(2, "little") + rate.to_bytes(4, "little") \
        + (rate * channels * width).to_bytes(4, "little") + (channels * width).to_bytes(2, "little") \
        + (8 * width).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + len(samples).to_bytes(4, "little") \
        + samples
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)


def test_read_wav_float_samples(tmp_path):
    v = np.array([0.25, -0.5, 1.5, np.nan, -1.0, 0.75])        # louder than 1: clipped; NaN: silence
    write_tagged(tmp_path / "f32.wav", 3, v.astype("<f4").tobytes(), width=4, channels=2, rate=16000)
    x, rate = audio.read_wav(tmp_path / "f32.wav")
    assert rate == 16000
    np.testing.assert_allclose(x, [(0.25 - 0.5) / 2, (1.0 + 0.0) / 2, (-1.0 + 0.75) / 2], atol=1e-7)
    write_tagged(tmp_path / "f64.wav", 3, v[:2].astype("<f8").tobytes(), width=8)
    np.testing.assert_array_equal(audio.read_wav(tmp_path / "f64.wav")[0], [0.25, -0.5])


def test_read_wav_errors_name_the_file(tmp_path):
    bad = tmp_path / "mulaw.wav"
    write_tagged(bad, 7, bytes(8), width=1)          # µ-law: compressed, not PCM
    with pytest.raises(RnnkitError, match=r"mulaw\.wav: not a PCM WAV"):
        audio.read_wav(bad)
    write_tagged(tmp_path / "f16.wav", 3, bytes(8), width=2)
    with pytest.raises(RnnkitError, match=r"f16\.wav: 16-bit float samples are not supported"):
        audio.read_wav(tmp_path / "f16.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"hello, not audio")
    with pytest.raises(RnnkitError, match="junk.wav"):
        audio.read_wav(junk)
    with pytest.raises(RnnkitError, match="not found"):
        audio.read_wav(tmp_path / "missing.wav")


def write_extensible(path, samples: bytes, channels, width, rate, subformat=1):
    """A WAVE_FORMAT_EXTENSIBLE file (tag 0xFFFE) whose sub-format GUID starts with ``subformat``."""
    guid = subformat.to_bytes(2, "little") + bytes.fromhex("000000001000800000aa00389b71")
    fmt = (0xFFFE).to_bytes(2, "little") + channels.to_bytes(2, "little") + rate.to_bytes(4, "little") \
        + (rate * channels * width).to_bytes(4, "little") + (channels * width).to_bytes(2, "little") \
        + (8 * width).to_bytes(2, "little") + (22).to_bytes(2, "little") + (8 * width).to_bytes(2, "little") \
        + (3).to_bytes(4, "little") + guid
    odd = b"LIST" + (3).to_bytes(4, "little") + b"abc\0"          # an odd-sized chunk, padded
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + odd \
        + b"data" + len(samples).to_bytes(4, "little") + samples
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)


def test_read_wav_extensible_24bit_stereo(tmp_path):
    left = np.array([0.5, -0.25, 0.0, 0.125, -1.0])
    right = np.array([0.0, 0.25, -0.5, 0.125, 0.75])
    ints = np.round(np.stack([left, right], 1) * 2 ** 23).astype("<i4").clip(-2 ** 23, 2 ** 23 - 1)
    triples = ints.reshape(-1, 1).view(np.uint8)[:, :3].tobytes()     # little-endian: the low 3 bytes
    write_extensible(tmp_path / "ext.wav", triples, channels=2, width=3, rate=44100)
    x, rate = audio.read_wav(tmp_path / "ext.wav")
    assert rate == 44100
    np.testing.assert_allclose(x, (left + right) / 2, atol=2 ** -22)
    write_extensible(tmp_path / "extfloat.wav", np.array([0.5, -0.25], "<f4").tobytes(), channels=1, width=4,
                     rate=8000, subformat=3)
    np.testing.assert_array_equal(audio.read_wav(tmp_path / "extfloat.wav")[0], [0.5, -0.25])
    write_extensible(tmp_path / "extmulaw.wav", bytes(4), channels=1, width=1, rate=8000, subformat=7)
    with pytest.raises(RnnkitError, match=r"extmulaw\.wav: not a PCM WAV"):
        audio.read_wav(tmp_path / "extmulaw.wav")


def test_frames_cover_the_signal():
    f = audio.frame_signal(np.arange(10.0), 4, 3)
    assert f.shape == (3, 4)
    np.testing.assert_array_equal(f[1], [3, 4, 5, 6])
    np.testing.assert_array_equal(f[2], [6, 7, 8, 9])
    assert audio.frame_signal(np.ones(2), 4, 2).shape == (1, 4)


def test_sine_peak_lands_in_its_mel_band():
    rate, n_fft, M = 8000, 256, 20
    fb = audio.mel_filterbank(M, n_fft, rate)
    centres = audio.mel_to_hz(np.linspace(0, audio.hz_to_mel(rate / 2), M + 2))[1:-1]
    for j in (3, 9, 15):
        f0 = centres[j]
        t = np.arange(n_fft) / rate
        spec = audio.power_spectrum(np.sin(2 * np.pi * f0 * t)[None], n_fft)[0]
        assert abs(np.argmax(spec) * rate / n_fft - f0) <= rate / n_fft
        energies = fb @ spec
        assert np.argmax(energies) == j


def test_filterbank_triangles_peak_at_one_and_cover():
    fb = audio.mel_filterbank(10, 512, 16000)
    assert fb.shape == (10, 257)
    assert np.all(fb >= 0) and np.all(fb.max(axis=1) > 0.8) and np.all(fb <= 1.0)
    # adjacent triangles sum to ~1 between the first and last centre
    centres = audio.mel_to_hz(np.linspace(0, audio.hz_to_mel(8000), 12))[1:-1]
    freqs = np.arange(257) * 16000 / 512
    inner = (freqs >= centres[0]) & (freqs <= centres[-1])
    np.testing.assert_allclose(fb.sum(axis=0)[inner], 1.0, atol=1e-9)


def test_dct_is_orthonormal():
    D = audio.dct_matrix(12, 12)
    np.testing.assert_allclose(D @ D.T, np.eye(12), atol=1e-12)
    np.testing.assert_allclose(audio.dct_matrix(5, 12), D[:5])
    # constant input: all energy in coefficient 0
    c = D @ np.full(12, 3.0)
    np.testing.assert_allclose(c[1:], 0, atol=1e-12)
    assert c[0] == pytest.approx(3.0 * np.sqrt(12))


def test_deltas_of_a_ramp_are_its_slope():
    t = np.arange(20.0)[:, None]
    feat = np.concatenate([2.5 * t, -t + 4], axis=1)
    d = audio.deltas(feat, width=2)
    np.testing.assert_allclose(d[2:-2], [[2.5, -1.0]] * 16)
    np.testing.assert_allclose(audio.deltas(d)[4:-4], 0, atol=1e-12)


def test_features_shapes_and_normalisation():
    rate = 8000
    x = np.sin(2 * np.pi * 440 * np.arange(rate) / rate) + 0.01 * np.random.default_rng(0).normal(size=rate)
    m = audio.audio_features(x, rate, "mfcc")
    assert m.shape == (1 + int(np.ceil((rate - 200) / 80)), 39)
    np.testing.assert_allclose(m.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(m.std(axis=0), 1, atol=1e-3)
    lm = audio.audio_features(x, rate, "logmel", n_mels=32, per_utterance_norm=False)
    assert lm.shape == (m.shape[0], 32)
    # 440 Hz sits in the band whose centre is closest to it
    band = int(np.argmax(lm.mean(axis=0)))
    centres = audio.mel_to_hz(np.linspace(audio.hz_to_mel(20), audio.hz_to_mel(4000), 34))[1:-1]
    assert abs(centres[band] - 440) < 60
    with pytest.raises(ValueError, match="features"):
        audio.audio_features(x, rate, "spectrogram")


def test_read_audio_folder(tmp_path):
    rate = 8000
    for label, f in (("low", 300), ("high", 2000)):
        os.makedirs(tmp_path / label)
        for k in range(2):
            write_wav(tmp_path / label / f"{k}.wav", 0.5 * np.sin(2 * np.pi * f * np.arange(4000) / rate))
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(DataNote, match=r"4 clips in 2 label folders \(high, low\)"):
        X, labels, paths = audio.read_audio_folder(tmp_path, "logmel")
    assert labels == ["high", "high", "low", "low"]
    assert all(a.shape[1] == 40 for a in X)
    with pytest.raises(RnnkitError, match="no .wav files"):
        audio.read_audio_folder(tmp_path / "low")


def test_audio_folder_passes_over_noise_hidden_and_macos_folders(tmp_path):
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(800) / 8000)
    for label in ("yes", "no", "_background_noise_", "__MACOSX", ".cache"):
        os.makedirs(tmp_path / label)
        write_wav(tmp_path / label / "a_nohash_0.wav", tone)
    (tmp_path / "yes" / "._a_nohash_0.wav").write_bytes(b"\0\5\x16\7 macOS metadata")
    with pytest.warns(DataNote) as said:
        paths, labels = audio.list_audio_folder(tmp_path)
    notes = [str(w.message) for w in said]
    assert any("_background_noise_ (a name starting with '_') read as no label" in n for n in notes)
    assert any(n.endswith("2 clips in 2 label folders (no, yes)") for n in notes)
    assert labels == ["no", "yes"]
    assert [os.path.basename(p) for p in paths] == ["a_nohash_0.wav"] * 2


def test_audio_folder_without_sub_directories_takes_labels_from_file_names(tmp_path):
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(800) / 8000)
    for digit in range(3):
        for speaker in ("jackson", "theo"):
            write_wav(tmp_path / f"{digit}_{speaker}_0.wav", tone)
    with pytest.warns(DataNote, match=r"each file's label is its name up to the first '_' \(3 labels, "
                                      r"e.g. 0_jackson_0.wav -> '0'\)"):
        paths, labels = audio.list_audio_folder(tmp_path)
    assert labels == ["0", "0", "1", "1", "2", "2"]
    loose = tmp_path / "loose"
    os.makedirs(loose)
    for name in ("take_1.wav", "take_2.wav", "other.wav"):
        write_wav(loose / name, tone)
    with pytest.raises(RnnkitError, match="no .wav files found in label sub-directories"):
        audio.list_audio_folder(loose)                      # one repeated prefix is not labels
    paths, labels = audio.list_audio_folder(loose, labelled=False)   # clips to predict
    assert labels is None and [os.path.basename(p) for p in paths] == ["other.wav", "take_1.wav", "take_2.wav"]


def test_spec_augment_masks_runs_inside_each_sequence_only():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3, 20)) + 5.0          # no zeros before masking
    lengths = np.array([50, 30, 10])
    x[30:, 1] = x[10:, 2] = 0.0                          # padding
    before = x.copy()
    out = audio.spec_augment(x, lengths, np.random.default_rng(1), time_width=0.2, feature_width=0.2)
    np.testing.assert_array_equal(x, before)             # the input is not modified
    assert out.shape == x.shape
    masked = out == 0.0
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(out[n:, b], before[n:, b])         # padding as it was
        m = masked[:n, b]
        full_t = m.all(axis=1)                            # frames masked in every channel
        full_f = m.all(axis=0)                            # channels masked in every frame
        assert full_f.sum() <= 2 * 4 and full_t.sum() <= 2 * max(1, int(0.2 * n))
        assert (m == (full_t[:, None] | full_f[None, :])).all()    # every zero is in a masked run
        np.testing.assert_array_equal(out[:n, b][~m], before[:n, b][~m])
    assert masked.any()
    again = audio.spec_augment(x, lengths, np.random.default_rng(1), time_width=0.2, feature_width=0.2)
    np.testing.assert_array_equal(out, again)           # reproducible from the generator


def test_a_csv_listing_clips_and_labels(tmp_path, capsys):
    """ESC-50's layout: meta/list.csv names the clips in audio/; UrbanSound8K's: clips in
    audio/fold1/ found by their name."""
    import json

    from rnnkit.cli import main
    from rnnkit.tasks.classify_inputs import detect_input

    (tmp_path / "audio" / "fold1").mkdir(parents=True)
    (tmp_path / "meta").mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 8000
    rows = ["filename,fold,target,category"]
    for i in range(24):
        c = i % 2
        x = 0.3 * np.sin(2 * np.pi * (300 + 600 * c) * t) + rng.normal(0, 0.01, len(t))
        where = tmp_path / "audio" / ("fold1" if i % 3 == 0 else "") / f"1-{100 + i}-A-{c}.wav"
        write_wav(where, x)
        rows.append(f"1-{100 + i}-A-{c}.wav,1,{c},{'low' if c == 0 else 'high'}")
    (tmp_path / "meta" / "train.csv").write_text("\n".join(rows[:19]) + "\n")
    (tmp_path / "meta" / "test.csv").write_text("\n".join(rows[:1] + rows[19:]) + "\n")
    assert detect_input(tmp_path / "meta" / "train.csv") == "audio"
    with pytest.warns(DataNote, match=r"18 clips listed in column 'filename', labels from column 'category'"):
        paths, labels = audio.read_audio_list(tmp_path / "meta" / "train.csv")
    assert labels[:2] == ["low", "high"] and os.path.isfile(paths[0]) and os.sep + "fold1" + os.sep in paths[0]
    out = tmp_path / "run"
    assert main(["classify", str(tmp_path / "meta" / "train.csv"), "--test", str(tmp_path / "meta" / "test.csv"),
                 "--out", str(out), "--epochs", "1", "--ensemble", "1", "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["classes"] == ["high", "low"]
    assert main(["predict", str(out), str(tmp_path / "meta" / "test.csv")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("index,file,label,predicted") and len(table) == 7
    (tmp_path / "meta" / "bad.csv").write_text("filename,category\n1-100-A-0.wav,low\nnowhere.wav,high\n")
    with pytest.raises(RnnkitError, match=r"bad.csv: 1 of 2 clips not found .* \(the first: 'nowhere.wav'\)"):
        audio.read_audio_list(tmp_path / "meta" / "bad.csv")
    (tmp_path / "meta" / "nolabel.csv").write_text("filename,fold\n1-100-A-0.wav,1\n")
    with pytest.raises(RnnkitError, match=r"no label column beside 'filename'"):
        audio.read_audio_list(tmp_path / "meta" / "nolabel.csv")
