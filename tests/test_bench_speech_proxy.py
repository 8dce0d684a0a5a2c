"""benchmarks/speech_proxy.py: resampling and the synthesised clips."""

import shutil
import wave

import numpy as np
import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def proxy():
    return load_benchmark("speech_proxy")


def test_resample_keeps_a_tone_and_removes_what_the_new_rate_cannot_hold(proxy):
    rate, n = 22050, 22050
    t = np.arange(n) / rate
    x = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 6000 * t)     # 6 kHz is above 8 kHz's Nyquist
    y = proxy.resample(x, rate, 8000)
    assert len(y) == 8000
    spec = np.abs(np.fft.rfft(y)) / (len(y) / 2)
    assert abs(spec[440] - 1.0) < 1e-6 and spec.max() < 1.0 + 1e-6
    assert np.sort(spec)[-2] < 1e-6          # the 6 kHz tone did not fold back to 2 kHz


def test_test_settings_are_not_training_settings(proxy):
    for key in ("voices", "rates", "pitches"):
        assert not set(proxy.TRAIN[key]) & set(proxy.TEST[key])


@pytest.mark.skipif(not (shutil.which("espeak-ng") or shutil.which("espeak")), reason="no espeak-ng or espeak")
def test_say_writes_8khz_pcm(proxy, tmp_path):
    path = str(tmp_path / "seven.wav")
    proxy.say(proxy.synthesiser(), "seven", "en-us", 165, 55, 8000, path)
    with wave.open(path, "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert 0.2 * 8000 < w.getnframes() < 2 * 8000
