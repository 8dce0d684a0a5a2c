"""The user-facing jobs, scikit-learn-like: fit, predict / sample, evaluate, save, load.

Each task lives in its own module (``rnnkit.tasks.lm`` for the character language
model) and is imported from there, so importing this package costs nothing.
"""
