r"""Sequence to sequence over characters or words: an encoder–decoder trained with teacher forcing.

The network is :class:`rnnkit.models.AttentionEncoderDecoder` (``attention="multiplicative"``,
the default, or ``"additive"``; Luong et al. 2015, Bahdanau et al. 2015) or, with
``attention=None``, :class:`rnnkit.models.EncoderDecoder` (Sutskever, Vinyals & Le 2014):
an encoder (bidirectional by default) reads the source tokens; its final states,
bridged through tanh(W s + b), start the decoder, which emits the target one token at
a time, attending over every encoder state:

    p(y_t | y_{<t}, x) = softmax(W_hy õ_t + b_y),   õ_t = tanh(W_c [c_t ; h^{dec}_t] + b_c),
    c_t = Σ_s a_ts m_s,  h^{dec}_t = RNN(E[y_{t−1}], h^{dec}_{t−1})

Training (teacher forcing) feeds the true previous character y_{t−1} (BOS at t = 1)
and minimises the mean cross-entropy over the target characters and the final EOS:

    L = −(1/N) Σ_{b, t ≤ len_b + 1} log p(y_{b,t} | y_{b,<t}, x_b)

Decoding feeds back the model's own outputs: greedy (arg-max each step until EOS)
or beam search keeping the ``beam_width`` best partial outputs by total
log-probability, finished outputs ranked by log p / len^α (α = ``length_penalty``).
Beam width 1 is greedy decoding.

Tokens (``tokens="char"`` or ``"word"``, :class:`rnnkit.data.tokens.Tokenizer`, case kept):
target ids are PAD = 0, BOS = 1, EOS = 2, then the target tokenizer's ids (its id 0, the
unknown bucket, is target id 3). A source or target character or word that training
never saw maps to the unknown bucket, so new text never stops a run (words seen once in
training go there too, so the bucket is trained).

Scores over n pairs (prediction p_i, target t_i):

    exact match     (1/n) Σ_i [p_i = t_i]
    char accuracy   Σ_i Σ_{k < max(|p_i|, |t_i|)} [p_i[k] = t_i[k]] / Σ_i max(|p_i|, |t_i|)
                    (position by position; a missing or extra character counts as wrong)

The demonstration task is :func:`rnnkit.data.date_dataset`: dates written in many
human formats ("3 March 2021", "Mar 3, 21", "03.03.2021", …) to ISO 8601.

A fitted model is a checkpoint directory: ``config.json`` (the model config; in
``meta`` ``"task": "seq2seq"``, the parameters and both alphabets) and ``model.npz``;
``fit(out_dir=D)`` writes the run directory of :mod:`rnnkit.tasks.run`, with
``char_accuracy.png``. chrF and BLEU (:func:`rnnkit.tasks.metrics.text_scores`) are
scored when sacrebleu is installed; test pairs are also translated by a translation
memory (:class:`rnnkit.tasks.text_metrics.TranslationMemory`, the baseline in
``metrics.json``), and the report shows example translations and an attention heat map.
"""

from __future__ import annotations

import os

import numpy as np

from rnnkit._checks import check_positive_int
from rnnkit.deadline import Deadline, after_training, as_deadline, chunks_in_time, partial_note
from rnnkit.errors import CheckpointError, ResourceLimitError, RnnkitError
from rnnkit.tasks._common import (check_cell, check_flag, check_number, check_seed, check_task_dtype,
                                  load_task, restore_model, save_task)
from rnnkit.tasks.metrics import char_accuracy, exact_match, text_scores
from rnnkit.tasks.run import METRICS_JSON, RunWriter, train_dir, training_meta, write_json
from rnnkit.train.callbacks import check_callbacks

__all__ = ["Seq2Seq", "exact_match", "char_accuracy"]

TASK = "seq2seq"
PAD, BOS, EOS = 0, 1, 2
SPECIALS = 3


MAX_OUTPUT_LENGTH = 100_000


