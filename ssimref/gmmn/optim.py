"""First-order optimisers whose whole state is a flat dict of named arrays.

Parameters and gradients are dicts ``name -> array`` (see :class:`ssimref.gmmn.mlp.MLP`);
:meth:`step` returns the updated parameters and keeps its own state in :attr:`state`,
which a checkpoint stores and :meth:`load_state` restores, so a resumed run continues
exactly where it stopped.
"""

from __future__ import annotations

__all__ = ["SGD", "Adam", "make_optimizer"]


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

    def step(self, params, grads, xp):
        for name, g in grads.items():
            key = f"velocity.{name}"
            v = self.state.get(key)
            v = g if v is None else self.momentum * v + g
            self.state[key] = v
            params[name] = params[name] - self.lr * v
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

    def step(self, params, grads, xp):
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
            params[name] = params[name] - self.lr * step
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
