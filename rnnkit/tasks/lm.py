r"""Character-level language model: fit on a text; sample, score, evaluate, save and load.

The model is a :class:`~rnnkit.models.SequenceTagger` over character ids:

    e_t = E[c_t],   h_t = RNN(e_t, h_{t−1})   (L layers of LSTM/GRU/RNN)
    p(c_{t+1} | c_1..c_t) = softmax(W_hy h_t + b_y)

trained by truncated BPTT: the training text is cut into B contiguous streams,
each window of ``seq_len`` steps starts from the state the previous window ended
in (the :class:`~rnnkit.train.Trainer` with ``carry_state=True``), and every epoch
starts the streams at a different random offset. The last ``val_fraction`` of the
text (or ``val_text``) is held out for validation, early stopping and keeping the
best weights.

Metrics, over the N = len(text) − 1 characters that have a preceding context:

    nats per char  = −(1/N) Σ_t ln p(c_{t+1} | c_1..c_t)
    bits per char  = nats per char / ln 2        (log₂ |V| for a uniform guess)

Generation runs the model one step at a time (``SequenceTagger.step``), carrying
only the recurrent state. A character is chosen from the logits z by

    greedy         argmax_c z_c                              (temperature 0, top_k = 1)
    temperature τ  p ∝ exp(z / τ)                            (τ → 0: greedy; τ > 1: flatter)
    top_k = k      keep the k largest z, renormalise
    top_p = P      keep the most likely characters whose total probability first
                   reaches P, renormalise (nucleus sampling; Holtzman et al. 2020)

and beam search keeps the ``width`` continuations of highest total log-probability.

Characters not in the vocabulary (not seen by ``fit``) in a prompt or a text to
evaluate are left out of what the model reads, with a :class:`~rnnkit.errors.DataNote`
naming them (``evaluate`` counts them in "unseen_chars"), unless the model was built
with ``unknown_char``: then they map to that symbol (which the model only knows as "rare").

A saved model is a checkpoint directory (:mod:`rnnkit.io`): ``config.json`` (the
model config, and in ``meta``: ``"task": "lm"``, the vocabulary, the
CharLanguageModel parameters and the training text's character frequencies) and
``model.npz``. ``fit(out_dir=D)`` writes the run directory of :mod:`rnnkit.tasks.run`
(the Trainer's resumable checkpoints under ``D/train``).
"""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np

from rnnkit import io as rkio
from rnnkit._checks import NonFiniteError, check_positive_int
from rnnkit.data.text import CharVocab, split_text, stream_batches
from rnnkit.deadline import after_training, as_deadline, forward_seconds
from rnnkit.distributed import agree
from rnnkit.errors import CheckpointError, DivergenceError, ResourceLimitError, RnnkitError
from rnnkit.losses import log_softmax
from rnnkit.models import SequenceTagger, build
from rnnkit.models.base import index_state
from rnnkit.tasks.policy import Pace, plan_budget, time_step, train_config
from rnnkit.tasks._common import (check_cell, check_number, check_seed, check_task_dtype, restore_model,
                                  save_task)
from rnnkit.tasks.run import RunWriter, recover_model, training_meta, writes_files
from rnnkit.tasks.run import train_dir as run_train_dir
from rnnkit.train.callbacks import check_callbacks

__all__ = ["CharLanguageModel"]

TASK = "lm"
_LN2 = math.log(2.0)


_OVERFLOW = ("the model's weights make its values overflow to NaN or inf, so it cannot be used "
             "(did its training diverge? train again with a lower learning rate)")