def _check_output_length(n, name: str, where: str) -> int:
    n = check_positive_int(n, name, where)
    if n > MAX_OUTPUT_LENGTH:
        raise ValueError(f"{where}: {name} must be at most {MAX_OUTPUT_LENGTH} (characters decoded "
                         f"one step at a time), got {n}")
    return n


def _strings(xs, name: str, where: str, allow_empty: bool = False) -> list[str]:
    if isinstance(xs, str):
        raise TypeError(f"{where}: {name} must be a list of strings, got one str (wrap it in a list)")
    try:
        xs = list(xs)
    except TypeError:
        raise TypeError(f"{where}: {name} must be a list of strings, got {type(xs).__name__}") from None
    if not xs:
        raise ValueError(f"{where}: {name} is empty")
    for i, s in enumerate(xs):
        if not isinstance(s, str):
            raise TypeError(f"{where}: {name}[{i}] must be a str, got {type(s).__name__}")
        if not s and not allow_empty:
            raise ValueError(f"{where}: {name}[{i}] is an empty string")
    return xs


class Seq2Seq:
    """Sequence-to-sequence (encoder–decoder with attention), scikit-learn-like.

    Args:
        cell, hidden_size, num_layers, embedding_dim, dropout: both recurrent stacks
            (default a 1-layer LSTM of 128 units, 32-dim token embeddings).
        attention: "multiplicative" (default: scaled Luong "general", about a third of the
            additive score's cost per step), "additive" or None (no attention).
        tokens: "char" (default) or "word".
        bidirectional: a bidirectional encoder (default True: the decoder's start state
            then summarises the source read from both ends).
        max_output_length: the longest output decoding produces (None: 1.5 × the
            longest training target + 5); at most ``MAX_OUTPUT_LENGTH`` (100,000
            characters: decoding runs one step per character, so a larger bound
            would let an undertrained model decode for hours).
        batch_size, dtype, seed: training batches, float dtype, the seed of weights,
            validation split, data order and dropout.

    After :meth:`fit`: ``model_``, ``history_``, ``source_vocab_``, ``target_vocab_``,
    ``val_scores_`` ({"exact_match", "char_accuracy"} on the validation pairs, greedy).
    """

    def __init__(self, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, embedding_dim: int = 32,
                 bidirectional: bool = True, dropout: float = 0.0, max_output_length: int | None = None,
                 batch_size: int = 32, dtype: str = "float32", seed: int = 0, attention: str | None = "multiplicative",
                 tokens: str = "char"):
        where = "Seq2Seq"
        if attention not in (None, "additive", "multiplicative"):
            raise ValueError(f"{where}: attention must be 'additive', 'multiplicative' or None, got {attention!r}")
        self.attention = attention
        if tokens not in ("char", "word"):
            raise ValueError(f"{where}: tokens must be 'char' or 'word', got {tokens!r}")
        self.tokens = tokens
        self.cell = check_cell(cell, where)
        self.hidden_size = check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = check_positive_int(num_layers, "num_layers", where)
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim", where)
        self.bidirectional = check_flag(bidirectional, "bidirectional", where)
        self.dropout = check_number(dropout, "dropout", where, 0.0, 1.0, high_open=True)
        self.max_output_length = (None if max_output_length is None
                                  else _check_output_length(max_output_length, "max_output_length", where))
        self.batch_size = check_positive_int(batch_size, "batch_size", where)
        self.dtype = check_task_dtype(dtype, where)
        self.seed = check_seed(seed, where)
        self.model_ = None
        self.history_ = None

    def get_params(self) -> dict:
        """The constructor arguments (JSON-able)."""
        return {"cell": self.cell, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "embedding_dim": self.embedding_dim, "bidirectional": self.bidirectional,
                "dropout": self.dropout, "max_output_length": self.max_output_length,
                "batch_size": self.batch_size, "dtype": self.dtype, "seed": self.seed,
                "attention": self.attention, "tokens": self.tokens}

    def __repr__(self) -> str:
        return "Seq2Seq(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    def _check_fitted(self, what: str) -> None:
        if self.model_ is None:
            raise RnnkitError(f"Seq2Seq.{what}: the model is not trained yet; call fit(sources, targets) "
                              f"or Seq2Seq.load(directory) first")

    # -- encoding ------------------------------------------------------------------------------
    def _set_vocab(self, source_vocab, target_vocab) -> None:
        self.source_vocab_, self.target_vocab_ = source_vocab, target_vocab

    def _encode_sources(self, sources, where: str) -> list[np.ndarray]:
        out = []
        for s in sources:
            ids = self.source_vocab_.encode(s)
            out.append(ids if len(ids) else np.zeros(1, dtype=np.int64))     # nothing to read: one unknown
        return out

    def _encode_targets(self, targets, where: str) -> list[np.ndarray]:
        return [np.append(self.target_vocab_.encode(t) + SPECIALS, EOS).astype(np.int64) for t in targets]

    def _decode(self, ids) -> str:
        return self.target_vocab_.decode([i - SPECIALS for i in ids if i >= SPECIALS])

    def _build_model(self):
        from rnnkit.models import AttentionEncoderDecoder, EncoderDecoder

        kw = dict(tgt_vocab_size=self.target_vocab_.size + SPECIALS, src_vocab_size=self.source_vocab_.size,
                  cell=self.cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
                  embedding_dim=self.embedding_dim, bidirectional=self.bidirectional, dropout=self.dropout,
                  pad_id=PAD, bos_id=BOS, eos_id=EOS, dtype=self.dtype, seed=self.seed)
        if self.attention is None:
            return EncoderDecoder(**kw)
        return AttentionEncoderDecoder(attention=self.attention, **kw)

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, sources, targets, *, val_sources=None, val_targets=None, val_fraction: float = 0.1,
            epochs: int | None = None, time_limit: float | None = None, max_steps: int | None = None,
            optimizer: str = "adam", lr: float = 5e-3, clip: float | None = 1.0, patience: int | None = None,
            test_sources=None, test_targets=None, beam_width: int = 4, out_dir=None, quiet: bool = True,
            callbacks=None) -> "Seq2Seq":
        """Train on pairs ``sources[i] -> targets[i]`` (strings); returns self.

        Args:
            val_sources, val_targets: validation pairs; otherwise ``val_fraction`` of the
                pairs (drawn at random with the seed) is held out (0: no validation).
            epochs, time_limit, max_steps, optimizer, lr, clip, patience: the budget
                policy of :func:`rnnkit.tasks.policy.fit_with_budget` (steps sized to the
                data or to ``time_limit``, warm-up and cosine decay, patience in
                validations a fixed number of steps apart; the best weights are kept).
                ``time_limit`` covers decoding the validation and test pairs too.
            test_sources, test_targets: test pairs scored at the end (beam search of
                ``beam_width``; ``test_scores_``, beside a translation memory of the training
                pairs in ``baseline_scores_``, and in ``metrics.json`` of the run).
            out_dir: write the run directory (:mod:`rnnkit.tasks.run`).
            quiet: False shows a progress bar (on a terminal) or log lines.
            callbacks: more :class:`~rnnkit.train.Callback` objects for the Trainer.

        ``time_limit`` (seconds, or a :class:`rnnkit.deadline.Deadline`) covers the
        whole call: training, decoding the validation and test pairs and the run
        directory. Decoding goes a chunk of pairs at a time, in a random order, while time
        is left (at least one chunk): ``val_scores_["n"]`` of ``["of"]`` pairs were scored,
        and ``"time_limit_note"`` says so when not all.
        """
        from rnnkit.data.sequences import minibatches
        from rnnkit.tasks.policy import fit_with_budget

        where = "Seq2Seq.fit"
        deadline = as_deadline(time_limit, where)
        sources = _strings(sources, "sources", where)
        targets = _strings(targets, "targets", where, allow_empty=True)
        if len(sources) != len(targets):
            raise ValueError(f"{where}: {len(sources)} sources but {len(targets)} targets")
        val_fraction = check_number(val_fraction, "val_fraction", where, 0.0, 1.0, high_open=True)
        n = len(sources)
        if val_sources is not None or val_targets is not None:
            if val_sources is None or val_targets is None:
                raise ValueError(f"{where}: give both val_sources and val_targets")
            vs = _strings(val_sources, "val_sources", where)
            vt = _strings(val_targets, "val_targets", where, allow_empty=True)
            if len(vs) != len(vt):
                raise ValueError(f"{where}: {len(vs)} val_sources but {len(vt)} val_targets")
            tr = np.arange(n)
        elif val_fraction > 0 and n >= 2:
            perm = np.random.default_rng([self.seed, 1]).permutation(n)
            k = min(max(1, int(round(val_fraction * n))), n - 1)
            va, tr = np.sort(perm[:k]), np.sort(perm[k:])
            vs, vt = [sources[i] for i in va], [targets[i] for i in va]
        else:
            tr, vs, vt = np.arange(n), [], []
        tr_src, tr_tgt = [sources[i] for i in tr], [targets[i] for i in tr]
        # the vocabularies come from the training pairs only: what the model can read and write
        # (a token it never saw, in validation or test pairs, goes to the unknown bucket)
        from rnnkit.data.tokens import Tokenizer

        if not any(tr_tgt):
            raise RnnkitError(f"{where}: every target is empty; there is nothing to learn to write")
        min_count = 2 if self.tokens == "word" else 1
        self._set_vocab(Tokenizer.fit(tr_src, self.tokens, min_count, lower=False),
                        Tokenizer.fit(tr_tgt, self.tokens, min_count, lower=False))
        X, Y = self._encode_sources(tr_src, where), self._encode_targets(tr_tgt, where)
        self.max_target_length_ = max(len(t) for t in Y) - 1
        val_batches = None
        if vs:
            Xv, Yv = self._encode_sources(vs, where), self._encode_targets(vt, where)
            val_batches = [{"x": b["x"], "lengths": b["lengths"], "y": b["y"]}
                           for b in minibatches(Xv, Yv, batch_size=256, shuffle=False)]
        bs = self.batch_size

        def train_batches(epoch, rng):
            return [{"x": b["x"], "lengths": b["lengths"], "y": b["y"]}
                    for b in minibatches(X, Y, batch_size=bs, seed=rng)]

        first = next(iter(minibatches(X[:bs], Y[:bs], batch_size=bs, shuffle=False)))
        probe = {"x": first["x"], "lengths": first["lengths"], "y": first["y"]}
        self.history_ = self.val_scores_ = self.test_scores_ = self._val_examples = None
        self.baseline_scores_ = self._test_examples = None
        writer = [] if out_dir is None else [RunWriter(out_dir, self._meta)]
        n_test = 0 if test_sources is None else len(test_sources)
        figures = 1 + bool(vs) + (n_test > 0 and self.attention is not None)

        def reserve(step_s):     # decoding (a step at a time: about 3 forward passes) and the report
            return after_training(step_s, bs, len(vs) + n_test * beam_width, figures, decode_factor=3.0)

        fitted = fit_with_budget(self._build_model, train_batches, val_batches, len(X), bs, probe,
                                 time_limit=deadline, reserve=reserve, max_steps=max_steps, epochs=epochs, lr=lr,
                                 seed=self.seed, quiet=quiet, optimizer=optimizer, clip=clip, patience=patience,
                                 out_dir=train_dir(out_dir), callbacks=writer + check_callbacks(callbacks, where),
                                 steps_cap=4000, where=where)
        self.model_, self.history_ = fitted.model, fitted.history
        # the report, and with test pairs the translation memory and the scores (about a second)
        report_s = after_training(None, 1, 0, figures) + (1.0 if n_test else 0.0)
        if vs:
            # the validation pairs take at most half the decoding time when test pairs follow
            val_deadline = deadline if test_sources is None or not deadline.limited else \
                Deadline(max(0.0, deadline.left() - report_s) / 2)
            idx, pred = self._predict_until(vs, 1, val_deadline, report_s)
            n_val, vs, vt = len(vs), [vs[i] for i in idx], [vt[i] for i in idx]
            self.val_scores_ = {"exact_match": exact_match(pred, vt), "char_accuracy": char_accuracy(pred, vt),
                                "n": len(pred), "of": n_val}
            note = partial_note(len(pred), n_val, "validation pairs")
            if note:
                self.val_scores_["time_limit_note"] = note
            self._val_examples = (vs, vt, pred)
        if test_sources is not None:
            self._score_test(tr_src, tr_tgt, test_sources, test_targets, beam_width, deadline, report_s)
        if out_dir is not None:
            self.save(out_dir)
            self._write_run(out_dir, len(tr), deadline)
        return self

    def _score_test(self, tr_src, tr_tgt, sources, targets, beam_width: int, deadline, margin: float) -> None:
        """``test_scores_`` of the model and ``baseline_scores_`` of a translation memory of
        the training pairs, on the same test pairs (those decoded while ``deadline`` has
        more than ``margin`` seconds left)."""
        from rnnkit.tasks.text_metrics import TranslationMemory

        where = "Seq2Seq.fit"
        sources = _strings(sources, "test_sources", where)
        targets = _strings(targets, "test_targets", where, allow_empty=True)
        if len(sources) != len(targets):
            raise ValueError(f"{where}: {len(sources)} test_sources but {len(targets)} test_targets")
        idx, pred = self._predict_until(sources, beam_width, deadline, margin)
        total = len(sources)
        sources, targets = [sources[i] for i in idx], [targets[i] for i in idx]
        memory = TranslationMemory().fit(tr_src, tr_tgt).predict(sources)
        self.test_scores_ = dict(text_scores(pred, targets), beam_width=beam_width, of=total)
        note = partial_note(len(pred), total, "test pairs")
        if note:
            self.test_scores_["time_limit_note"] = note
        self.baseline_scores_ = {"translation_memory": text_scores(memory, targets)}
        self._test_examples = (sources, targets, pred, memory)

    # -- decoding --------------------------------------------------------------------------------
    def _max_len(self, max_len) -> int:
        if max_len is not None:
            return _check_output_length(max_len, "max_len", "Seq2Seq.predict")
        if self.max_output_length is not None:
            return self.max_output_length
        return int(1.5 * self.max_target_length_) + 5

    def _batches(self, enc, size: int):
        """Index groups of similar source lengths (less padding) and their padded inputs."""
        from rnnkit.data.sequences import pad_sequences

        order = np.argsort([len(s) for s in enc], kind="stable")
        for i in range(0, len(order), size):
            idx = order[i:i + size]
            x, lengths = pad_sequences([enc[j] for j in idx])
            yield idx, x, lengths

    def predict(self, sources, beam_width: int = 1, max_len: int | None = None,
                length_penalty: float = 1.0) -> list[str]:
        """Decode every source: greedy for ``beam_width=1`` (batched), else beam search."""
        self._check_fitted("predict")
        where = "Seq2Seq.predict"
        sources = _strings(sources, "sources", where)
        beam_width = check_positive_int(beam_width, "beam_width", where)
        if beam_width > 1:
            return self.beam_search(sources, beam_width, max_len, length_penalty)
        enc = self._encode_sources(sources, where)
        L = self._max_len(max_len)
        out: list[str] = [""] * len(enc)
        for idx, x, lengths in self._batches(enc, 256):
            for j, ids in zip(idx, self.model_.greedy(x, lengths, max_len=L)):
                out[j] = self._decode(ids)
        return out

    def beam_search(self, sources, beam_width: int = 4, max_len: int | None = None,
                    length_penalty: float = 1.0, return_scores: bool = False):
        """Beam-search decoding of every source (``beam_width`` 1 gives the greedy output).

        With ``return_scores`` also returns each output's log p / len^α.
        """
        self._check_fitted("beam_search")
        where = "Seq2Seq.beam_search"
        sources = _strings(sources, "sources", where)
        beam_width = check_positive_int(beam_width, "beam_width", where)
        enc = self._encode_sources(sources, where)
        L = self._max_len(max_len)
        out: list[str] = [""] * len(enc)
        scores = np.zeros(len(enc))
        for idx, x, lengths in self._batches(enc, 64):
            res, sc = self.model_.beam_search(x, lengths, width=beam_width, max_len=L,
                                              length_penalty=length_penalty, return_scores=True)
            for j, ids, s in zip(idx, res, sc):
                out[j], scores[j] = self._decode(ids), s
        return (out, scores) if return_scores else out

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, sources, targets, beam_width: int = 1, time_limit: float | None = None) -> dict:
        """{"n", "of", "exact_match", "char_accuracy", "chrf", "bleu"} of the decoded ``sources``
        against ``targets`` (:func:`rnnkit.tasks.metrics.text_scores`: chrF and BLEU need
        sacrebleu; without it they are None and "note" says so).

        With ``time_limit`` (seconds, or a :class:`rnnkit.deadline.Deadline`) decoding
        stops once it is spent (after at least one chunk of pairs) and the scores cover
        ``n`` of the ``of`` pairs, a random part of them.
        """
        self._check_fitted("evaluate")
        where = "Seq2Seq.evaluate"
        sources = _strings(sources, "sources", where)
        targets = _strings(targets, "targets", where, allow_empty=True)
        if len(sources) != len(targets):
            raise ValueError(f"{where}: {len(sources)} sources but {len(targets)} targets")
        idx, pred = self._predict_until(sources, beam_width, as_deadline(time_limit, where))
        scores = {**text_scores(pred, [targets[i] for i in idx]), "of": len(sources)}
        note = partial_note(len(pred), len(sources), "pairs")
        return {**scores, "time_limit_note": note} if note else scores

    def _predict_until(self, sources: list[str], beam_width: int, deadline, margin: float = 0.0):
        """(the indices decoded, their outputs): ``sources`` decoded a chunk at a time in a
        random order while ``deadline`` (:class:`rnnkit.deadline.Deadline`) has more than
        ``margin`` seconds left (:func:`rnnkit.deadline.chunks_in_time`; at least one chunk)."""
        if not deadline.limited:
            return list(range(len(sources))), self.predict(sources, beam_width=beam_width)
        done, pred = [], []
        for idx in chunks_in_time(len(sources), deadline, margin, seed=self.seed, first=8 if beam_width > 1 else 32):
            idx = sorted(idx.tolist())
            done += idx
            pred += self.predict([sources[i] for i in idx], beam_width=beam_width)
        order = np.argsort(done, kind="stable")
        return [done[i] for i in order], [pred[i] for i in order]

    def predict_file(self, path, beam_width: int = 1) -> str:
        """``source<TAB>output`` lines for the inputs of a file: one source per line, or
        ``source<TAB>target`` pairs (the targets are not used)."""
        from rnnkit.data.text import read_sources

        self._check_fitted("predict_file")
        sources, _ = read_sources(path)
        return "".join(f"{s}\t{p}\n" for s, p in zip(sources, self.predict(sources, beam_width=beam_width)))

    def evaluate_file(self, path, beam_width: int = 1) -> dict:
        """:meth:`evaluate` on a file of ``source<TAB>target`` pairs."""
        from rnnkit.data.text import read_pairs

        self._check_fitted("evaluate_file")
        return self.evaluate(*read_pairs(path), beam_width=beam_width)

    def score(self, sources, targets, beam_width: int = 1, metric: str = "exact_match") -> float:
        """Exact-match accuracy (``metric="exact_match"``) or character accuracy
        (``"char_accuracy"``) of the decoded ``sources``."""
        if metric not in ("exact_match", "char_accuracy"):
            raise ValueError(f"Seq2Seq.score: metric must be 'exact_match' or 'char_accuracy', got {metric!r}")
        return self.evaluate(sources, targets, beam_width)[metric]

    # -- plots and the run report ----------------------------------------------------------------
    @staticmethod
    def position_accuracy(predictions, targets) -> np.ndarray:
        """Accuracy at each output position k: the fraction of targets longer than k whose
        prediction has the right character there.

        Shapes:
            -> (max target length,)
        """
        L = max(len(t) for t in targets)
        hit, count = np.zeros(L), np.zeros(L)
        for p, t in zip(predictions, targets):
            for k, ch in enumerate(t):
                count[k] += 1
                hit[k] += k < len(p) and p[k] == ch
        return np.divide(hit, count, out=np.zeros(L), where=count > 0)

    def plot_position_accuracy(self, predictions, targets, reference: str | None = None):
        """Bar chart of :meth:`position_accuracy`; ``reference`` labels the positions
        (e.g. one target). Returns a matplotlib figure."""
        from rnnkit.report import pyplot

        plt = pyplot()
        acc = self.position_accuracy(predictions, targets)
        fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(acc) + 2), 3.4))
        ax.bar(np.arange(len(acc)), acc, color="tab:blue")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("output position")
        ax.set_ylabel("character accuracy")
        if reference is not None and len(reference) == len(acc):
            ax.set_xticks(np.arange(len(acc)), [f"{k}\n{c}" for k, c in enumerate(reference)])
        ax.set_title(f"accuracy by output position (exact match {exact_match(predictions, targets):.3f})")
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        return fig

    def _write_run(self, out_dir, n_train: int, deadline=None) -> None:
        from rnnkit.report import Section, plots_in_time, save_figure, write_run_report
        from rnnkit.tasks.run import writes_files

        if not writes_files():      # data parallel: rank 0 alone writes the run directory
            return
        out_dir = os.fspath(out_dir)
        data = [["training pairs", n_train],
                ["validation pairs", 0 if self.val_scores_ is None else self.val_scores_["of"]],
                ["tokens", self.tokens], ["attention", self.attention or "none"],
                ["source vocabulary", f"{self.source_vocab_.size} (id 0: unknown)"],
                ["target vocabulary", f"{self.target_vocab_.size} (id 0: unknown)"],
                ["longest training target", f"{self.max_target_length_} tokens"]]
        sections = [Section("Data", table=data, header=["", ""])]
        if self.val_scores_ is not None:
            vs, vt, pred = self._val_examples
            figs = []
            if plots_in_time(deadline):
                ref = max(vt, key=len)
                figs.append(save_figure(self.plot_position_accuracy(pred, vt, ref),
                                        os.path.join(out_dir, "char_accuracy.png")))
            text = (f"greedy decoding of {len(vt)} validation pairs: exact match "
                    f"{self.val_scores_['exact_match']:.4f}, character accuracy "
                    f"{self.val_scores_['char_accuracy']:.4f}"
                    + (f" ({self.val_scores_['time_limit_note']})" if "time_limit_note" in self.val_scores_ else ""))
            sections.append(Section("Validation", text=text, figures=figs))
            wrong = [i for i in range(len(vt)) if pred[i] != vt[i]]
            right = [i for i in range(len(vt)) if pred[i] == vt[i]]
            shown = wrong[:15] + right[:5]
            sections.append(Section("Examples (errors first)",
                                    table=[[vs[i], vt[i], pred[i], "yes" if pred[i] == vt[i] else "no"]
                                           for i in shown],
                                    header=["source", "target", "prediction", "exact"]))
        h = self.history_
        write_json(os.path.join(out_dir, METRICS_JSON), {
            "pairs": n_train + (0 if self.val_scores_ is None else self.val_scores_["of"]),
            "steps": None if h is None else h.step, "stop_reason": None if h is None else h.stop_reason,
            "validation": self.val_scores_, "test": self.test_scores_,
            "baseline": getattr(self, "baseline_scores_", None)})
        if getattr(self, "_test_examples", None) is not None:
            from rnnkit.tasks.seq2seq_report import test_sections

            sections += test_sections(self, out_dir, deadline)
        notes = [sc["time_limit_note"] for sc in (self.val_scores_, self.test_scores_)
                 if sc and sc.get("time_limit_note")]
        write_run_report(out_dir, "rnnkit sequence to sequence", sections,
                         config={"task": TASK, "params": self.get_params(), "model": self.model_.config()},
                         deadline=deadline, notes=notes)

    # -- files -------------------------------------------------------------------------------------
    def save(self, directory) -> str:
        """Write the fitted model to ``directory`` (config.json + model.npz); returns the path."""
        self._check_fitted("save")
        h = self.history_
        meta = {**self._meta(), "training": training_meta(h, finished=h is not None and not h.interrupted)}
        if getattr(self, "val_scores_", None) is not None:
            meta["val_scores"] = dict(self.val_scores_)
        return save_task(directory, self.model_, meta)

    def _meta(self) -> dict:
        """The task's meta for config.json: parameters and both alphabets."""
        return {"task": TASK, "params": self.get_params(),
                "state": {"source_vocab": self.source_vocab_.to_dict(), "target_vocab": self.target_vocab_.to_dict(),
                          "max_target_length": int(self.max_target_length_)}}

    @classmethod
    def load(cls, directory) -> "Seq2Seq":
        """Read a model written by :meth:`save` or ``fit(out_dir=...)``; a directory of
        another task is a CheckpointError ("… was written by task 'lm', not 'seq2seq'")."""
        from rnnkit.data.tokens import Tokenizer
        from rnnkit.models import build

        directory = os.fspath(directory)
        ckpt = load_task(directory, TASK, "Seq2Seq")
        try:
            s2s = cls(**ckpt.meta["params"])
            st = ckpt.meta["state"]
            if "source_vocab" in st:
                s2s._set_vocab(Tokenizer.from_dict(st["source_vocab"]), Tokenizer.from_dict(st["target_vocab"]))
            else:       # saved before the unknown bucket: ids are positions in the sorted alphabets
                s2s._set_vocab(_Alphabet(st["source_chars"]), _Alphabet(st["target_chars"]))
            s2s.max_target_length_ = _check_output_length(st["max_target_length"], "max_target_length",
                                                           "config.json")
            model = build(ckpt.config)
        except (KeyError, TypeError, ValueError, AttributeError, ResourceLimitError) as exc:
            raise CheckpointError(f"{directory}: config.json does not describe a valid seq2seq model: {exc}") from exc
        s2s.model_ = restore_model(directory, ckpt, model, s2s._build_model().config(),
                                   "does not match the parameters and vocabularies")
        s2s.history_ = s2s.val_scores_ = s2s.test_scores_ = s2s._val_examples = None
        s2s.baseline_scores_ = s2s._test_examples = None
        return s2s


class _Alphabet:
    """The character ids of runs saved before the unknown bucket (position in the sorted
    alphabet); an unseen character is an error there, as it was when they were trained."""

    def __init__(self, chars: str):
        from rnnkit.data.text import CharVocab

        self._vocab, self.kind = CharVocab(chars), "char"
        self.size = len(chars)

    def encode(self, text: str) -> np.ndarray:
        return self._vocab.encode(text)

    def decode(self, ids) -> str:
        return self._vocab.decode(np.asarray(list(ids), dtype=np.int64))

    def to_dict(self) -> dict:
        return {"type": "Tokenizer", "kind": "char", "vocab": ["<unk>"] + list(self._vocab.chars)}
