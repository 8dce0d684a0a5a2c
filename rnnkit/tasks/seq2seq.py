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
log-probability, finished outputs ranked by log p / len^α (α = ``length_penalty``;
:meth:`rnnkit.models.EncoderDecoder.beam_search` says when it stops). Beam width 1 is
greedy decoding.

Tokens (``tokens="auto"``, ``"char"`` or ``"word"``, :class:`rnnkit.data.tokens.Tokenizer`,
case kept; "auto" is words when both sides read as spaced text, else characters):
target ids are PAD = 0, BOS = 1, EOS = 2, then the target tokenizer's ids (its id 0, the
unknown bucket, is target id 3). A source or target character or word that training
never saw maps to the unknown bucket, so new text never stops a run (words seen once in
training go there too, so the bucket is trained). A word output's unknown token is
replaced by the source word the decoder attended to most when writing it (Luong et al.
2015, "Addressing the rare word problem"): names and numbers come through.

Training batches hold pairs of similar lengths (``minibatches(..., bucket=50)``:
:func:`rnnkit.data.sequences.minibatches` sorts 50 batches' worth of a random order by
source, then target length, and shuffles the batches). With
``time_limit`` the run keeps the time decoding the validation and test pairs will take
(timed on an untrained model before training) and re-plans its steps from the pace it
measures (:class:`rnnkit.tasks.policy.Pace`).

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
from rnnkit.tasks.run import RunWriter, train_dir, training_meta
from rnnkit.tasks.seq2seq_data import (BOS, EOS, MAX_OUTPUT_LENGTH, MIN_PASSES, PAD, SIZES,  # noqa: F401
                                       SMALL_WORD_MODEL, SPECIALS, LegacyAlphabet, check_output_length,
                                       check_strings, resolve_tokens)
from rnnkit.train.callbacks import Callback, check_callbacks

__all__ = ["Seq2Seq", "exact_match", "char_accuracy", "resolve_tokens"]

#: batches' worth of training pairs sorted by length at a time
BUCKET = 50

TASK = "seq2seq"


def output_score(predictions, targets) -> float:
    """chrF (0-100) of ``predictions``, or 100 × character accuracy without sacrebleu."""
    scores = text_scores(predictions, targets)
    return scores["chrf"] if scores.get("chrf") is not None else 100 * scores["char_accuracy"]


class _BestOutputs(Callback):
    """Keeps the weights whose greedy outputs of (up to 500) validation pairs score best,
    by chrF (sacrebleu) or else character accuracy, and puts them back when training ends.

    The validation loss (which picks the weights the Trainer keeps) bottoms out epochs
    before the outputs stop improving: past it the model grows over-confident on the
    tokens it gets wrong, which costs loss but not arg-max outputs.
    """

    def __init__(self, s2s, sources, targets, n: int = 500):
        self.s2s, self.sources, self.targets = s2s, sources[:n], targets[:n]
        self.best, self.state, self.step, self.scores = -np.inf, None, None, []

    def on_eval(self, trainer, info: dict) -> None:
        self.s2s.model_ = trainer.model
        score = output_score(self.s2s.predict(self.sources), self.targets)
        self.scores.append((info["step"], score))
        if score > self.best:
            self.best, self.state, self.step = score, trainer.model.state_dict(), info["step"]

    def on_end(self, trainer, history) -> None:
        if self.state is not None:
            trainer.model.load_state_dict(self.state)


