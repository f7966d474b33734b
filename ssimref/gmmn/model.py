"""Generative moment-matching networks (GMMN, GMMN+AE, conditional GMMN) and the
autoencoder of the code-space variant, with hand-written backpropagation.

A GMMN (Li, Swersky, Zemel, ICML 2015) maps prior samples ``z ~ U[-1, 1]^h`` through an
MLP generator ``g`` and trains it by minimising the MMD between a generated batch
``X = g(Z)`` and a data batch ``Y``::

    loss = sqrt(MMD^2(X, Y))    (Li et al.'s choice; or MMD^2 itself)
    dloss/dtheta = (dloss/dX) (dX/dtheta)            (MMD gradient, then backprop)

The MMD gradient ``dloss/dX`` comes from :func:`ssimref.mmd.mmd2_and_grad` for any
kernel object (an RBF mixture on vectors, or an SSIM kernel on image stacks); the
conditional model (Ren, Li, Luo, Zhu, NIPS 2016) feeds ``[z, onehot(label)]`` to the
generator and minimises CMMD with :func:`ssimref.mmd.cmmd2_and_grad`, the labels of
the data batch being the shared conditions.

In code space (GMMN+AE) the generator produces autoencoder codes. With a kernel on
vectors the MMD compares generated codes with the codes of data; with a kernel on images
the codes are decoded by the frozen decoder, the kernel compares decoded images with the
decoded codes of data (the reconstructions), and the gradient flows from the kernel back
through the decoder (its parameters fixed) into the generator.
"""

from __future__ import annotations

import numpy as np

from ..generative.mlp import MLP
from ..mmd import cmmd2_and_grad, mmd2_and_grad

__all__ = ["GMMN", "Autoencoder", "LOSSES"]

LOSSES = ("sqrt", "mmd2")


def _prefixed(prefix, params):
    return {f"{prefix}.{k}": v for k, v in params.items()}


def _unprefixed(prefix, params):
    start = len(prefix) + 1
    return {k[start:]: v for k, v in params.items() if k.startswith(prefix + ".")}


class Autoencoder:
    """An MLP autoencoder ``n_pixels -> hidden -> code_dim -> hidden -> n_pixels``.

    ReLU hidden units, sigmoid codes in (0, 1) and sigmoid outputs; dropout with
    probability ``dropout`` on the encoder's input while training (a denoising
    autoencoder, as Li et al. train theirs). Loss: the mean over the batch of the squared
    error ``||decode(encode(x)) - x||^2``.
    """

    def __init__(self, n_pixels=64, hidden=256, code_dim=16, dropout=0.1):
        self.encoder = MLP.from_sizes([n_pixels, hidden, code_dim], hidden="relu",
                                      output="sigmoid", input_dropout=dropout)
        self.decoder = MLP.from_sizes([code_dim, hidden, n_pixels], hidden="relu",
                                      output="sigmoid")
        self.code_dim = code_dim

    def init(self, rng, xp, dtype=None):
        self.encoder.init(rng, xp, dtype)
        self.decoder.init(rng, xp, dtype)
        return self.params

    @property
    def params(self):
        return {**_prefixed("encoder", self.encoder.params),
                **_prefixed("decoder", self.decoder.params)}

    @params.setter
    def params(self, params):
        self.encoder.params = _unprefixed("encoder", params)
        self.decoder.params = _unprefixed("decoder", params)

    def encode(self, x, xp):
        """Codes ``(n, code_dim)`` of pixel vectors ``(n, n_pixels)`` (no dropout)."""
        return self.encoder(x, xp)

    def decode(self, codes, xp):
        return self.decoder(codes, xp)

    def loss_and_grad(self, x, xp, rng):
        """``(loss, grads)`` on a batch ``x`` ``(n, n_pixels)``, dropout masks from ``rng``."""
        codes, enc_tape = self.encoder.forward(x, xp, training=True, rng=rng)
        recon, dec_tape = self.decoder.forward(codes, xp, training=True, rng=rng)
        n = x.shape[0]
        diff = recon - x
        loss = xp.sum(diff * diff) / n
        g_codes, dec_grads = self.decoder.backward(dec_tape, (2.0 / n) * diff, xp)
        _, enc_grads = self.encoder.backward(enc_tape, g_codes, xp)
        return float(loss), {**_prefixed("encoder", enc_grads),
                             **_prefixed("decoder", dec_grads)}


