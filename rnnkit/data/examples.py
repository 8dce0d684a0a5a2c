"""Small generated example files for each application (seconds to write and to train on).

:func:`write_example` writes one into a directory; every file has the layout the
matching command reads, so each README command runs offline:

=============  ====================================  =========================================
name           files                                 layout
=============  ====================================  =========================================
intent         train.tsv, test.tsv                   ``label<TAB>text``
dna            train.tsv, test.tsv                   ``label<TAB>ACGT…``
speech         train/<word>/*.wav, test/<word>/…     16-bit PCM mono, 8 kHz
activity       train.csv, test.csv                   ``id,label,t,ax,ay,az`` (long: one row per step)
translation    pairs_train.tsv, pairs_test.tsv       ``source<TAB>target``
stores         stores.csv                            ``store,time,sales,promo,temp`` (long, hourly)
=============  ====================================  =========================================

The data are synthetic and seeded (the same seed writes the same files); they exist to
show the commands work end to end, not to measure anything.
"""

from __future__ import annotations

import os
import wave

import numpy as np

from rnnkit.data._util import as_rng

__all__ = ["EXAMPLES", "write_example", "phrase_pairs"]

_NOUNS = {"car": ("voiture", "f"), "house": ("maison", "f"), "dog": ("chien", "m"), "book": ("livre", "m"),
          "cat": ("chat", "m"), "table": ("table", "f"), "tree": ("arbre", "m"), "door": ("porte", "f"),
          "bike": ("vélo", "m"), "chair": ("chaise", "f"), "boat": ("bateau", "m"), "lamp": ("lampe", "f"),
          "horse": ("cheval", "m"), "bag": ("sac", "m"), "cup": ("tasse", "f"), "shirt": ("chemise", "f")}
_ADJS = {"red": ("rouge", "rouge"), "small": ("petit", "petite"), "green": ("vert", "verte"),
         "black": ("noir", "noire"), "big": ("grand", "grande"), "old": ("vieux", "vieille"),
         "new": ("neuf", "neuve"), "white": ("blanc", "blanche"), "blue": ("bleu", "bleue"),
         "pretty": ("joli", "jolie")}
_VERBS = {"see": "vois", "like": "aime", "have": "ai", "want": "veux", "buy": "achète", "find": "trouve"}


def phrase_pairs(n: int, seed=0) -> tuple[list[str], list[str]]:
    """English -> French toy phrases with gender agreement and the adjective moved after
    the noun ("I see the red car" -> "je vois la voiture rouge")."""
    rng = as_rng(seed, "phrase_pairs")
    src, tgt = [], []
    nouns, adjs, verbs = sorted(_NOUNS), sorted(_ADJS), sorted(_VERBS)
    for _ in range(n):
        noun, adj, verb = (v[rng.integers(len(v))] for v in (nouns, adjs, verbs))
        fr_noun, gender = _NOUNS[noun]
        art = "la" if gender == "f" else "le"
        adj_fr = _ADJS[adj][gender == "f"]
        src.append(f"I {verb} the {adj} {noun}")
        tgt.append(f"je {_VERBS[verb]} {art} {fr_noun} {adj_fr}")
    return src, tgt


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _intent(directory, rng) -> None:
    frames = {"weather": (["will it rain in {}", "what is the weather in {}", "is it cold in {} today"],
                          ["paris", "oslo", "lima", "rome", "cairo", "tokyo"]),
              "music": (["play some {}", "put on {} music", "i want to hear {}"],
                        ["jazz", "blues", "techno", "opera", "rock", "salsa"]),
              "booking": (["book a table for {}", "reserve a restaurant for {} people", "find a table for {}"],
                          ["two", "three", "four", "six", "eight", "ten"])}
    for name, n in (("train", 240), ("test", 60)):
        lines = []
        for _ in range(n):
            label = sorted(frames)[rng.integers(len(frames))]
            pats, fills = frames[label]
            lines.append(f"{label}\t{pats[rng.integers(len(pats))].format(fills[rng.integers(len(fills))])}")
        _write(os.path.join(directory, f"{name}.tsv"), "\n".join(lines) + "\n")


def _dna(directory, rng) -> None:
    motif = "TATAAT"
    for name, n in (("train", 200), ("test", 60)):
        lines = []
        for i in range(n):
            seq = list(rng.choice(list("ACGT"), 40))
            label = "+" if i % 2 else "-"
            if label == "+":
                at = int(rng.integers(5, 30))
                seq[at:at + len(motif)] = motif
            lines.append(f"{label}\t{''.join(seq)}")
        _write(os.path.join(directory, f"{name}.tsv"), "\n".join(lines) + "\n")


