"""The library's error messages in command-line terms.

Library errors name Python arguments (``hidden_size=…``, ``missing='trim'``) and the
class or function that checked them (``Seq2Seq:``, ``split_text:``), which is right for
a caller of the API and meaningless on the command line. :func:`for_command` rewrites
one message for the command that ran: an argument that has a flag of that command
becomes the flag (``--hidden``, ``--missing trim``), advice about arguments the command
has no flag for is dropped, and the name of the checking class or function goes.
"""

from __future__ import annotations

import re

__all__ = ["for_command", "option_strings"]

#: Python argument -> the flag that sets it (where a command has that flag)
FLAGS = {
    "hidden_size": "--hidden", "num_layers": "--layers", "embedding_dim": "--embedding",
    "batch_size": "--batch", "seq_len": "--seq-len", "val_fraction": "--val-fraction",
    "test_fraction": "--test-fraction", "max_steps": "--max-steps", "time_limit": "--time-limit",
    "clip_norm": "--clip", "clip": "--clip", "lr": "--lr", "missing": "--missing", "fill": "--fill",
    "date_column": "--date-column", "columns": "--column", "lookback": "--lookback", "horizon": "--horizon",
    "dropout": "--dropout", "epochs": "--epochs", "patience": "--patience", "seed": "--seed",
    "strategy": "--strategy", "length": "--length", "temperature": "--temperature", "top_k": "--top-k",
    "top_p": "--top-p", "width": "--beam", "beam_width": "--beam", "max_len": "--length",
    "intervals": "--quantiles", "quantiles": "--quantiles", "period": "--period", "cell": "--cell",
}
# classes and functions of the API whose names lead a message ("Seq2Seq.fit: ")
_CHECKER = re.compile(
    r"(?:(?<=^)|(?<=: )|(?<=\()|(?<=; ))"
    r"(?:[A-Z][A-Za-z0-9]*(?:\.(?:fit|fit_files|load|save|sample|predict|predict_proba|predict_interval|"
    r"evaluate|backtest|score|beam|beam_search|greedy|forward|backward|step|encode|decode|transform|"
    r"from_text|from_dict|to_dict|iter_sample|next_char_proba))?(?:\([a-z-]+\))?"
    r"|split_text|stream_batches|make_windows|split_sizes|split_series|read_csv|read_labeled_csv|"
    r"read_ucr_tsv|read_ucr_ts|read_labeled_sequences|read_text|read_texts|scaler_from_dict|"
    r"load_checkpoint|check_arrays|encode_state|decode_state|pad_sequences|build|evaluate): ")
# "(build it with unknown_char=... to map ...)": advice naming an argument without a flag
_ADVICE = re.compile(r"\s*\((?:[^()]*\b(?:pass|build it with|use|e\.g\.)\b[^()]*\b([a-z_]+)=[^()]*)\)")


def option_strings(parser) -> set[str]:
    """Every ``--flag`` a (sub)parser accepts."""
    return {s for action in parser._actions for s in action.option_strings}


def _values(text: str) -> str:
    """``'a', 'b' or 'c'`` -> ``a, b or c``."""
    return re.sub(r"'([^']*)'", r"\1", text)


def for_command(message: str, flags: set[str]) -> str:
    """``message`` with Python arguments turned into the command's ``flags`` (see module doc)."""
    def advice(m: re.Match) -> str:
        name = m.group(1)
        return m.group(0) if FLAGS.get(name) in flags else ""

    message = _ADVICE.sub(advice, message)
    for name, flag in FLAGS.items():
        if flag not in flags:
            continue
        # name='a', 'b' or 'c'  /  name=value  ->  --flag a, b or c  /  --flag value
        message = re.sub(rf"\b{name}=('[^']*'(?:(?:, | or )'[^']*')*)",
                         lambda m: f"{flag} {_values(m.group(1))}", message)
        message = re.sub(rf"\b{name}=([^\s,;:)'\"]+)", rf"{flag} \1", message)
        if "_" in name:                     # bare snake_case names are arguments, not English
            message = re.sub(rf"(?<![\w.-]){name}\b", flag, message)
    message = _CHECKER.sub("", message)
    return " ".join(message.split())
