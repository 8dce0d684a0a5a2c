"""The textbook character RNN: learn to predict "ello" from "hell".

Vocabulary h, e, l, o; one-hot inputs; a vanilla tanh Recurrent and a Linear head;
softmax cross-entropy and plain SGD written out here. The only way to fit the
targets is through the layers' gradients: "l" must be followed by "l" the first
time and by "o" the second, which only the recurrent state can tell apart.
"""

import numpy as np

import rnnkit as rk

VOCAB = "helo"
STEPS, LR = 300, 0.5
LOSS_BELOW = 0.01   # training only the head (frozen RNN) stalls near 0.16 here


def one_hot(text: str) -> np.ndarray:
    """(T, 1, V): time-major, a batch of one sequence."""
    x = np.zeros((len(text), 1, len(VOCAB)))
    x[np.arange(len(text)), 0, [VOCAB.index(ch) for ch in text]] = 1.0
    return x


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray):
    """Mean over the T·B positions; returns (loss, dlogits).

    p = softmax(z), L = −mean log p[target], dL/dz = (p − onehot(target)) / N.
    """
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    n = targets.size
    picked = np.take_along_axis(p, targets[..., None], axis=-1)[..., 0]
    d = p.copy()
    np.put_along_axis(d, targets[..., None], np.take_along_axis(d, targets[..., None], axis=-1) - 1.0, axis=-1)
    return float(-np.log(picked).mean()), d / n


def test_char_rnn_learns_hello():
    x = one_hot("hell")
    targets = np.array([[VOCAB.index(ch)] for ch in "ello"])          # (T, 1)
    rnn = rk.Recurrent("rnn", len(VOCAB), 8, dtype=np.float64, seed=0)
    head = rk.Linear(8, len(VOCAB), dtype=np.float64, seed=1)
    params = {**{f"rnn.{k}": v for k, v in rnn.params.items()}, **{f"head.{k}": v for k, v in head.params.items()}}

    def step():
        h, _ = rnn.forward(x)
        loss, dlogits = softmax_cross_entropy(head.forward(h), targets)
        rnn.zero_grad()
        head.zero_grad()
        rnn.backward(head.backward(dlogits))
        return loss

    losses = [step()]
    for _ in range(STEPS):
        grads = {**{f"rnn.{k}": v for k, v in rnn.grads.items()}, **{f"head.{k}": v for k, v in head.grads.items()}}
        for k, p in params.items():                 # plain SGD, in place on the live arrays
            p -= LR * grads[k]
        losses.append(step())

    h, _ = rnn.forward(x)
    predicted = "".join(VOCAB[i] for i in head.forward(h).argmax(axis=-1)[:, 0])
    assert predicted == "ello"
    assert losses[0] > 1.0                          # it started near chance, log 4 ≈ 1.39
    assert losses[-1] < LOSS_BELOW
