"""A small multilayer perceptron with hand-written forward and backward passes.

Layers act on row-major batches ``(n, features)``. Every layer's backward pass is the exact
vector-Jacobian product of its forward pass (tested against central finite differences):

=========  ==========================  =================================================
layer      forward                     backward (``gy`` = cotangent of the output)
=========  ==========================  =================================================
Linear     ``y = x W + b``             ``gx = gy W^T``, ``gW = x^T gy``, ``gb = 1^T gy``
ReLU       ``y = max(x, 0)``           ``gx = gy [x > 0]`` (subgradient 0 at ``x = 0``)
LeakyReLU  ``y = x`` (x > 0),          ``gx = gy`` (x > 0), ``a gy`` otherwise
           ``a x`` otherwise
Sigmoid    ``y = 1 / (1 + e^{-x})``    ``gx = gy y (1 - y)``
Tanh       ``y = tanh x``              ``gx = gy (1 - y^2)``
Dropout    ``y = x m / (1 - p)``       ``gx = gy m / (1 - p)``; ``m_ij ~ Bernoulli(1-p)``
           (training only)             (identity when not training)
=========  ==========================  =================================================

:func:`reparameterize` is the VAE's sampling step ``z = mu + exp(logvar / 2) eps`` with its
vector-Jacobian product.

An :class:`MLP` keeps its parameters in a flat dict of named arrays
(``"layer0.weight"``, ``"layer0.bias"``, ...), which optimisers update and checkpoints
store as they are. Arrays come from any array-API namespace (NumPy, CuPy); random numbers
(initialisation, dropout masks) are drawn on the host from a NumPy ``Generator`` so that
a seed gives the same network on every backend.

References
----------
He, Zhang, Ren, Sun, "Delving deep into rectifiers", ICCV 2015 (initialisation for ReLU).
Glorot, Bengio, "Understanding the difficulty of training deep feedforward neural
networks", AISTATS 2010.
Srivastava et al., "Dropout", JMLR 15, 2014 (inverted dropout as used here).
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import float_dtype

__all__ = ["Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "MLP", "ACTIVATIONS",
           "reparameterize", "reparameterize_vjp", "sigmoid"]


class Linear:
    """Affine layer ``y = x W + b`` with ``W`` of shape ``(n_in, n_out)``.

    Parameters
    ----------
    n_in, n_out : int
    init : {"he", "glorot"}
        "he": ``W ~ N(0, 2 / n_in)`` (for layers followed by ReLU); "glorot":
        ``W ~ U(-a, a)``, ``a = sqrt(6 / (n_in + n_out))`` (sigmoid, tanh, linear output).
        Biases start at 0.
    """

    has_params = True

    def __init__(self, n_in, n_out, init="glorot"):
        if init not in ("he", "glorot"):
            raise ValueError(f"init must be 'he' or 'glorot', got {init!r}")
        self.n_in, self.n_out, self.init = int(n_in), int(n_out), init

    def __repr__(self):
        return f"Linear({self.n_in}, {self.n_out}, init={self.init!r})"

    def init_params(self, rng):
        if self.init == "he":
            weight = rng.normal(0.0, math.sqrt(2.0 / self.n_in), size=(self.n_in, self.n_out))
        else:
            limit = math.sqrt(6.0 / (self.n_in + self.n_out))
            weight = rng.uniform(-limit, limit, size=(self.n_in, self.n_out))
        return {"weight": weight, "bias": np.zeros(self.n_out)}

    def forward(self, params, x, xp, training, rng):
        return x @ params["weight"] + params["bias"], x

    def backward(self, params, x, gy, xp):
        return gy @ params["weight"].T, {"weight": x.T @ gy, "bias": xp.sum(gy, axis=0)}


class _Activation:
    has_params = False

    def __repr__(self):
        return f"{type(self).__name__}()"

    def init_params(self, rng):
        return {}


class ReLU(_Activation):
    """``max(x, 0)``; its derivative is taken as 0 at ``x = 0``."""

    def forward(self, params, x, xp, training, rng):
        positive = x > 0
        return xp.where(positive, x, xp.zeros_like(x)), positive

    def backward(self, params, positive, gy, xp):
        return xp.where(positive, gy, xp.zeros_like(gy)), {}


class LeakyReLU(_Activation):
    """``x`` for ``x > 0``, ``slope x`` otherwise (slope 0.2 by default, as in GAN
    discriminators); its derivative is taken as ``slope`` at ``x = 0``."""

    def __init__(self, slope=0.2):
        if not 0.0 <= slope < 1.0:
            raise ValueError(f"LeakyReLU slope must be in [0, 1), got {slope}")
        self.slope = float(slope)

    def __repr__(self):
        return f"LeakyReLU({self.slope})"

    def forward(self, params, x, xp, training, rng):
        positive = x > 0
        return xp.where(positive, x, self.slope * x), positive

    def backward(self, params, positive, gy, xp):
        return xp.where(positive, gy, self.slope * gy), {}


def sigmoid(x, xp):
    """The logistic function ``1 / (1 + e^{-x})`` without overflow for large ``|x|``."""
    e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class Sigmoid(_Activation):
    """Logistic function, evaluated without overflow for large ``|x|``."""

    def forward(self, params, x, xp, training, rng):
        y = sigmoid(x, xp)
        return y, y

    def backward(self, params, y, gy, xp):
        return gy * y * (1.0 - y), {}


class Tanh(_Activation):
    def forward(self, params, x, xp, training, rng):
        y = xp.tanh(x)
        return y, y

    def backward(self, params, y, gy, xp):
        return gy * (1.0 - y * y), {}


class Dropout(_Activation):
    """Inverted dropout with drop probability ``p``: active only when training."""

    def __init__(self, p):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def __repr__(self):
        return f"Dropout({self.p})"

    def forward(self, params, x, xp, training, rng):
        if not training or self.p == 0.0:
            return x, None
        if rng is None:
            raise ValueError("Dropout in training mode needs rng (a numpy.random.Generator)")
        keep = rng.random(tuple(x.shape)) >= self.p
        scale = xp.asarray(keep / (1.0 - self.p), dtype=x.dtype)
        return x * scale, scale

    def backward(self, params, scale, gy, xp):
        return (gy if scale is None else gy * scale), {}


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh,
               "linear": None}


def reparameterize(mu, logvar, eps, xp):
    """The reparameterisation ``z = mu + exp(logvar / 2) eps`` (Kingma and Welling 2014).

    Parameters
    ----------
    mu, logvar : arrays (n, k)
        Mean and log-variance of the diagonal Gaussian ``q(z | x)``.
    eps : array (n, k)
        Standard normal draws.

    Returns
    -------
    z : array (n, k)
    std : array (n, k)
        ``exp(logvar / 2)``, which :func:`reparameterize_vjp` needs.
    """
    std = xp.exp(0.5 * logvar)
    return mu + std * eps, std


def reparameterize_vjp(gz, std, eps):
    """Cotangents ``(g_mu, g_logvar)`` of :func:`reparameterize` for the cotangent ``gz``
    of ``z``: ``dz/dmu = 1`` and ``dz/dlogvar = eps exp(logvar / 2) / 2``."""
    return gz, 0.5 * gz * std * eps


class MLP:
    """A stack of layers with parameters in one flat dict of named arrays.

    Parameters
    ----------
    layers : sequence of layer objects (:class:`Linear`, :class:`ReLU`, ...)

    Attributes
    ----------
    params : dict[str, array]
        ``"layer{i}.weight"`` ``(n_in, n_out)`` and ``"layer{i}.bias"`` ``(n_out,)`` for
        every :class:`Linear` at position ``i``; set by :meth:`init` or assignment.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        self.params = {}

    @classmethod
    def from_sizes(cls, sizes, hidden="relu", output="sigmoid", dropout=0.0,
                   input_dropout=0.0):
        """A fully connected network ``sizes[0] -> ... -> sizes[-1]``.

        Parameters
        ----------
        sizes : sequence of int, at least two
        hidden : {"relu", "leaky_relu", "sigmoid", "tanh"}
            Activation after every hidden linear layer ("leaky_relu": slope 0.2).
        output : {"sigmoid", "tanh", "relu", "leaky_relu", "linear"}
            Activation after the last linear layer ("linear": none).
        dropout : float
            Dropout after every hidden activation.
        input_dropout : float
            Dropout on the input (a denoising autoencoder's corruption).

        Linear layers followed by (leaky) ReLU get He initialisation, the others Glorot.
        """
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output size, got {sizes}")
        for name, act in (("hidden", hidden), ("output", output)):
            if act not in ACTIVATIONS or (name == "hidden" and act == "linear"):
                raise ValueError(f"{name} activation must be one of "
                                 f"{sorted(ACTIVATIONS)}, got {act!r}")
        layers = [Dropout(input_dropout)] if input_dropout else []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            act = hidden if i < len(sizes) - 2 else output
            layers.append(Linear(a, b, init="he" if act in ("relu", "leaky_relu") else "glorot"))
            if ACTIVATIONS[act] is not None:
                layers.append(ACTIVATIONS[act]())
            if dropout and i < len(sizes) - 2:
                layers.append(Dropout(dropout))
        return cls(layers)

    def __repr__(self):
        return f"MLP({self.layers})"

    @property
    def n_in(self):
        return next(layer.n_in for layer in self.layers if isinstance(layer, Linear))

    @property
    def n_out(self):
        return [layer.n_out for layer in self.layers if isinstance(layer, Linear)][-1]

    def init(self, rng, xp=np, dtype=None):
        """Draw fresh parameters from ``rng`` (a NumPy Generator) into namespace ``xp``
        with ``dtype`` (float64 when None); returns and stores :attr:`params`."""
        work = float_dtype(xp, dtype)
        params = {}
        for i, layer in enumerate(self.layers):
            for name, value in layer.init_params(rng).items():
                params[f"layer{i}.{name}"] = xp.asarray(value, dtype=work)
        self.params = params
        return params

    def _layer_params(self, i):
        prefix = f"layer{i}."
        return {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}

    def forward(self, x, xp, training=False, rng=None):
        """Output ``(n, n_out)`` and the tape the backward pass needs.

        ``training`` switches dropout on (masks drawn from ``rng``)."""
        tape = []
        for i, layer in enumerate(self.layers):
            x, saved = layer.forward(self._layer_params(i), x, xp, training, rng)
            tape.append(saved)
        return x, tape

    def forward_until(self, x, xp, stop):
        """The output of the first ``stop`` layers (no tape; inference mode): hidden
        activations used as features."""
        for i, layer in enumerate(self.layers[:stop]):
            x = layer.forward(self._layer_params(i), x, xp, False, None)[0]
        return x

    def __call__(self, x, xp, training=False, rng=None):
        return self.forward(x, xp, training, rng)[0]

    def backward(self, tape, gy, xp, need_params=True):
        """Vector-Jacobian product: ``(gx, grads)`` for the output cotangent ``gy``.

        ``grads`` has the keys of :attr:`params` (empty when ``need_params`` is False:
        a frozen network only passes gradients through to its input)."""
        grads = {}
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if layer.has_params and not need_params:
                gy = gy @ self.params[f"layer{i}.weight"].T
                continue
            gy, g = layer.backward(self._layer_params(i), tape[i], gy, xp)
            for name, value in g.items():
                grads[f"layer{i}.{name}"] = value
        return gy, grads
