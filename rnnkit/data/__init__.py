"""Data for recurrent networks: text, series, variable-length sequences, built-in and synthetic sets.

Pure NumPy and the standard library (matplotlib only inside
:func:`builtin_series`, when installed). Batches are dicts of arrays, time-major:

* text  — :class:`CharVocab`, :func:`read_text`, :func:`split_text`,
  :func:`stream_batches` (contiguous streams, truncated-BPTT windows with a mask)
* series — :func:`read_csv`, :class:`StandardScaler`, :class:`MinMaxScaler`,
  :func:`make_windows`, :func:`split_series` (time-ordered)
* sequences — :func:`pad_sequences`, :class:`LabelEncoder`, :func:`minibatches`,
  :func:`class_weights`, :func:`encode_strings`, :func:`one_hot`
* files of labelled series — :func:`read_ucr_tsv`, :func:`read_ucr_ts`,
  :func:`read_labeled_csv`, :func:`read_multichannel_csv`, :func:`read_labeled_sequences`
* audio, tokens, forecasting context, examples — :mod:`rnnkit.data.audio`,
  :mod:`rnnkit.data.tokens`, :mod:`rnnkit.data.context`, :mod:`rnnkit.data.examples`
* built-in — :func:`stdlib_text`, :func:`builtin_series`
* synthetic — :func:`seasonal_series`, :func:`temperature_series`,
  :func:`dna_motif_dataset`, :func:`date_dataset`, :func:`digit_images`
"""

from rnnkit._lazy import attach as _attach

# Each reader is imported on first use: a language model never loads the CSV readers.
__getattr__, __dir__, __all__ = _attach(__name__, attributes={
    "text": ["CharVocab", "read_text", "split_text", "stream_batches", "count_stream_batches"],
    "series": ["SeriesData", "read_csv", "StandardScaler", "MinMaxScaler", "make_scaler", "scaler_from_dict",
               "make_windows", "split_sizes", "split_series"],
    "sequences": ["pad_sequences", "LabelEncoder", "minibatches", "class_weights", "encode_strings", "one_hot"],
    "ucr": ["read_ucr_tsv", "read_ucr_ts", "read_labeled_csv", "read_multichannel_csv", "read_labeled_sequences"],
    "builtin": ["BuiltinText", "BuiltinSeries", "stdlib_text", "builtin_series"],
    "synthetic": ["seasonal_series", "temperature_series", "dna_motif_dataset", "date_dataset", "DATE_FORMATS",
                  "digit_images"],
})
