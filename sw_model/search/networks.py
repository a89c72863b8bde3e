"""The small NumPy networks of the search agents: :class:`MLP`, :class:`Adam` and
:func:`log_softmax`."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int, check_real

__all__ = ["MLP", "Adam", "log_softmax"]

class MLP:
    """A fully connected network: tanh hidden layers, a linear output.

    Parameters
    ----------
    sizes : sequence of int
        ``[inputs, hidden..., outputs]`` (at least two entries, each ``>= 1``).
    rng : numpy.random.Generator
        Initialisation: ``W ~ N(0, 1 / fan_in)``, biases 0.
    out_scale : float
        Multiplies the last layer's initial weights (small for a near-uniform policy).

    Attributes
    ----------
    params : list of numpy.ndarray
        ``[W1, b1, W2, b2, ...]``, ``Wk`` of shape ``(in, out)``; updated in place.
    """

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator, *,
                 out_scale: float = 1.0) -> None:
        sizes = [check_int(s, "sizes entry", minimum=1) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes must have at least 2 entries, not {sizes!r}")
        self.sizes = tuple(sizes)
        self.params: list[np.ndarray] = []
        for k, (i, o) in enumerate(itertools.pairwise(sizes)):
            w = rng.standard_normal((i, o)) / math.sqrt(i)
            if k == len(sizes) - 2:
                w *= out_scale
            self.params += [w, np.zeros(o)]
        self._xs: list[np.ndarray] = []

    def forward(self, x: npt.ArrayLike) -> np.ndarray:
        """Outputs ``(B, outputs)`` of inputs ``(B, inputs)``; keeps what :meth:`backward` needs."""
        h = np.asarray(x, dtype=np.float64)
        self._xs = [h]
        n = len(self.params) // 2
        for k in range(n):
            h = h @ self.params[2 * k] + self.params[2 * k + 1]
            if k < n - 1:
                h = np.tanh(h)
            self._xs.append(h)
        return h

    def backward(self, d_out: npt.ArrayLike) -> tuple[list[np.ndarray], np.ndarray]:
        """Gradients of ``sum(d_out * outputs)`` of the last :meth:`forward`: (params, inputs)."""
        d = np.asarray(d_out, dtype=np.float64)
        n = len(self.params) // 2
        grads: list[np.ndarray] = [np.empty(0)] * len(self.params)
        for k in range(n - 1, -1, -1):
            if k < n - 1:
                d = d * (1.0 - self._xs[k + 1] ** 2)
            grads[2 * k] = self._xs[k].T @ d
            grads[2 * k + 1] = d.sum(axis=0)
            d = d @ self.params[2 * k].T
        return grads, d


class Adam:
    """Adam (Kingma & Ba) over a list of arrays, updated in place.

    Parameters
    ----------
    params : list of numpy.ndarray
    lr : float
        Step size ``> 0``.
    betas : tuple of float
    eps : float
    """

    def __init__(self, params: list[np.ndarray], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = params
        self.lr = check_real(lr, "lr", minimum=0.0, min_open=True)
        self.betas = betas
        self.eps = eps
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update with ``grads`` (same shapes as ``params``)."""
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log(softmax(logits))`` along the last axis, computed stably."""
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
