"""BLEU, chrF, exact match and the translation-memory baseline."""

import pytest

from rnnkit.tasks.text_metrics import TranslationMemory, bleu, chrf, exact_match, text_scores

pytest.importorskip("sacrebleu")


def test_perfect_and_disjoint_outputs():
    ref = ["le chat est sur la table .", "il pleut beaucoup aujourd'hui ."]
    assert bleu(ref, ref) == pytest.approx(100.0)
    assert chrf(ref, ref) == pytest.approx(100.0)
    assert bleu(["xyz qqq", "www vvv"], ref) == pytest.approx(0.0, abs=1e-6)
    partial = text_scores(["le chat est sur la chaise .", "il pleut beaucoup aujourd'hui ."], ref)
    assert 30 < partial["bleu"] < 100 and 50 < partial["chrf"] < 100
    assert partial["exact_match"] == 0.5


def test_exact_match_and_argument_errors():
    assert exact_match([" a", "b"], ["a", "c"]) == 0.5
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        bleu(["a", "b"], ["a"])
    with pytest.raises(TypeError, match=r"hypotheses\[0\]"):
        chrf([1], ["a"])


def test_translation_memory_returns_the_nearest_sources_target():
    tm = TranslationMemory().fit(["I am cold.", "Where is the station?", "I like cats."],
                                 ["J'ai froid.", "Où est la gare ?", "J'aime les chats."])
    assert tm.predict(["where is the station", "I like dogs.", "I am very cold!"]) == \
        ["Où est la gare ?", "J'aime les chats.", "J'ai froid."]
