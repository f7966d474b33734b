"""Loss terms of the generative models, each with its exact gradient.

Images travel as rows ``(n, d)`` of ``d = H W`` pixels; a term returns its per-row (or
per-batch) values and the gradient with respect to its differentiable input. Everything is
written against the array API (NumPy or CuPy through ``xp``).

Reconstruction (:class:`Reconstruction`, VAE and AAE), per image, with ``p = sigmoid(a)``
the decoder's output for logits ``a`` and ``x`` the target in [0, 1]:

- ``bce``: ``sum_k softplus(a_k) - x_k a_k`` = ``-sum_k x_k log p_k + (1 - x_k) log(1 - p_k)``
  (evaluated from the logits, so never ``log 0``); gradient ``p - x``;
- ``l2``: ``sum_k (p_k - x_k)^2``;
- ``ssim-eq1``, ``ssim-eq1-uncentered``, ``ssim-eq2``: ``w D(p, x)^2`` (or ``w D``), the
  paper's Eq. (1) / Eq. (2) distance with ``D^2`` the sum over window positions of the
  squared per-window distance (:func:`ssimref.paired_distance_and_grad`);
- optionally plus ``mix_weight`` times ``l2`` or ``bce``.

**The SSIM weight rule (mean-image calibration).** A loss term's scale sets how it
trades against the KL term of a VAE (or against the adversarial term of a GAN), so an
SSIM term replacing a pixel term must come on that term's scale. ``l2`` is ``P = H W``
times a per-pixel mean; the obvious analogue, ``P`` times the per-window mean (weight
``P / W`` with ``W`` window positions), does not match it: per-window SSIM distances of
a poor reconstruction are near 1 while per-pixel squared errors of mostly black digits
are near 0.07, so that rule makes the SSIM term about 11 times the l2 term on mnist5k
(the training mean image as the reconstruction: l2 52.6, SSIM Eq. (2) 918 per image).
ssimref therefore calibrates: the default weight is

    w = mean_i ||m - x_i||^2 / mean_i D(m, x_i)^2        (D instead of D^2 when unsquared)

over the training images ``x_i``, ``m`` their mean image: the SSIM term equals the l2
term (the term the paper proposes to replace) for the baseline reconstruction "the
average digit". The weight is computed once per run from the training split and
stored in the run folder's ``model.json``; ``ssim_weight`` overrides it.

Image fidelity between matched images (:class:`ImageDistance`, GAN generator terms), a
per-element mean: ``l1`` ``mean_k |p_k - x_k|``, ``l2`` ``mean_k (p_k - x_k)^2``, SSIM
``D^2 / W`` (``D / sqrt(W)`` unsquared). By the same calibration, the GAN models scale
every fidelity distance but ``l1`` so that it equals ``l1`` (pix2pix's term, whose
``lambda = 100`` is the reference) at the mean-image baseline; one ``lambda`` then
means the same for every fidelity term. :func:`matched_fidelity` pairs each generated image
with a real one by an optimal assignment (``scipy.optimize.linear_sum_assignment``) on the
batch's matrix of the same distance.

Adversarial terms on the discriminator's scalar outputs ``l`` (logits for the GAN losses):

- GAN (Goodfellow et al. 2014): discriminator ``mean softplus(-l_real) + mean
  softplus(l_fake)`` (``-log D(x) - log(1 - D(G(z)))``, ``D = sigmoid(l)``); generator,
  non-saturating ``mean softplus(-l_fake)`` (``-log D(G(z))``) or saturating
  ``-mean softplus(l_fake)`` (``log(1 - D(G(z)))``, minimised);
- least squares (Mao et al. 2017) with coding ``(a, b, c)``: discriminator
  ``1/2 mean (l_real - b)^2 + 1/2 mean (l_fake - a)^2``, generator
  ``1/2 mean (l_fake - c)^2``.

KL term of the VAE: ``KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum_j (mu_j^2 +
exp(logvar_j) - logvar_j - 1)``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..backend import to_numpy
from ..paired import paired_distance_and_grad
from ..pairwise import distance_matrix
from .config import IMAGE_LOSSES, MIX_LOSSES, RECON_LOSSES
from .mlp import sigmoid

__all__ = ["softplus", "bce_with_logits", "gaussian_kl", "Reconstruction", "ImageDistance",
           "matched_fidelity", "assignment", "mean_image_ratio", "gan_discriminator_loss",
           "gan_generator_loss",
           "ls_discriminator_loss", "ls_generator_loss", "LS_CODINGS", "ssim_kind",
           "ADVERSARIAL", "GENERATOR_LOSSES"]

LS_CODINGS = {"0-1-1": (0.0, 1.0, 1.0), "-1-1-0": (-1.0, 1.0, 0.0)}
ADVERSARIAL = ("gan", "ls")
GENERATOR_LOSSES = ("non-saturating", "saturating")


def ssim_kind(loss):
    """The :func:`ssimref.distance` kind of an SSIM loss name (``"ssim-eq2"`` -> ``"eq2"``),
    None for pixel losses."""
    return loss[len("ssim-"):] if loss.startswith("ssim-") else None


def softplus(a, xp):
    """``log(1 + e^a)`` without overflow: ``max(a, 0) + log1p(e^{-|a|})``."""
    return xp.where(a > 0, a, xp.zeros_like(a)) + xp.log1p(xp.exp(-xp.abs(a)))


def bce_with_logits(logits, x, xp):
    """Per-row binary cross-entropy ``sum_k softplus(a_k) - x_k a_k`` and its gradient
    ``sigmoid(a) - x`` with respect to the logits ``a``."""
    values = xp.sum(softplus(logits, xp) - x * logits, axis=1)
    return values, sigmoid(logits, xp) - x


def gaussian_kl(mu, logvar, xp):
    """Per-row ``KL(N(mu, diag e^logvar) || N(0, I))`` and its gradients.

    Returns
    -------
    values : array (n,)
        ``1/2 sum_j (mu_j^2 + e^{logvar_j} - logvar_j - 1)``.
    g_mu, g_logvar : arrays (n, k)
        ``mu`` and ``(e^{logvar} - 1) / 2``.
    """
    var = xp.exp(logvar)
    values = 0.5 * xp.sum(mu * mu + var - logvar - 1.0, axis=1)
    return values, mu, 0.5 * (var - 1.0)


class ImageDistance:
    """A distance between matched images as a per-element mean (see the module docstring).

    Parameters
    ----------
    loss : {"l1", "l2", "ssim-eq1", "ssim-eq1-uncentered", "ssim-eq2"}
    image_shape : (H, W)
    ssim : SSIMConfig
        Conventions of the SSIM kinds.
    squared : bool, default True
        SSIM kinds: ``D^2 / W``; False: ``D / sqrt(W)``.
    """

    def __init__(self, loss, image_shape, ssim, squared=True):
        if loss not in IMAGE_LOSSES:
            raise ValueError(f"image loss must be one of {IMAGE_LOSSES}, got {loss!r}")
        self.loss, self.image_shape, self.ssim, self.squared = loss, tuple(image_shape), \
            ssim, bool(squared)
        self.kind = ssim_kind(loss)
        h, w = self.image_shape
        if self.kind is not None:
            ho, wo = ssim.positions(h, w)
            if ho < 1 or wo < 1:
                raise ValueError(f"SSIM windows of size {ssim.size} do not fit images of "
                                 f"{h}x{w}; choose a smaller ssim_size")
            self.elements = ho * wo
        else:
            self.elements = h * w
        self.scale = 1.0 / (self.elements if self.squared or self.kind is None
                            else math.sqrt(self.elements))

    def __repr__(self):
        return f"ImageDistance({self.loss!r}, squared={self.squared})"

    def __call__(self, p, x, xp):
        """Per-row values ``(n,)`` and the gradient with respect to ``p`` ``(n, d)``."""
        if self.kind is None:
            diff = p - x
            if self.loss == "l2":
                return self.scale * xp.sum(diff * diff, axis=1), (2.0 * self.scale) * diff
            return self.scale * xp.sum(xp.abs(diff), axis=1), self.scale * xp.sign(diff)
        n = p.shape[0]
        shape = (n, *self.image_shape)
        values, dp, _ = paired_distance_and_grad(xp.reshape(p, shape), xp.reshape(x, shape),
                                                 self.kind, self.ssim, squared=self.squared)
        return self.scale * values, self.scale * xp.reshape(dp, (n, -1))

    def matrix(self, P, X, xp):
        """Host matrix ``(n, m)`` of the distance between every row of ``P`` and of ``X``."""
        if self.kind is None:
            a, b = np.asarray(to_numpy(P)), np.asarray(to_numpy(X))
            from scipy.spatial.distance import cdist
            metric = "sqeuclidean" if self.loss == "l2" else "cityblock"
            return self.scale * cdist(a, b, metric=metric)
        shape = tuple(self.image_shape)
        D = distance_matrix(xp.reshape(P, (P.shape[0], *shape)),
                            xp.reshape(X, (X.shape[0], *shape)), kind=self.kind,
                            config=self.ssim, squared=self.squared)
        return self.scale * np.asarray(to_numpy(D), dtype=np.float64)


def assignment(cost, labels=None):
    """The permutation ``perm`` minimising ``sum_i cost[i, perm[i]]`` (square ``cost``),
    within each class when ``labels`` (one per row and column: row ``i`` and column ``j``
    may be matched only if ``labels[i] == labels[j]``) are given."""
    from scipy.optimize import linear_sum_assignment
    cost = np.asarray(cost, dtype=np.float64)
    n = cost.shape[0]
    if cost.shape != (n, n):
        raise ValueError(f"cost must be square, got {cost.shape}")
    perm = np.empty(n, dtype=np.int64)
    groups = [np.arange(n)] if labels is None else \
        [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for idx in groups:
        rows, cols = linear_sum_assignment(cost[np.ix_(idx, idx)])
        perm[idx[rows]] = idx[cols]
    return perm


def matched_fidelity(distance, generated, real, xp, labels=None):
    """Mean distance between each generated image and the real image an optimal
    assignment matches it with, and its gradient with respect to ``generated``.

    The value is ``min over permutations pi of (1/n) sum_i d(G_i, X_pi(i))`` (within
    classes when ``labels`` are given): the optimal-transport cost between the two
    minibatches' empirical distributions. Where the minimiser is unique (almost
    everywhere), its gradient is the gradient of the matched sum with the permutation
    held fixed (Danskin's theorem), which is what is returned.

    Returns
    -------
    value : float
    grad : array (n, d)
    perm : int array (n,)
    """
    n = generated.shape[0]
    if real.shape[0] != n:
        raise ValueError(f"matching needs as many real as generated images, got "
                         f"{real.shape[0]} and {n}")
    perm = assignment(distance.matrix(generated, real, xp), labels)
    matched = xp.take(real, xp.asarray(perm), axis=0)
    values, grad = distance(generated, matched, xp)
    return float(xp.sum(values)) / n, grad / n, perm


def brute_force_matching(cost, labels=None):
    """The optimal permutation by enumeration (tests and tiny batches only)."""
    n = cost.shape[0]
    best, best_perm = math.inf, None
    for perm in itertools.permutations(range(n)):
        if labels is not None and any(labels[i] != labels[j] for i, j in enumerate(perm)):
            continue
        total = sum(cost[i, j] for i, j in enumerate(perm))
        if total < best:
            best, best_perm = total, np.array(perm)
    return best_perm, best


def mean_image_ratio(images, numerator, denominator):
    """``mean_i numerator(m, x_i) / mean_i denominator(m, x_i)`` over ``images``
    ``(n, H, W)`` with ``m`` their mean image (both :class:`ImageDistance`, computed on the
    host in float64): the calibration constant of the module docstring."""
    x = np.asarray(to_numpy(images), dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    m = np.broadcast_to(x.mean(axis=0), x.shape).copy()
    den = float(np.mean(denominator(m, x, np)[0]))
    if not den > 0:
        raise ValueError("the calibration images are all equal (the mean-image distance "
                         "is 0); give the weight explicitly")
    return float(np.mean(numerator(m, x, np)[0])) / den


class Reconstruction:
    """The reconstruction term of an autoencoder on logits (see the module docstring).

    Parameters
    ----------
    recon : {"bce", "l2", "ssim-eq1", "ssim-eq1-uncentered", "ssim-eq2"}
    image_shape : (H, W)
    ssim : SSIMConfig
    squared : bool
        SSIM term ``D^2`` (True) or ``D``.
    ssim_weight : float or None
        Weight ``w`` of the SSIM term; None or 0: the mean-image calibration on
        ``calibration_images`` (see the module docstring).
    mix : {"none", "l2", "bce"}
    mix_weight : float
    calibration_images : array (n, H, W), optional
        Images of the calibration (the training split); required when ``ssim_weight`` is
        None or 0 for an SSIM ``recon``.
    """

    def __init__(self, recon, image_shape, ssim, squared=True, ssim_weight=None, mix="none",
                 mix_weight=1.0, calibration_images=None):
        if recon not in RECON_LOSSES:
            raise ValueError(f"recon must be one of {RECON_LOSSES}, got {recon!r}")
        if mix not in MIX_LOSSES:
            raise ValueError(f"mix must be one of {MIX_LOSSES}, got {mix!r}")
        if mix != "none" and ssim_kind(recon) is None:
            raise ValueError(f"mix adds a pixel loss to an SSIM term; recon {recon!r} is not "
                             "one")
        self.recon, self.mix, self.mix_weight = recon, mix, float(mix_weight)
        self.pixels = int(np.prod(image_shape))
        self.ssim_distance = None
        self.ssim_weight = 0.0
        if ssim_kind(recon) is not None:
            # the per-element mean times the pixels: P / W (or P / sqrt W) times D^2 (or D)
            self.ssim_distance = ImageDistance(recon, image_shape, ssim, squared)
            if ssim_weight:
                self.ssim_weight = float(ssim_weight)
            elif calibration_images is None:
                raise ValueError("the SSIM reconstruction term needs ssim_weight > 0 or "
                                 "calibration_images (the training images) for its "
                                 "mean-image calibration")
            else:
                # w D^2 = sum of squares  <=>  w = P scale * (mean l2 / mean distance),
                # both ImageDistance values being per-element means
                ratio = mean_image_ratio(calibration_images,
                                         ImageDistance("l2", image_shape, ssim),
                                         self.ssim_distance)
                self.ssim_weight = self.pixels * self.ssim_distance.scale * ratio

    def __repr__(self):
        return (f"Reconstruction({self.recon!r}, ssim_weight={self.ssim_weight:.6g}, "
                f"mix={self.mix!r}, mix_weight={self.mix_weight})")

    def _pixel(self, loss, logits, x, xp):
        if loss == "bce":
            return bce_with_logits(logits, x, xp)
        p = sigmoid(logits, xp)
        diff = p - x
        return xp.sum(diff * diff, axis=1), 2.0 * diff * p * (1.0 - p)

    def __call__(self, logits, x, xp):
        """Per-image values and the gradient with respect to the logits.

        Returns
        -------
        total : array (n,)
        grad : array (n, d)
            ``d total_i / d logits_i`` (one row per image).
        parts : dict[str, array (n,)]
            The unweighted terms (``"bce"``, ``"l2"``, or the SSIM distance ``D^2`` / ``D``
            under the loss name).
        """
        if self.ssim_distance is None:
            total, grad = self._pixel(self.recon, logits, x, xp)
            return total, grad, {self.recon: total}
        p = sigmoid(logits, xp)
        scaled, dp = self.ssim_distance(p, x, xp)
        # ImageDistance returns D^2 / W (its scale); the term is ssim_weight * D^2
        raw = scaled / self.ssim_distance.scale
        total = self.ssim_weight * raw
        grad = (self.ssim_weight / self.ssim_distance.scale) * dp * p * (1.0 - p)
        parts = {self.recon: raw}
        if self.mix != "none":
            extra, g_extra = self._pixel(self.mix, logits, x, xp)
            total = total + self.mix_weight * extra
            grad = grad + self.mix_weight * g_extra
            parts[self.mix] = extra
        return total, grad, parts


def gan_discriminator_loss(real, fake, xp, real_target=1.0):
    """``mean [t softplus(-real) + (1 - t) softplus(real)] + mean softplus(fake)`` on
    logits ``(n, 1)`` and ``(m, 1)``: the cross-entropy with target ``t = real_target``
    for real images (1; 0.9 is one-sided label smoothing, Salimans et al. 2016) and 0 for
    generated ones. Returns ``(loss, d/dreal, d/dfake)``."""
    n, m = real.shape[0], fake.shape[0]
    t = float(real_target)
    real_terms = softplus(-real, xp) if t == 1.0 else \
        t * softplus(-real, xp) + (1.0 - t) * softplus(real, xp)
    loss = float(xp.sum(real_terms)) / n + float(xp.sum(softplus(fake, xp))) / m
    return loss, (sigmoid(real, xp) - t) / n, sigmoid(fake, xp) / m


def gan_generator_loss(fake, xp, saturating=False):
    """Non-saturating ``mean softplus(-fake)`` or saturating ``-mean softplus(fake)``;
    returns ``(loss, d/dfake)``."""
    m = fake.shape[0]
    if saturating:
        return -float(xp.sum(softplus(fake, xp))) / m, -sigmoid(fake, xp) / m
    return float(xp.sum(softplus(-fake, xp))) / m, (sigmoid(fake, xp) - 1.0) / m


def ls_discriminator_loss(real, fake, coding, xp):
    """``1/2 mean (real - b)^2 + 1/2 mean (fake - a)^2``; returns ``(loss, d/dreal,
    d/dfake)``."""
    a, b, _ = LS_CODINGS[coding]
    n, m = real.shape[0], fake.shape[0]
    dr, df = real - b, fake - a
    loss = 0.5 * float(xp.sum(dr * dr)) / n + 0.5 * float(xp.sum(df * df)) / m
    return loss, dr / n, df / m


def ls_generator_loss(fake, coding, xp):
    """``1/2 mean (fake - c)^2``; returns ``(loss, d/dfake)``."""
    c = LS_CODINGS[coding][2]
    m = fake.shape[0]
    d = fake - c
    return 0.5 * float(xp.sum(d * d)) / m, d / m


def discriminator_loss(real, fake, config, xp, real_target=1.0):
    """The discriminator's loss of ``config.adversarial``: ``"ls"`` is
    :func:`ls_discriminator_loss` with ``config.ls_coding``, otherwise
    :func:`gan_discriminator_loss` with ``real_target``. Returns ``(loss, d/dreal,
    d/dfake)``."""
    if config.adversarial == "ls":
        return ls_discriminator_loss(real, fake, config.ls_coding, xp)
    return gan_discriminator_loss(real, fake, xp, real_target)


def generator_loss(fake, config, xp):
    """The generator's loss of ``config.adversarial``: ``"ls"`` is :func:`ls_generator_loss`
    with ``config.ls_coding``, otherwise :func:`gan_generator_loss`, saturating when
    ``config.generator_loss == "saturating"``. Returns ``(loss, d/dfake)``."""
    if config.adversarial == "ls":
        return ls_generator_loss(fake, config.ls_coding, xp)
    return gan_generator_loss(fake, xp, saturating=config.generator_loss == "saturating")
