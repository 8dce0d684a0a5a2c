"""A few-speaker spoken-digit set from a speech synthesiser, for the speech defaults.

    python benchmarks/speech_proxy.py OUT [--rate 8000]
    python benchmarks/apps.py speech OUT/train OUT/test --time-limit 120

Writes ``OUT/train/<digit>/*.wav`` and ``OUT/test/<digit>/*.wav``: the ten English digit
words ("zero" … "nine") spoken by ``espeak-ng`` (or ``espeak``) voices at several
speaking rates and pitches, resampled to ``--rate`` Hz (8 kHz by default, telephone
speech), 16-bit mono PCM. The test voices, rates and pitches are none of the training
ones, so a test clip is an unseen "speaker" saying a known word:

    train  6 voices x rates (130, 165, 200 words/min) x pitches (30, 55, 80)   54 clips a word
    test   3 other voices x rates (145, 185) x pitches (42, 68)               12 clips a word

A proxy only: synthetic voices vary less than people do (no room, microphone or
background noise), so a score here is an upper end of what recorded few-speaker digits
would give; it checks that the audio defaults learn a small vocabulary across voices.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAIN = {"voices": ("en-us", "en-us+f2", "en-us+m3", "en-gb+f4", "en-gb-x-rp+m5", "en-us+klatt"),
         "rates": (130, 165, 200), "pitches": (30, 55, 80)}
TEST = {"voices": ("en-gb+m2", "en-us+f3", "en-gb-scotland+m7"), "rates": (145, 185), "pitches": (42, 68)}


def synthesiser() -> str:
    """The path of ``espeak-ng`` or ``espeak``; SystemExit naming both when neither is installed."""
    for name in ("espeak-ng", "espeak"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("speech_proxy.py needs espeak-ng or espeak on the PATH (e.g. apt-get install espeak-ng)")


def resample(x: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of a whole clip by its spectrum: the DFT is cut (or padded)
    to the new length, so nothing above the new Nyquist frequency folds back.

        X = rfft(x),  y = irfft(X[:m//2 + 1], m) · m / n,   m = round(n · new_rate / rate)
    """
    n = len(x)
    m = max(1, int(round(n * new_rate / rate)))
    X = np.fft.rfft(x)
    keep = m // 2 + 1
    X = X[:keep] if len(X) >= keep else np.concatenate([X, np.zeros(keep - len(X), dtype=X.dtype)])
    return np.fft.irfft(X, m) * (m / n)


def say(exe: str, word: str, voice: str, rate: int, pitch: int, new_rate: int, path: str) -> None:
    """Synthesise ``word`` and write it to ``path`` as 16-bit mono PCM at ``new_rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "w.wav")
        subprocess.run([exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", raw, word], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with wave.open(raw, "rb") as w:
            sr, width = w.getframerate(), w.getsampwidth()
            data = w.readframes(w.getnframes())
    if width != 2:
        raise SystemExit(f"{exe} wrote {8 * width}-bit audio; expected 16-bit")
    x = np.frombuffer(data, dtype="<i2").astype(np.float64)
    y = np.clip(np.round(resample(x, sr, new_rate)), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(new_rate)
        w.writeframes(y.tobytes())


def write_set(out: str, new_rate: int = 8000) -> dict:
    """Write the train and test folders under ``out``; returns the clip count of each."""
    exe = synthesiser()
    counts = {}
    for part, spec in (("train", TRAIN), ("test", TEST)):
        n = 0
        for word in DIGITS:
            d = os.path.join(out, part, word)
            os.makedirs(d, exist_ok=True)
            for voice in spec["voices"]:
                for rate in spec["rates"]:
                    for pitch in spec["pitches"]:
                        name = f"{voice.replace('+', '_')}_s{rate}_p{pitch}.wav"
                        say(exe, word, voice, rate, pitch, new_rate, os.path.join(d, name))
                        n += 1
        counts[part] = n
    return counts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--rate", type=int, default=8000, help="the sample rate of the clips written (Hz)")
    args = p.parse_args(argv)
    counts = write_set(args.out, args.rate)
    print(f"{args.out}: {counts['train']} training clips, {counts['test']} test clips, {args.rate} Hz")


if __name__ == "__main__":
    main()
