"""First-order optimisers whose whole state is a flat dict of named arrays, learning-rate
schedules and gradient clipping.

Parameters and gradients are dicts ``name -> array`` (see
:class:`ssimref.generative.mlp.MLP`); :meth:`step` returns the updated parameters and keeps
its own state in :attr:`state`, which a checkpoint stores and :meth:`load_state` restores,
so a resumed run continues exactly where it stopped. A :class:`Schedule` is a pure
function of the step number (no state to store), and :func:`clip_grad_norm` rescales a
gradient whose global norm exceeds a bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SGD", "Adam", "make_optimizer", "Schedule", "SCHEDULES", "clip_grad_norm",
           "global_norm"]


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum.

    ``v <- momentum v + g``, ``p <- p - lr v`` (with ``momentum = 0``: plain SGD). This is
    PyTorch's convention; the other common form ``v <- momentum v - lr g``, ``p <- p + v``
    gives the same iterates for a constant learning rate.

    Parameters
    ----------
    lr : float
    momentum : float, default 0.9 (Li et al. 2015)
    """

    def __init__(self, lr=0.01, momentum=0.9):
        if lr <= 0 or not 0.0 <= momentum < 1.0:
            raise ValueError(f"need lr > 0 and 0 <= momentum < 1, got lr={lr}, "
                             f"momentum={momentum}")
        self.lr, self.momentum = float(lr), float(momentum)
        self.state = {}

    def config(self):
        return {"name": "sgd", "lr": self.lr, "momentum": self.momentum}

    def step(self, params, grads, xp, lr=None):
        """Update ``params`` in place (and return them); ``lr`` overrides :attr:`lr` for
        this step (a schedule's value)."""
        lr = self.lr if lr is None else lr
        for name, g in grads.items():
            key = f"velocity.{name}"
            v = self.state.get(key)
            v = g if v is None else self.momentum * v + g
            self.state[key] = v
            params[name] = params[name] - lr * v
        return params

    def load_state(self, state):
        self.state = dict(state)


class Adam:
    """Adam (Kingma and Ba, ICLR 2015), with bias correction.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``, ``t <- t + 1``,
    ``p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.

    State: ``"m.<name>"``, ``"v.<name>"`` and ``"t"`` (a 0-d array, the step count).
    """

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        if lr <= 0 or not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0) or eps <= 0:
            raise ValueError(f"need lr > 0, 0 <= beta1, beta2 < 1 and eps > 0, got lr={lr}, "
                             f"beta1={beta1}, beta2={beta2}, eps={eps}")
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), \
            float(eps)
        self.state = {}

    def config(self):
        return {"name": "adam", "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2,
                "eps": self.eps}

    def step(self, params, grads, xp, lr=None):
        """Update ``params`` in place (and return them); ``lr`` overrides :attr:`lr` for
        this step (a schedule's value)."""
        lr = self.lr if lr is None else lr
        t = int(self.state["t"]) + 1 if "t" in self.state else 1
        self.state["t"] = xp.asarray(t)
        correction1 = 1.0 - self.beta1 ** t
        correction2 = 1.0 - self.beta2 ** t
        for name, g in grads.items():
            m = self.state.get(f"m.{name}")
            v = self.state.get(f"v.{name}")
            m = (1.0 - self.beta1) * g if m is None else self.beta1 * m + (1.0 - self.beta1) * g
            v = ((1.0 - self.beta2) * (g * g) if v is None
                 else self.beta2 * v + (1.0 - self.beta2) * (g * g))
            self.state[f"m.{name}"], self.state[f"v.{name}"] = m, v
            step = (m / correction1) / (xp.sqrt(v / correction2) + self.eps)
            params[name] = params[name] - lr * step
        return params

    def load_state(self, state):
        self.state = dict(state)


def make_optimizer(name, **options):
    """``"adam"`` or ``"sgd"`` with keyword options (``lr``, ``momentum``, ...)."""
    if name == "adam":
        return Adam(**options)
    if name == "sgd":
        return SGD(**options)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


SCHEDULES = ("constant", "cosine", "linear", "step")


@dataclass(frozen=True)
class Schedule:
    """Learning-rate factor as a function of the step: ``lr_t = lr * factor(t)``.

    ``t = 0, 1, ...`` counts the updates made before the current one. The first ``warmup``
    updates ramp linearly, ``factor = (t + 1) / warmup``; after them, with
    ``s = t - warmup`` and ``S = max(total - warmup, 1)``:

    - "constant": 1;
    - "cosine": ``final + (1 - final) (1 + cos(pi min(s, S) / S)) / 2`` (Loshchilov and
      Hutter 2017, one cycle without restarts), from 1 down to ``final``;
    - "linear": ``1 - (1 - final) min(s, S) / S``;
    - "step": ``gamma ** floor(s / step_size)``.

    Parameters
    ----------
    name : {"constant", "cosine", "linear", "step"}
    total : int
        Updates of the training phase (the decay's length).
    warmup : int, default 0
    final : float, default 0.0
        The last factor of "cosine" and "linear".
    step_size : int, default 1000
    gamma : float, default 0.5
    """

    name: str = "constant"
    total: int = 1
    warmup: int = 0
    final: float = 0.0
    step_size: int = 1000
    gamma: float = 0.5

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.name!r}")
        if self.warmup < 0 or self.total < 0 or self.step_size < 1:
            raise ValueError(f"need warmup >= 0, total >= 0 and step_size >= 1, got "
                             f"warmup={self.warmup}, total={self.total}, "
                             f"step_size={self.step_size}")
        if not 0.0 <= self.final <= 1.0 or not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"need 0 <= final <= 1 and 0 < gamma <= 1, got "
                             f"final={self.final}, gamma={self.gamma}")

    def factor(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / self.warmup
        s, span = t - self.warmup, max(self.total - self.warmup, 1)
        if self.name == "constant":
            return 1.0
        if self.name == "step":
            return self.gamma ** (s // self.step_size)
        progress = min(s, span) / span
        if self.name == "linear":
            return 1.0 - (1.0 - self.final) * progress
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def global_norm(grads, xp):
    """``sqrt(sum of squares)`` over every array of ``grads`` (a dict of arrays)."""
    return math.sqrt(sum(float(xp.sum(g * g)) for g in grads.values()))


def clip_grad_norm(grads, max_norm, xp):
    """Rescale ``grads`` so that their global norm is at most ``max_norm``.

    ``g <- g max_norm / ||g||`` when ``||g|| > max_norm`` (the norm over all arrays
    together, as ``torch.nn.utils.clip_grad_norm_`` without its ``1e-6``); unchanged
    otherwise, and always when ``max_norm`` is None or 0.

    Returns
    -------
    grads : dict
        A new dict (the input arrays are not modified).
    norm : float
        The global norm before clipping.
    """
    norm = global_norm(grads, xp)
    if not max_norm or norm <= max_norm:
        return dict(grads), norm
    scale = max_norm / norm
    return {k: g * scale for k, g in grads.items()}, norm
