"""The user-facing jobs, scikit-learn-like: fit, predict, evaluate, save, load.

    lm.py          CharLanguageModel (lm_report.py: its samples and report)
    classify.py    SequenceClassifier (classify_run.py: its metrics, predictions, report)
    forecast/      Forecaster
    seq2seq.py     Seq2Seq
    run.py         the run directory every task writes, and load_run(DIR) for any job
    metrics.py     scores shared by the jobs (classification report, exact match, chrF, BLEU)

Each task lives in its own module and is imported from there, so importing this
package costs nothing.
"""