class GMMN:
    """A (conditional) generative moment-matching network.

    Parameters
    ----------
    kernel : kernel object
        With ``gram(X, Y)`` and ``gram_vjp`` (:mod:`ssimref.kernels.protocol`).
    noise_dim : int
        Dimension ``h`` of the uniform prior on ``[-1, 1]^h``.
    hidden : sequence of int
        Hidden layer widths of the generator (ReLU).
    out_dim : int
        Generator output: pixels in data space, codes in code space (sigmoid outputs).
    image_shape : tuple (H, W)
        Shape of one image (pixels are the generator output, or the decoder's, reshaped).
    kernel_on_images : bool
        The kernel takes image stacks ``(n, H, W)`` (SSIM kernels) rather than vectors.
    decoder : MLP, optional
        Frozen decoder of an autoencoder: the generator then produces codes.
    n_classes : int, default 0
        ``> 0`` makes the model conditional: input ``[z, onehot(label)]``, loss CMMD.
    loss : {"sqrt", "mmd2"}
        Minimise ``sqrt(max(MMD^2, 0))`` (Li et al.) or ``MMD^2``.
    estimator : {"biased", "unbiased", "linear"}
        MMD^2 estimator (unconditional models).
    lam : float
        CMMD regulariser ``lambda`` (conditional models).
    """

    def __init__(self, kernel, *, noise_dim=10, hidden=(64, 256, 256), out_dim=64,
                 image_shape=(8, 8), kernel_on_images=False, decoder=None, n_classes=0,
                 loss="sqrt", estimator="biased", lam=1e-3):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.kernel, self.noise_dim, self.n_classes = kernel, int(noise_dim), int(n_classes)
        self.image_shape, self.kernel_on_images = tuple(image_shape), bool(kernel_on_images)
        self.decoder, self.loss, self.estimator, self.lam = decoder, loss, estimator, lam
        self.generator = MLP.from_sizes([self.noise_dim + self.n_classes, *hidden, out_dim],
                                        hidden="relu", output="sigmoid")

    @property
    def conditional(self):
        return self.n_classes > 0

    def init(self, rng, xp, dtype=None):
        return self.generator.init(rng, xp, dtype)

    def prior(self, rng, n):
        """``n`` draws from ``U[-1, 1]^noise_dim`` (host NumPy array)."""
        return rng.uniform(-1.0, 1.0, size=(n, self.noise_dim))

    def _inputs(self, z, labels, xp):
        dtype = self.generator.params["layer0.weight"].dtype
        z = xp.asarray(z, dtype=dtype)
        if not self.conditional:
            return z
        if labels is None:
            raise ValueError("a conditional GMMN needs labels (one per noise row)")
        onehot = np.zeros((len(labels), self.n_classes))
        onehot[np.arange(len(labels)), np.asarray(labels)] = 1.0
        return xp.concat([z, xp.asarray(onehot, dtype=dtype)], axis=1)

    def generate(self, z, xp, labels=None):
        """Raw generator outputs ``(n, out_dim)``: pixels, or codes in code space."""
        return self.generator(self._inputs(z, labels, xp), xp)

    def sample_images(self, z, xp, labels=None):
        """Images ``(n, H, W)`` in [0, 1] (codes decoded in code space)."""
        out = self.generate(z, xp, labels)
        if self.decoder is not None:
            out = self.decoder(out, xp)
        return xp.reshape(out, (out.shape[0], *self.image_shape))

    def kernel_input(self, outputs, xp):
        """What the kernel sees for generator outputs (differentiable, see
        :meth:`loss_and_grad`): vectors as they are, or (decoded) images."""
        if not self.kernel_on_images:
            return outputs, None
        tape = None
        if self.decoder is not None:
            outputs, tape = self.decoder.forward(outputs, xp)
        return xp.reshape(outputs, (outputs.shape[0], *self.image_shape)), tape

    def loss_and_grad(self, z, target, xp, labels=None):
        """Loss on one batch and its gradient for the generator's parameters.

        Parameters
        ----------
        z : array (n, noise_dim), prior draws
        target : array
            The data batch as the kernel sees it: vectors ``(m, d)`` or images
            ``(m, H, W)`` (see :meth:`kernel_input`). Conditional models need ``m == n``
            and share ``labels`` with it.
        labels : int array (n,), conditional models only

        Returns
        -------
        loss : float
        mmd2 : float
            The (C)MMD^2 estimate itself.
        grads : dict[str, array]
            Keys of ``generator.params``.
        """
        inputs = self._inputs(z, labels, xp)
        outputs, tape = self.generator.forward(inputs, xp)
        X, decoder_tape = self.kernel_input(outputs, xp)
        root = self.loss == "sqrt"
        if self.conditional:
            loss, dX = cmmd2_and_grad(X, target, np.asarray(labels), self.kernel,
                                      condition_kernel="delta", lam=self.lam, sqrt=root)
        else:
            loss, dX = mmd2_and_grad(X, target, self.kernel, estimator=self.estimator,
                                     sqrt=root)
        # with sqrt=True the loss is sqrt(max(MMD^2, 0)) and its gradient is 0 at 0
        loss = float(loss)
        value = loss * loss if root else loss
        g = xp.reshape(dX, (dX.shape[0], -1))
        if decoder_tape is not None:
            g, _ = self.decoder.backward(decoder_tape, g, xp, need_params=False)
        _, grads = self.generator.backward(tape, g, xp)
        return loss, value, grads