class Seq2Seq:
    """Sequence-to-sequence (encoder–decoder with attention), scikit-learn-like.

    Args:
        cell, hidden_size, num_layers, embedding_dim, dropout: both recurrent stacks
            (default a 1-layer LSTM; the sizes and dropout left None are those of the token
            kind, :data:`rnnkit.tasks.seq2seq_data.SIZES`: words 256 units, 128-dim
            embeddings, dropout 0.3, or 128 units when a time limit holds fewer than
            8 passes over the pairs with 256; characters 128 units, 32-dim, no dropout).
        label_smoothing: ε of the training loss (None: 0.1 for words, 0 for characters;
            :func:`rnnkit.losses.softmax_cross_entropy`).
        attention: "multiplicative" (default: scaled Luong "general", about a third of the
            additive score's cost per step), "additive" or None (no attention).
        tokens: "auto" (default: words when both sides are spaced text), "char" or "word".
        bidirectional: a bidirectional encoder (default True: the decoder's start state
            then summarises the source read from both ends).
        max_output_length: the longest output decoding produces (None: 1.5 × the
            longest training target + 5); at most ``MAX_OUTPUT_LENGTH`` (100,000
            characters: decoding runs one step per character, so a larger bound
            would let an undertrained model decode for hours).
        batch_size, dtype, seed: training batches (None: 64 pairs for words, 32 for
            characters), float dtype, the seed of weights, validation split, data order
            and dropout.

    After :meth:`fit`: ``model_``, ``history_``, ``source_vocab_``, ``target_vocab_``,
    ``tokens_`` and ``sizes_`` (the token kind and sizes used), ``output_scores_`` ((step,
    chrF) of the greedy validation outputs at each validation) and ``selected_step_`` (the
    step whose weights were kept: the best of those),
    ``val_scores_`` ({"exact_match", "char_accuracy"} on the validation pairs, greedy).
    """

    def __init__(self, cell: str = "lstm", hidden_size: int | None = None, num_layers: int = 1,
                 embedding_dim: int | None = None, bidirectional: bool = True, dropout: float | None = None,
                 max_output_length: int | None = None, batch_size: int | None = None, dtype: str = "float32",
                 seed: int = 0, attention: str | None = "multiplicative", tokens: str = "auto",
                 label_smoothing: float | None = None):
        where = "Seq2Seq"
        if attention not in (None, "additive", "multiplicative"):
            raise ValueError(f"{where}: attention must be 'additive', 'multiplicative' or None, got {attention!r}")
        self.attention = attention
        if tokens not in ("auto", "char", "word"):
            raise ValueError(f"{where}: tokens must be 'auto', 'char' or 'word', got {tokens!r}")
        self.tokens = tokens
        self.cell = check_cell(cell, where)
        self.hidden_size = None if hidden_size is None else check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = check_positive_int(num_layers, "num_layers", where)
        self.embedding_dim = (None if embedding_dim is None
                              else check_positive_int(embedding_dim, "embedding_dim", where))
        self.bidirectional = check_flag(bidirectional, "bidirectional", where)
        self.dropout = None if dropout is None else check_number(dropout, "dropout", where, 0.0, 1.0, high_open=True)
        self.label_smoothing = (None if label_smoothing is None
                                else check_number(label_smoothing, "label_smoothing", where, 0.0, 1.0, high_open=True))
        self.max_output_length = (None if max_output_length is None
                                  else check_output_length(max_output_length, "max_output_length", where))
        self.batch_size = None if batch_size is None else check_positive_int(batch_size, "batch_size", where)
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
                "attention": self.attention, "tokens": self.tokens, "label_smoothing": self.label_smoothing}

    def __repr__(self) -> str:
        return "Seq2Seq(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    def _check_fitted(self, what: str) -> None:
        if self.model_ is None:
            raise RnnkitError(f"Seq2Seq.{what}: the model is not trained yet; call fit(sources, targets) "
                              f"or Seq2Seq.load(directory) first")

    # -- encoding ------------------------------------------------------------------------------
    def _set_vocab(self, source_vocab, target_vocab) -> None:
        self.source_vocab_, self.target_vocab_ = source_vocab, target_vocab
        self.tokens_ = target_vocab.kind

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

    def _texts(self, sources, x, lengths, outputs) -> list[str]:
        """The text of each output (target ids) of the sources ``x``. A word output's unknown
        token becomes the source word the decoder attended to most when writing it (Luong
        et al. 2015): names, numbers and rare words a translation keeps."""
        unk = SPECIALS      # the target tokenizer's id 0
        if self.tokens_ != "word" or self.attention is None or not any(unk in ids for ids in outputs):
            return [self._decode(ids) for ids in outputs]
        from rnnkit.data.sequences import pad_sequences
        from rnnkit.data.tokens import tokenize

        y, _ = pad_sequences([np.append(np.asarray(ids, dtype=np.int64), EOS) for ids in outputs], pad_value=PAD)
        weights = self.model_.attention_weights(x, y, lengths)                       # (B, T, S)
        texts = []
        for b, ids in enumerate(outputs):
            words = tokenize(sources[b], "word", lower=False)
            toks = [self.target_vocab_.vocab[i - SPECIALS] for i in ids]
            for t, i in enumerate(ids):
                if i == unk and words:
                    toks[t] = words[min(int(np.argmax(weights[b, t])), len(words) - 1)]
            texts.append(self.target_vocab_.join(toks))
        return texts

    def _build_model(self):
        from rnnkit.models import AttentionEncoderDecoder, EncoderDecoder

        z = self.sizes_
        kw = dict(tgt_vocab_size=self.target_vocab_.size + SPECIALS, src_vocab_size=self.source_vocab_.size,
                  cell=self.cell, hidden_size=z["hidden_size"], num_layers=self.num_layers,
                  embedding_dim=z["embedding_dim"], bidirectional=self.bidirectional, dropout=z["dropout"],
                  label_smoothing=z["label_smoothing"], pad_id=PAD, bos_id=BOS, eos_id=EOS, dtype=self.dtype,
                  seed=self.seed)
        if self.attention is None:
            return EncoderDecoder(**kw)
        return AttentionEncoderDecoder(attention=self.attention, **kw)

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, sources, targets, *, val_sources=None, val_targets=None, val_fraction: float = 0.1,
            epochs: int | None = None, time_limit: float | None = None, max_steps: int | None = None,
            optimizer: str = "adam", lr: float | None = None, clip: float | None = 1.0, patience: int | None = None,
            test_sources=None, test_targets=None, beam_width: int = 4, out_dir=None, quiet: bool = True,
            callbacks=None) -> "Seq2Seq":
        """Train on pairs ``sources[i] -> targets[i]`` (strings); returns self.

        Args:
            val_sources, val_targets: validation pairs; otherwise ``val_fraction`` of the
                pairs (drawn at random with the seed) is held out (0: no validation).
            epochs, time_limit, max_steps, optimizer, lr, clip, patience: the budget
                policy of :func:`rnnkit.tasks.policy.fit_with_budget` (steps sized to the
                data or to ``time_limit``, warm-up and cosine decay, patience in
                validations a fixed number of steps apart; the best weights are kept;
                ``lr`` None: that of the token kind, 2e-3 for words, 5e-3 for characters).
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
        sources = check_strings(sources, "sources", where)
        targets = check_strings(targets, "targets", where, allow_empty=True)
        if len(sources) != len(targets):
            raise ValueError(f"{where}: {len(sources)} sources but {len(targets)} targets")
        val_fraction = check_number(val_fraction, "val_fraction", where, 0.0, 1.0, high_open=True)
        n = len(sources)
        if val_sources is not None or val_targets is not None:
            if val_sources is None or val_targets is None:
                raise ValueError(f"{where}: give both val_sources and val_targets")
            vs = check_strings(val_sources, "val_sources", where)
            vt = check_strings(val_targets, "val_targets", where, allow_empty=True)
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
        if test_sources is not None or test_targets is not None:     # checked before training, not after
            test_sources = check_strings(test_sources, "test_sources", where)
            test_targets = check_strings(test_targets, "test_targets", where, allow_empty=True)
            if len(test_sources) != len(test_targets):
                raise ValueError(f"{where}: {len(test_sources)} test_sources but {len(test_targets)} test_targets")
        tr_src, tr_tgt = [sources[i] for i in tr], [targets[i] for i in tr]
        # the vocabularies come from the training pairs only: what the model can read and write
        # (a token it never saw, in validation or test pairs, goes to the unknown bucket)
        from rnnkit.data.tokens import Tokenizer

        if not any(tr_tgt):
            raise RnnkitError(f"{where}: every target is empty; there is nothing to learn to write")
        kind = resolve_tokens(tr_src, tr_tgt, self.tokens)
        min_count = 2 if kind == "word" else 1
        self._set_vocab(Tokenizer.fit(tr_src, kind, min_count, lower=False),
                        Tokenizer.fit(tr_tgt, kind, min_count, lower=False))
        X, Y = self._encode_sources(tr_src, where), self._encode_targets(tr_tgt, where)
        self.max_target_length_ = max(len(t) for t in Y) - 1
        val_batches = None
        if vs:
            Xv, Yv = self._encode_sources(vs, where), self._encode_targets(vt, where)
            val_batches = [{"x": b["x"], "lengths": b["lengths"], "y": b["y"]}
                           for b in minibatches(Xv, Yv, batch_size=256, shuffle=False)]
        defaults = SIZES[kind]
        self.sizes_ = {k: defaults[k] if getattr(self, k) is None else getattr(self, k)
                       for k in ("hidden_size", "embedding_dim", "dropout", "label_smoothing", "batch_size")}
        lr = defaults["lr"] if lr is None else lr
        bs = self.sizes_["batch_size"]

        def train_batches(epoch, rng):
            return [{"x": b["x"], "lengths": b["lengths"], "y": b["y"]}
                    for b in minibatches(X, Y, batch_size=bs, seed=rng, bucket=BUCKET)]

        probe = train_batches(0, np.random.default_rng(self.seed))[0]
        self.history_ = self.val_scores_ = self.test_scores_ = self._val_examples = None
        self.baseline_scores_ = self._test_examples = None
        n_test = 0 if test_sources is None else len(test_sources)
        figures = 1 + bool(vs) + (n_test > 0 and self.attention is not None)

        # decoding the validation and test pairs (timed, at most 30% of the time) and the report
        decode_s = self._decode_time(probe, len(vs), n_test, beam_width) if deadline.limited else 0.0

        def reserve(step_s):
            decode = min(0.3 * deadline.left(), decode_s) if deadline.limited else 0.0
            # (the translation memory and the scores: the second report_s below counts too)
            return decode + after_training(step_s, bs, 0, figures) + (1.0 if n_test else 0.0)

        if kind == "word" and self.hidden_size is None and max_steps is None and epochs is None and deadline.limited:
            self._size_to_time(probe, deadline.left(), len(X))
        writer = [] if out_dir is None else [RunWriter(out_dir, self._meta)]
        chooser = [_BestOutputs(self, vs, vt)] if vs else []
        fitted = fit_with_budget(self._build_model, train_batches, val_batches, len(X), bs, probe,
                                 time_limit=deadline, reserve=reserve, max_steps=max_steps, epochs=epochs, lr=lr,
                                 seed=self.seed, quiet=quiet, optimizer=optimizer, clip=clip, patience=patience,
                                 out_dir=train_dir(out_dir),
                                 callbacks=writer + check_callbacks(callbacks, where) + chooser,
                                 steps_cap=4000, where=where)
        self.model_, self.history_ = fitted.model, fitted.history
        # (step, score) of every validation's greedy outputs, and the step whose weights were kept
        self.output_scores_ = chooser[0].scores if chooser else []
        self.selected_step_ = chooser[0].step if chooser else None
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

    def _size_to_time(self, probe: dict, time_limit: float, n_pairs: int) -> None:
        """The smaller word model when ``time_limit`` holds fewer than ``MIN_PASSES`` passes
        over the ``n_pairs`` training pairs with the default one (one step timed)."""
        from rnnkit.tasks.policy import time_step

        step_s = time_step(self._build_model(), probe)
        if 0.85 * time_limit / step_s * probe["x"].shape[1] < MIN_PASSES * n_pairs:
            self.sizes_.update(SMALL_WORD_MODEL)

    def _decode_time(self, probe: dict, n_val: int, n_test: int, beam_width: int) -> float:
        """Seconds decoding ``n_val`` validation pairs (greedy) and ``n_test`` test pairs (beam)
        will take: an untrained model's greedy decoding of the probe batch and beam search of
        8 of its sources, each for as many steps as the batch's longest target, timed and
        scaled by the pairs, twice (timings on a busy machine are noisy; per source, beam
        search costs more than ``beam_width`` greedy rows)."""
        import time

        model = self._build_model()
        steps = int(probe["y"].shape[0])
        x, lengths = probe["x"], probe["lengths"]
        t0 = time.perf_counter()
        model.greedy(x, lengths, max_len=steps)
        greedy = (time.perf_counter() - t0) / x.shape[1]
        beam = greedy
        if n_test and beam_width > 1:
            k = min(8, x.shape[1])
            t0 = time.perf_counter()
            model.beam_search(x[:, :k], lengths[:k], width=beam_width, max_len=steps)
            beam = (time.perf_counter() - t0) / k
        return 2.0 * (greedy * n_val + beam * n_test)

    def _score_test(self, tr_src, tr_tgt, sources, targets, beam_width: int, deadline, margin: float) -> None:
        """``test_scores_`` of the model and ``baseline_scores_`` of a translation memory of
        the training pairs, on the same test pairs (those decoded while ``deadline`` has
        more than ``margin`` seconds left)."""
        from rnnkit.tasks.text_metrics import TranslationMemory

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
            return check_output_length(max_len, "max_len", "Seq2Seq.predict")
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
        sources = check_strings(sources, "sources", where)
        beam_width = check_positive_int(beam_width, "beam_width", where)
        if beam_width > 1:
            return self.beam_search(sources, beam_width, max_len, length_penalty)
        enc = self._encode_sources(sources, where)
        L = self._max_len(max_len)
        out: list[str] = [""] * len(enc)
        for idx, x, lengths in self._batches(enc, 256):
            texts = self._texts([sources[j] for j in idx], x, lengths, self.model_.greedy(x, lengths, max_len=L))
            for j, text in zip(idx, texts):
                out[j] = text
        return out

    def beam_search(self, sources, beam_width: int = 4, max_len: int | None = None,
                    length_penalty: float = 1.0, return_scores: bool = False):
        """Beam-search decoding of every source (``beam_width`` 1 gives the greedy output).

        With ``return_scores`` also returns each output's log p / len^α.
        """
        self._check_fitted("beam_search")
        where = "Seq2Seq.beam_search"
        sources = check_strings(sources, "sources", where)
        beam_width = check_positive_int(beam_width, "beam_width", where)
        enc = self._encode_sources(sources, where)
        L = self._max_len(max_len)
        out: list[str] = [""] * len(enc)
        scores = np.zeros(len(enc))
        for idx, x, lengths in self._batches(enc, 64):
            res, sc = self.model_.beam_search(x, lengths, width=beam_width, max_len=L,
                                              length_penalty=length_penalty, return_scores=True)
            for j, text, s in zip(idx, self._texts([sources[j] for j in idx], x, lengths, res), sc):
                out[j], scores[j] = text, s
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
        sources = check_strings(sources, "sources", where)
        targets = check_strings(targets, "targets", where, allow_empty=True)
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
        """Accuracy at each output position k (:func:`rnnkit.tasks.seq2seq_report.position_accuracy`)."""
        from rnnkit.tasks.seq2seq_report import position_accuracy

        return position_accuracy(predictions, targets)

    def plot_position_accuracy(self, predictions, targets, reference: str | None = None):
        """Bar chart of :meth:`position_accuracy`; ``reference`` labels the positions
        (e.g. one target). Returns a matplotlib figure."""
        from rnnkit.tasks.seq2seq_report import plot_position_accuracy

        return plot_position_accuracy(predictions, targets, reference)

    def _write_run(self, out_dir, n_train: int, deadline=None) -> None:
        from rnnkit.tasks.seq2seq_report import write_run

        write_run(self, out_dir, n_train, deadline)

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
                          "max_target_length": int(self.max_target_length_), "sizes": dict(self.sizes_)}}

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
                s2s._set_vocab(LegacyAlphabet(st["source_chars"]), LegacyAlphabet(st["target_chars"]))
            s2s.max_target_length_ = check_output_length(st["max_target_length"], "max_target_length",
                                                          "config.json")
            # runs saved before sizes were chosen at fit time held them all in params
            s2s.sizes_ = {k: st["sizes"][k] if "sizes" in st else ckpt.meta["params"][k]
                          for k in ("hidden_size", "embedding_dim", "dropout", "batch_size")}
            s2s.sizes_["label_smoothing"] = st.get("sizes", {}).get("label_smoothing", 0.0)   # 0 before it came
            model = build(ckpt.config)
        except (KeyError, TypeError, ValueError, AttributeError, ResourceLimitError) as exc:
            raise CheckpointError(f"{directory}: config.json does not describe a valid seq2seq model: {exc}") from exc
        s2s.model_ = restore_model(directory, ckpt, model, s2s._build_model().config(),
                                   "does not match the parameters and vocabularies")
        s2s.history_ = s2s.val_scores_ = s2s.test_scores_ = s2s._val_examples = None
        s2s.baseline_scores_ = s2s._test_examples = None
        return s2s
