"""The translation-memory baseline."""

import pytest

from rnnkit.tasks.text_metrics import TranslationMemory


def test_translation_memory_returns_the_nearest_sources_target():
    tm = TranslationMemory().fit(["I am cold.", "Where is the station?", "I like cats."],
                                 ["J'ai froid.", "Où est la gare ?", "J'aime les chats."])
    assert tm.predict(["where is the station", "I like dogs.", "I am very cold!"]) == \
        ["Où est la gare ?", "J'aime les chats.", "J'ai froid."]
    with pytest.raises(ValueError, match="equally many"):
        TranslationMemory().fit(["a"], [])