@contextlib.contextmanager
def _overflow_guard():
    """Turn a NaN/inf inside the network (its weights overflow) into a DivergenceError."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            yield
    except NonFiniteError as exc:
        raise DivergenceError(_OVERFLOW) from exc


def _check_logits(logits: np.ndarray) -> None:
    if not np.isfinite(logits).all():
        raise DivergenceError(_OVERFLOW)


def _check_text(text, name: str, where: str, minimum: int = 2) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{where}: {name} must be a str, got {type(text).__name__}")
    if len(text) < minimum:
        raise RnnkitError(f"{where}: {name} needs at least {minimum} characters, got {len(text)}")
    return text


def _stream_shape(n: int, batch_size: int, seq_len: int) -> tuple[int, int]:
    """(streams, window) that fit ``n`` ids: at most batch_size streams of seq_len steps.

    A short text gets fewer streams first, then shorter windows, so any text of at
    least 2 characters can be trained and validated on.
    """
    T = min(seq_len, n - 1)
    B = max(1, min(batch_size, (n - 1) // T))
    return B, T


class CharLanguageModel:
    """A character-level recurrent language model with a scikit-learn-like interface.

    Args:
        cell: "lstm" (default), "gru", "rnn" or "rnn-relu".
        hidden_size, num_layers, embedding_dim: the network (default: sized at fit to
            the text and time limit, :mod:`rnnkit.tasks.lm_size`; without a time limit
            128 units in 2 layers; embedding 32).
        dropout: between layers and before the output layer (default: sized with the
            network, or 0 without a time limit).
        seq_len: window length of truncated BPTT (default 64).
        batch_size: parallel streams per batch (default 32; fewer for short texts).
        unknown_char: None (unseen characters are an error) or one character that
            unseen characters map to (added to the vocabulary).
        dtype: "float32" (default) or "float64".
        seed: seeds the weights, the data order and dropout (default 0).

    After :meth:`fit`: ``model_`` (the SequenceTagger), ``vocab_`` (CharVocab),
    ``history_`` (the Trainer's History).
    """

    def __init__(self, cell: str = "lstm", hidden_size: int | None = None, num_layers: int | None = None,
                 embedding_dim: int = 32, dropout: float | None = None, seq_len: int = 64, batch_size: int = 32,
                 unknown_char: str | None = None, dtype: str = "float32", seed: int = 0):
        where = "CharLanguageModel"
        self.cell = check_cell(cell, where)
        self.hidden_size = None if hidden_size is None else check_positive_int(hidden_size, "hidden_size", where)
        self.num_layers = None if num_layers is None else check_positive_int(num_layers, "num_layers", where)
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim", where)
        self.dropout = check_number(dropout, "dropout", where, 0.0, 0.999, allow_none=True)
        self.seq_len = check_positive_int(seq_len, "seq_len", where)
        self.batch_size = check_positive_int(batch_size, "batch_size", where)
        if unknown_char is not None and (not isinstance(unknown_char, str) or len(unknown_char) != 1):
            raise ValueError(f"{where}: unknown_char must be None or one character, got {unknown_char!r}")
        self.unknown_char = unknown_char
        self.dtype = check_task_dtype(dtype, where)
        self.seed = check_seed(seed, where)
        self.model_: SequenceTagger | None = None
        self.vocab_: CharVocab | None = None
        self.unigram_: np.ndarray | None = None
        self.history_ = None

    # -- parameters ------------------------------------------------------------------------
    def get_params(self) -> dict:
        """The constructor arguments (JSON-able)."""
        return {"cell": self.cell, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "embedding_dim": self.embedding_dim, "dropout": self.dropout, "seq_len": self.seq_len,
                "batch_size": self.batch_size, "unknown_char": self.unknown_char, "dtype": self.dtype,
                "seed": self.seed}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"CharLanguageModel({args})"

    @property
    def chars(self) -> list[str]:
        """The vocabulary, in id order."""
        self._check_fitted("chars")
        return list(self.vocab_.chars)

    def _resolve_size(self, n_chars: int, vocab_size: int, time_limit: float | None, probe: dict) -> None:
        """Fill the sizes left None: from the text and ``time_limit`` (:mod:`rnnkit.tasks.lm_size`),
        or 128 units in 2 layers without dropout when there is no time limit."""
        if None not in (self.hidden_size, self.num_layers, self.dropout):
            return
        if time_limit is None:
            chosen = {"hidden_size": 128, "num_layers": 2, "dropout": 0.0}
        else:
            from rnnkit.tasks.lm_size import REFERENCE, choose_size

            ref = SequenceTagger(cell=self.cell, hidden_size=REFERENCE[0], num_layers=REFERENCE[1],
                                 vocab_size=vocab_size, embedding_dim=self.embedding_dim, num_classes=vocab_size,
                                 dtype=self.dtype, seed=self.seed)
            chars = int(np.prod(probe["y"].shape))
            chosen = choose_size(n_chars, time_limit, time_step(ref, probe), chars, self.embedding_dim, vocab_size)
        for name in ("hidden_size", "num_layers", "dropout"):
            if getattr(self, name) is None:
                setattr(self, name, chosen[name])

    def _build_model(self, vocab_size: int) -> SequenceTagger:
        return SequenceTagger(cell=self.cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
                              vocab_size=vocab_size, embedding_dim=self.embedding_dim, num_classes=vocab_size,
                              dropout=self.dropout, dtype=self.dtype, seed=self.seed)

    # -- training ----------------------------------------------------------------------------
    def fit(self, text: str, val_text: str | None = None, val_fraction: float = 0.1, epochs: int | None = None,
            time_limit: float | None = None, max_steps: int | None = None, optimizer: str = "adam",
            lr: float = 2e-3, clip: float | None = 5.0, patience: int | None = None, k1: int | None = None,
            out_dir=None, quiet: bool = True, resume: bool = False, callback=None, callbacks=None,
            source: str | None = None, report: dict | None = None) -> "CharLanguageModel":
        """Train on ``text`` with truncated BPTT; returns self.

        Args:
            text: the training text (the last ``val_fraction`` of it validates unless
                ``val_text`` is given; ``val_fraction=0`` and no val_text: no validation).
            epochs, time_limit, max_steps: when to stop (whichever first). ``time_limit``
                (seconds, or a :class:`rnnkit.deadline.Deadline`) covers the whole call,
                the report included: training gets it less the report's time.
                With a time limit (and not resuming) the run follows
                :mod:`rnnkit.tasks.policy`: the network is sized to the text and the
                time, the steps are what fit in it, with warm-up and cosine decay,
                validation and patience (in validations) a fixed number of steps apart.
                Without one: ``epochs`` (default 20) passes at a constant rate.
            optimizer, lr, clip: "adam" (default), "adamw", "sgd", "rmsprop", "adagrad";
                the learning rate; the global gradient-norm bound (None: no clipping).
            patience: early stopping after that many validations without a better
                validation loss (default: 3 epochs, or the policy's with a time limit);
                the best weights are kept either way.
            k1: TBPTT(k1, seq_len): windows start k1 steps apart and the state after
                k1 steps is carried (default: seq_len, no overlap).
            out_dir: write the run directory (:mod:`rnnkit.tasks.run`): the model (kept
                current while training), ``train/``, ``metrics.json``, ``training.png``
                and ``report.html`` (with the samples a :class:`~rnnkit.tasks.lm_report.SamplePrinter`
                callback collected).
            quiet: no progress output. resume: continue the run in ``out_dir``.
            callback: ``callback(lm, info)`` after every epoch, e.g. to print a sample;
                ``info`` has "epoch" (1-based), "step", "val_loss" and "val_bits_per_char"
                (None without validation).
            callbacks: more :class:`~rnnkit.train.Callback` objects for the Trainer.
            source: what the text is, for the report (default: its length).
            report: more arguments of :func:`~rnnkit.tasks.lm_report.write_lm_report`
                (title, final_temperatures, sample_length); its summary is kept in ``report_``.
        """
        from rnnkit.tasks.lm_report import EpochCallback, write_lm_report
        from rnnkit.train import TrainConfig, Trainer   # the training loop only when training

        where = "CharLanguageModel.fit"
        deadline = as_deadline(time_limit, where)
        text = _check_text(text, "text", where)
        if val_text is not None:
            val_text = _check_text(val_text, "val_text", where)
            train_text = text
        elif val_fraction:
            train_text, val_text = split_text(text, val_fraction)
        else:
            train_text = text
        if callback is not None and not callable(callback):
            raise TypeError(f"{where}: callback must be callable (lm, info) -> None, got {type(callback).__name__}")
        if resume and out_dir is None:
            raise ValueError(f"{where}: resume=True needs the out_dir of the run to continue")
        if k1 is not None:
            k1 = check_positive_int(k1, "k1", where)

        # the vocabulary: a resumed run keeps the saved one (the weights' shapes depend on it)
        saved = None
        if resume and rkio.is_checkpoint(out_dir):
            saved = rkio.load_checkpoint(out_dir)
        if saved is not None and saved.meta.get("task") == TASK:
            vocab = CharVocab.from_dict(saved.meta.get("vocab"))
        else:
            vocab = CharVocab.from_text(train_text + (val_text or ""), unk=self.unknown_char)
            if len(vocab) < 2:
                raise RnnkitError(f"{where}: the text holds only one distinct character "
                                  f"({vocab.chars[0]!r}); there is nothing to predict")
        train_ids = self._encode_with(vocab, train_text, "text", where)
        val_ids = None if val_text is None else self._encode_with(vocab, val_text, "val_text", where)
        counts = np.bincount(train_ids, minlength=len(vocab)).astype(np.float64)

        self.vocab_, self.unigram_ = vocab, counts / counts.sum()
        B, T = _stream_shape(len(train_ids), self.batch_size, self.seq_len)
        carry_at = None if k1 is None or k1 >= T else k1
        sized = deadline.limited and not resume
        probe = next(iter(stream_batches(train_ids, B, T, k1=carry_at)))
        # the time after training: the model, the final samples, the report and its plot
        reserve = after_training(None, 1, figures=1) + 0.5
        # data parallel: rank 0's clock decides for every rank (the sizes and the plan must agree)
        self._resolve_size(len(train_ids), len(vocab), agree(deadline.for_training(reserve)) if sized else None,
                           probe)
        self.model_ = self._build_model(len(vocab))
        slack = (len(train_ids) - 1) - B * T                 # room for a random start offset

        def train_batches(epoch, rng):
            offset = int(rng.integers(0, min(slack, T - 1) + 1)) if slack > 0 else 0
            return list(stream_batches(train_ids, B, T, k1=carry_at, offset=offset))

        if sized:
            step_s, time_limit = time_step(self.model_, probe), agree(deadline.for_training(reserve))
        self.val_chars_ = (0, 0) if val_ids is None else (len(val_ids), len(val_ids))   # (scored, held out)
        val_batches = None
        if val_ids is not None:
            if sized:   # a validation pass takes at most its share of the time (15 % over 10 of them)
                val_ids = val_ids[:max(4 * B * T, int(0.015 * time_limit / forward_seconds(step_s, B * T)))]
                self.val_chars_ = (len(val_ids), self.val_chars_[1])
            # windows no longer than the training ones, cut with the same k1: the Trainer
            # carries the validation state exactly as in training
            Bv, Tv = _stream_shape(len(val_ids), self.batch_size, T)
            val_k1 = carry_at if carry_at is not None and carry_at < Tv else None
            val_batches = list(stream_batches(val_ids, Bv, Tv, k1=val_k1, drop_last=False))

        per_epoch = max(1, len(train_ids) // (B * T))
        pace = []
        if sized:
            budget = plan_budget(per_epoch, 1, time_limit=time_limit, step_seconds=step_s, evals=10, where=where)
            if max_steps is not None:
                budget.steps = min(budget.steps, max_steps)
            if epochs is not None:
                budget.steps = min(budget.steps, check_positive_int(epochs, "epochs", where) * per_epoch)
            if patience is not None:
                budget.patience = patience
            if max_steps is None and epochs is None:    # the step count follows the pace measured
                pace = [Pace(time_limit, plan_budget(per_epoch, 1, evals=10).steps, evals=10)]
            config = TrainConfig(**train_config(budget, lr=lr, time_limit=time_limit,
                                                has_validation=val_batches is not None, seed=self.seed, quiet=quiet,
                                                optimizer=optimizer, clip=clip, carry_state=True, tbptt_k1=carry_at,
                                                tbptt_k2=T))
        else:
            config = TrainConfig(epochs=check_positive_int(20 if epochs is None else epochs, "epochs", where),
                                 max_steps=max_steps, time_limit=deadline.for_training(reserve), optimizer=optimizer,
                                 lr=lr,
                                 clip_norm=clip, carry_state=True, tbptt_k1=carry_at, tbptt_k2=T,
                                 patience=(3 if patience is None else patience) if val_batches is not None else None,
                                 restore_best=True, seed=self.seed, quiet=quiet, log_every=max(1, min(50, per_epoch)))
        train_dir = run_train_dir(out_dir)
        self.history_ = None
        hooks = [] if out_dir is None else [RunWriter(out_dir, self._meta)]
        hooks += [] if callback is None else [EpochCallback(self, callback)]
        hooks += pace
        trainer = Trainer(self.model_, config, train_dir, callbacks=hooks + check_callbacks(callbacks, where))
        if out_dir is not None and saved is None:
            self.save(out_dir)          # the vocabulary is on disk from the start (for resume)
        self.history_ = trainer.fit(train_batches, val_batches, resume=resume)
        if out_dir is not None and writes_files():      # data parallel: rank 0 alone
            self.save(out_dir)
            self.report_ = write_lm_report(self, out_dir, source=source or f"{len(text):,} characters",
                            train_chars=len(train_text), val_text=val_text,
                            samples=getattr(callback, "collected", None), prompt=getattr(callback, "prompt", ""),
                            seed=self.seed, deadline=deadline, **(report or {}))
        return self

    # -- encoding ------------------------------------------------------------------------------
    def _check_fitted(self, what: str) -> None:
        if self.model_ is None:
            raise RnnkitError(f"CharLanguageModel.{what}: the model is not trained yet; call fit(text) "
                              f"or CharLanguageModel.load(directory) first")

    @staticmethod
    def _encode_with(vocab: CharVocab, text: str, name: str, where: str) -> np.ndarray:
        unseen = sorted({c for c in set(text) if c not in vocab})
        if unseen and vocab.unk is None:
            shown = ", ".join(repr(c) for c in unseen[:20]) + (f", … ({len(unseen)} in all)" if len(unseen) > 20 else "")
            raise RnnkitError(f"{where}: {name} has {len(unseen)} character(s) not seen in training: {shown}; "
                              f"the model can only read its vocabulary (build it with unknown_char=... to "
                              f"map unseen characters to one symbol)")
        return vocab.encode(text)

    def _readable(self, text: str, name: str) -> tuple[str, int]:
        """``text`` without the characters the model cannot read (none when it maps them to
        ``unknown_char``), and how many were left out; a :class:`~rnnkit.errors.DataNote`
        names them."""
        counts = {}
        if self.vocab_.unk is None:
            for ch in set(text):
                if ch not in self.vocab_:
                    counts[ch] = text.count(ch)
        if not counts:
            return text, 0
        import warnings

        from rnnkit.errors import DataNote

        left = sum(counts.values())
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{c!r} ({k}×)" for c, k in top[:10])
        shown += f", … ({len(top)} in all)" if len(top) > 10 else ""
        warnings.warn(DataNote(f"{name}: {left:,} character{'s' if left > 1 else ''} never seen in training left "
                               f"out of what the model reads: {shown}"), stacklevel=3)
        return "".join(ch for ch in text if ch not in counts), left

    # -- generation ------------------------------------------------------------------------------
    def _prime(self, prompt, where: str):
        """Logits for the first generated character and the state after the prompt.

        An empty prompt starts from the zero state and the training text's character
        frequencies (as log-probabilities) for the first character.
        """
        self._check_fitted(where.split(".")[-1])
        if prompt is None or prompt == "":
            return np.log(np.maximum(self.unigram_, 1e-300)), None
        if not isinstance(prompt, str):
            raise TypeError(f"{where}: prompt must be a str, got {type(prompt).__name__}")
        readable, _ = self._readable(prompt, "prompt")
        if not readable:
            return np.log(np.maximum(self.unigram_, 1e-300)), None
        ids = self.vocab_.encode(readable)
        out, state = self.model_.predict(ids[:, None])                       # (T, 1, V)
        return out[-1, 0].astype(np.float64), state

    def _choose(self, logits: np.ndarray, temperature: float, top_k, top_p, rng) -> int:
        if temperature == 0.0 or top_k == 1:
            return int(np.argmax(logits))
        z = logits.astype(np.float64) / temperature
        if top_k is not None and top_k < z.size:
            kth = np.partition(z, -top_k)[-top_k]
            z = np.where(z >= kth, z, -np.inf)
        p = np.exp(z - z.max())
        p /= p.sum()
        if top_p is not None and top_p < 1.0:
            order = np.argsort(-p, kind="stable")
            cum = np.cumsum(p[order])
            keep = int(np.searchsorted(cum, top_p)) + 1          # first prefix reaching top_p
            dropped = order[keep:]
            p[dropped] = 0.0
            p /= p.sum()
        return int(rng.choice(p.size, p=p))

    def sample(self, prompt: str | None = None, length: int = 200, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None) -> str:
        """Generate ``length`` characters after ``prompt`` (the prompt is not included).

        ``temperature`` 0 (or ``top_k=1``) is greedy decoding; ``seed`` makes the draw
        reproducible. Characters of the prompt outside the vocabulary are an RnnkitError.
        """
        return "".join(self.iter_sample(prompt, length, temperature, top_k, top_p, seed))

    def iter_sample(self, prompt: str | None = None, length: int = 200, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None, seed: int | None = None):
        """:meth:`sample` one character at a time, as it is drawn (for printing as it goes).

        Weights that make the network's values overflow (NaN or inf) are a
        DivergenceError, raised before the first character.
        """
        where = "CharLanguageModel.sample"
        length = check_positive_int(length, "length", where)
        temperature = check_number(temperature, "temperature", where, 0.0)
        if top_k is not None:
            top_k = check_positive_int(top_k, "top_k", where)
        top_p = check_number(top_p, "top_p", where, 0.0, 1.0, low_open=True, allow_none=True)
        rng = np.random.default_rng(seed)
        with _overflow_guard():
            logits, state = self._prime(prompt, where)
        for i in range(length):
            _check_logits(logits)
            c = self._choose(logits, temperature, top_k, top_p, rng)
            yield self.vocab_.chars[c]
            if i + 1 < length:
                with _overflow_guard():
                    step_out, state = self.model_.step(np.array([c]), state)
                logits = step_out[0]

    def greedy(self, prompt: str | None = None, length: int = 200) -> str:
        """The arg-max continuation of ``length`` characters (``sample`` at temperature 0)."""
        return self.sample(prompt, length, temperature=0.0)

    def beam(self, prompt: str | None = None, length: int = 50, width: int = 4) -> str:
        """The continuation of ``length`` characters with the highest total log-probability
        that a beam of ``width`` finds (width 1 is greedy decoding)."""
        where = "CharLanguageModel.beam"
        length = check_positive_int(length, "length", where)
        width = check_positive_int(width, "width", where)
        logits, state = self._prime(prompt, where)
        V = logits.size
        seqs = [[]]
        scores = np.zeros(1)
        logp = log_softmax(logits)[None]                                   # (1, V)
        for t in range(length):
            if t > 0:
                out, state = self.model_.step(np.array([s[-1] for s in seqs]), state)
                logp = log_softmax(out.astype(np.float64))                  # (n, V)
            cand = (scores[:, None] + logp).reshape(-1)
            top = np.argsort(-cand, kind="stable")[:width]
            rows, chars = top // V, top % V
            seqs = [seqs[r] + [int(c)] for r, c in zip(rows, chars)]
            scores = cand[top]
            if state is not None:
                state = index_state(state, rows)
        return self.vocab_.decode(np.asarray(seqs[int(np.argmax(scores))], dtype=np.int64))

    def next_char_proba(self, prompt: str | None = None) -> np.ndarray:
        """p(next character | prompt) over the vocabulary (``chars`` order).

        Shapes:
            -> (V,) float64, sums to 1
        """
        logits, _ = self._prime(prompt, "CharLanguageModel.next_char_proba")
        return np.exp(log_softmax(logits))

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, text: str, chunk: int = 256, name: str = "text") -> dict:
        """Exact per-character cross-entropy of ``text`` read as one stream from the zero state.

        Returns {"nats_per_char", "bits_per_char", "chars", "unseen_chars"} where "chars" is
        the number of predicted characters, len(text) − 1 of the characters the model can
        read, and "unseen_chars" the characters it cannot (never seen in training, without
        ``unknown_char``), left out of the stream (a :class:`~rnnkit.errors.DataNote` under
        ``name`` says which).
        """
        where = "CharLanguageModel.evaluate"
        self._check_fitted("evaluate")
        text = _check_text(text, "text", where)
        chunk = check_positive_int(chunk, "chunk", where)
        text, unseen = self._readable(text, name)
        if len(text) < 2:
            raise RnnkitError(f"{where}: {name} has {len(text)} character(s) the model can read; scoring needs "
                              f"at least 2")
        ids = self.vocab_.encode(text)
        n = len(ids) - 1
        nll, state = 0.0, None
        for start in range(0, n, chunk):
            x = ids[start:min(start + chunk, n)]
            y = ids[start + 1:start + 1 + len(x)]
            with _overflow_guard():
                out, state = self.model_.predict(x[:, None], state=state)      # (t, 1, V)
                logp = log_softmax(out[:, 0].astype(np.float64))
                nll -= float(logp[np.arange(len(x)), y].sum())
        nats = nll / n
        if not math.isfinite(nats):
            raise DivergenceError(_OVERFLOW)
        return {"nats_per_char": nats, "bits_per_char": nats / _LN2, "chars": n, "unseen_chars": unseen}

    def predict(self, prompts, length: int = 200, temperature: float = 0.0, seed: int | None = None) -> list[str]:
        """The continuation of ``length`` characters of every prompt (greedy by default;
        see :meth:`sample`)."""
        if isinstance(prompts, str):
            raise TypeError("CharLanguageModel.predict: prompts must be a list of strings, got one str "
                            "(wrap it in a list, or use sample)")
        return [self.sample(p, length, temperature=temperature, seed=seed) for p in prompts]

    def predict_file(self, path, length: int = 200) -> str:
        """A CSV (prompt, continuation) of the greedy continuation of every non-blank line of
        a text file."""
        from rnnkit.data.text import read_lines
        from rnnkit.tasks.run import csv_text

        self._check_fitted("predict_file")
        prompts = read_lines(path, "prompt file")
        return csv_text(["prompt", "continuation"], zip(prompts, self.predict(prompts, length)))

    def evaluate_file(self, path) -> dict:
        """:meth:`evaluate` on a text file (or a directory of them, as ``train-lm`` reads):
        nats and bits per character."""
        from rnnkit.data.text import read_texts

        self._check_fitted("evaluate_file")
        return self.evaluate(read_texts([path]), name=os.fspath(path))

    def score(self, text: str) -> float:
        """Negative bits per character of ``text`` (higher is better, as scikit-learn scores)."""
        return -self.evaluate(text)["bits_per_char"]

    # -- files ---------------------------------------------------------------------------------------
    def save(self, directory) -> str:
        """Write the model to ``directory`` (config.json + model.npz, atomically); returns the path."""
        self._check_fitted("save")
        h = self.history_
        return save_task(directory, self.model_,
                         {**self._meta(), "training": training_meta(h, finished=h is not None and not h.interrupted)})

    def _meta(self) -> dict:
        """The task's meta for config.json: parameters, vocabulary, character frequencies."""
        return {"task": TASK, "kind": "model", "vocab": self.vocab_.to_dict(), "params": self.get_params(),
                "unigram": [float(p) for p in self.unigram_]}

    @staticmethod
    def run_params(directory) -> dict:
        """The parameters of the language-model run in ``directory``, which
        ``fit(out_dir=directory, resume=True)`` continues; a CheckpointError when the
        directory holds no training checkpoint or another task's run."""
        directory = os.fspath(directory)
        if not rkio.is_checkpoint(os.path.join(directory, "train")):
            raise CheckpointError(f"{directory} holds no training checkpoint "
                                  f"({os.path.join(directory, 'train', rkio.CONFIG_FILE)} is missing)")
        meta = rkio.load_json(os.path.join(directory, rkio.CONFIG_FILE)).get("meta", {})
        if meta.get("task") != TASK or not isinstance(meta.get("params"), dict):
            raise CheckpointError(f"{directory} holds a model of task {meta.get('task')!r}, not a character "
                                  f"language model")
        return dict(meta["params"])

    @classmethod
    def load(cls, directory, quantize: str | None = None) -> "CharLanguageModel":
        """Read a model written by :meth:`save` (or by ``fit(out_dir=...)``).

        ``quantize="int8"`` runs the recurrent layers with int8 weights
        (:mod:`rnnkit.layers.quantized`): a generation step reads a quarter of the
        bytes and is faster; the held-out loss moves by far less than 0.01 nats/char.
        The model is then for sampling and evaluating only (``fit`` trains anew).

        A directory that is not a character language model, or whose files do not
        match, is a CheckpointError naming it.
        """
        from rnnkit.layers.quantized import check_quantize, quantize_model

        quantize = check_quantize(quantize, "CharLanguageModel.load")
        directory = os.fspath(directory)
        recover_model(directory)
        ckpt = rkio.load_checkpoint(directory)
        meta = ckpt.meta
        if meta.get("task") != TASK:
            raise CheckpointError(f"{directory}: not a character language model (config.json meta has "
                                  f"task={meta.get('task')!r}, expected {TASK!r})")
        try:
            lm = cls(**meta["params"])
            vocab = CharVocab.from_dict(meta["vocab"])
            model = build(ckpt.config)
            unigram = np.asarray(meta["unigram"], dtype=np.float64)
        except (KeyError, TypeError, ValueError, AttributeError, ResourceLimitError) as exc:
            raise CheckpointError(f"{directory}: config.json does not describe a valid model: {exc}") from exc
        if not isinstance(model, SequenceTagger) or model.inp.vocab_size != len(vocab) \
                or unigram.shape != (len(vocab),):
            raise CheckpointError(f"{directory}: the model, vocabulary ({len(vocab)} characters) and "
                                  f"character frequencies do not match")
        lm.model_, lm.vocab_, lm.unigram_ = restore_model(directory, ckpt, model), vocab, unigram
        if quantize is not None:
            if lm.dtype != "float32":
                raise RnnkitError(f"{directory}: int8 weights are for float32 models, this one is {lm.dtype}")
            quantize_model(lm.model_, quantize)
        return lm