def _speech(directory, rng) -> None:
    """Two-formant 'words': each label glides between its own pair of frequencies."""
    rate = 8000
    words = {"ah": (700, 1200), "ee": (300, 2300), "oo": (300, 800)}
    for split, per in (("train", 10), ("test", 4)):
        for word, (f1, f2) in words.items():
            os.makedirs(os.path.join(directory, split, word), exist_ok=True)
            for k in range(per):
                n = int(rate * rng.uniform(0.35, 0.5))
                t = np.arange(n) / rate
                pitch = rng.uniform(90, 160)
                env = np.sin(np.pi * np.arange(n) / n)
                x = env * (0.4 * np.sin(2 * np.pi * f1 * rng.uniform(0.95, 1.05) * t)
                           + 0.3 * np.sin(2 * np.pi * f2 * rng.uniform(0.95, 1.05) * t)) \
                    * (0.6 + 0.4 * np.sin(2 * np.pi * pitch * t)) + 0.01 * rng.normal(size=n)
                pad = np.zeros(int(rate * 0.1))
                x = np.concatenate([pad, x, pad])
                with wave.open(os.path.join(directory, split, word, f"s{k}.wav"), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(rate)
                    w.writeframes(np.clip(np.round(x * 20000), -32768, 32767).astype("<i2").tobytes())


def _activity(directory, rng) -> None:
    """3-axis accelerometer-like series: walking (1.8 Hz), running (2.8 Hz), resting."""
    kinds = {"walk": (1.8, 1.0), "run": (2.8, 2.5), "rest": (0.0, 0.0)}
    for split, per in (("train", 20), ("test", 8)):
        lines = ["id,label,t,ax,ay,az"]
        case = 0
        for _ in range(per):
            for label, (freq, amp) in kinds.items():
                T = int(rng.integers(40, 60))
                t = np.arange(T) / 20.0
                ph = rng.uniform(0, 2 * np.pi)
                ax = amp * np.sin(2 * np.pi * freq * t + ph) + 0.2 * rng.normal(size=T)
                ay = 0.5 * amp * np.sin(4 * np.pi * freq * t + ph) + 0.2 * rng.normal(size=T)
                az = 9.8 + 0.3 * amp * np.cos(2 * np.pi * freq * t) + 0.2 * rng.normal(size=T)
                for i in range(T):
                    lines.append(f"{split}{case},{label},{i},{ax[i]:.3f},{ay[i]:.3f},{az[i]:.3f}")
                case += 1
        _write(os.path.join(directory, f"{split}.csv"), "\n".join(lines) + "\n")


def _translation(directory, rng) -> None:
    for name, n in (("pairs_train", 600), ("pairs_test", 60)):
        src, tgt = phrase_pairs(n, rng)
        _write(os.path.join(directory, f"{name}.tsv"), "".join(f"{s}\t{t}\n" for s, t in zip(src, tgt)))


def _stores(directory, rng) -> None:
    hours = 24 * 16
    t = np.arange(hours)
    start = np.datetime64("2024-01-01T00:00")
    lines = ["store,time,sales,promo,temp"]
    for k, level in enumerate([10, 100, 1000]):
        promo = (rng.random(hours) < 0.15).astype(int)
        temp = np.sin(2 * np.pi * t / 168) + 0.1 * rng.normal(size=hours)
        y = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24) + 0.5 * promo + 0.02 * rng.normal(size=hours))
        for i in t:
            stamp = str(start + np.timedelta64(int(i), "h")).replace("T", " ")
            lines.append(f"s{k},{stamp},{y[i]:.4f},{promo[i]},{temp[i]:.3f}")
    _write(os.path.join(directory, "stores.csv"), "\n".join(lines) + "\n")


EXAMPLES = {"intent": _intent, "dna": _dna, "speech": _speech, "activity": _activity,
            "translation": _translation, "stores": _stores}


def write_example(name: str, directory, seed=0) -> str:
    """Write example ``name`` (one of :data:`EXAMPLES`) into ``directory``; returns it."""
    if name not in EXAMPLES:
        raise ValueError(f"write_example: name must be one of {', '.join(EXAMPLES)}, got {name!r}")
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    EXAMPLES[name](directory, as_rng(seed, "write_example"))
    return directory
