"""GANs, least-squares GANs and conditional GANs, with the paper's SSIM proposal where it
is well posed.

Networks: a generator ``G`` (ReLU hidden layers, sigmoid output: images in (0, 1)) and a
discriminator ``D`` (LeakyReLU 0.2 hidden layers, one linear output ``l``). Each step runs
a ``discriminator`` update, then a ``generator`` update with fresh noise (Goodfellow et
al.'s Algorithm 1 with one discriminator step), on the same batch of real images.

Conditioning (``conditioning``):

- ``"none"``: ``G(z)``, ``z ~ N(0, I)``; ``D(x)``;
- ``"class"`` (Mirza and Osindero 2014): ``G([z, onehot(y)])``, ``D([x, onehot(y)])``;
  generated images take the labels of the real batch;
- ``"image"`` (pix2pix, Isola et al. 2017): ``G([c, z])`` maps a corrupted image ``c``
  (:func:`ssimref.generative.data.corrupt`) to a clean one (``z`` may be empty:
  ``noise_dim = 0``); ``D([c, x])`` judges (input, output) pairs.

Discriminator regularisers (both off by default): dropout after its hidden layers
(``disc_dropout``, active in both stages, masks drawn from the run's generator) and
one-sided label smoothing (``label_smoothing = s``: real images' target ``1 - s``;
Salimans et al. 2016).

Adversarial losses (``adversarial``; formulas in :mod:`ssimref.generative.losses`):
``"gan"``, the cross-entropy losses of Goodfellow et al. 2014, with a ``non-saturating``
(``-log D(G(z))``) or ``saturating`` (``log(1 - D(G(z)))``) generator; ``"ls"``, the
least-squares losses of Mao et al. 2017 with coding ``0-1-1`` or ``-1-1-0``.

Fidelity term (``fidelity``, weight ``lambda = fidelity_weight``), added to the generator
loss as ``lambda c mean_i d(G_i, X_i)`` with ``d`` a per-element mean distance
(:class:`~ssimref.generative.losses.ImageDistance`: ``l1``, ``l2`` or an SSIM distance)
and ``c`` its mean-image calibration against ``l1`` (1 for ``l1``; see
:mod:`ssimref.generative.losses`; ``fidelity_calibrate=False``: ``c = 1``):

- image-conditional: ``X_i`` is the clean image the corrupted input came from. This is the
  pix2pix L1 term (``lambda = 100``) and the place where the paper's "use the SSIM
  distance instead of l2" is well posed: a generated image and its target are paired;
- unconditional and class-conditional: ``X_i = X_pi(i)``, the real image of the batch
  that an optimal assignment on the batch's distance matrix matches with ``G_i`` (within
  the class), i.e. the minibatch optimal-transport cost between generated and real images
  (:func:`~ssimref.generative.losses.matched_fidelity`). This is the well-defined reading
  of the paper's Eq. (5) proposal to replace the second term by ``||x - G(z)||_S^2``:
  read literally, ``x`` and ``G(z)`` are independent draws, so the term is an expectation
  over unrelated pairs; it does not involve ``D``, so the discriminator cannot "maximise"
  it, and for the generator it is minimised by collapsing every sample onto one image
  near the data's SSIM "median", not by matching the distribution. Matching each sample
  to its own real image removes the collapse: the minimum over permutations is zero only
  when the batches coincide.

The least-squares GAN's squared errors act on the discriminator's scalar outputs, where
an SSIM distance (a comparison of images) has no meaning; the paper's LSGAN proposal is
realised by the same fidelity terms on images (paired for image-conditional models,
matched otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import to_numpy
from .config import IMAGE_LOSSES, RunConfig, SSIMOptions, option
from .data import CORRUPTIONS, check_unit_range, corrupt
from .losses import (ADVERSARIAL, GENERATOR_LOSSES, LS_CODINGS, ImageDistance,
                     discriminator_loss, generator_loss, matched_fidelity, mean_image_ratio)
from .metrics import reconstruction_errors, validation_metrics
from .mlp import MLP
from .trainer import GenerativeModel, Phase

__all__ = ["GAN", "GANConfig", "LSGANConfig", "CGANConfig", "Pix2PixConfig", "CONDITIONINGS",
           "FIDELITIES"]

CONDITIONINGS = ("none", "class", "image")
FIDELITIES = ("none", *IMAGE_LOSSES)


@dataclass(frozen=True)
class GANConfig(SSIMOptions, RunConfig):
    """A GAN run (see :class:`GAN`). Defaults: generator ``32 -> 128 -> pixels``,
    discriminator ``pixels -> 128 -> 1``, Adam lr 1e-3 with beta1 0.5 (Radford et al.'s
    beta1). Measured on mnist5k (2,000 steps, batch 64, FD in the classifier's features):
    these small networks at lr 1e-3 reach FD 76-102, while 256-256 networks at Radford et
    al.'s lr 2e-4 collapsed to one image (FD 430-510, in this implementation and in the
    same networks written in PyTorch), with or without discriminator dropout or label
    smoothing."""

    conditioning: str = option("none", "none, class (one-hot labels into G and D) or image "
                               "(G restores corrupted images)", choices=CONDITIONINGS)
    adversarial: str = option("gan", "gan: cross-entropy losses; ls: least squares (LSGAN)",
                              choices=ADVERSARIAL)
    generator_loss: str = option("non-saturating", "GAN generator loss",
                                 choices=GENERATOR_LOSSES)
    ls_coding: str = option("-1-1-0", "LSGAN coding a-b-c", choices=tuple(LS_CODINGS))
    noise_dim: int = option(32, "noise dimension (0 only for image conditioning)")
    hidden: tuple = option((128,), "hidden widths of the generator")
    disc_hidden: tuple = option((128,), "hidden widths of the discriminator")
    disc_dropout: float = option(0.0, "dropout after every hidden layer of the "
                                 "discriminator (both stages)")
    label_smoothing: float = option(0.0, "one-sided label smoothing: real images' target "
                                    "1 - s in the discriminator's cross-entropy")
    fidelity: str = option("none", "generator fidelity term: the distance to the paired "
                           "target (image conditioning) or to the matched real image",
                           choices=FIDELITIES)
    fidelity_weight: float = option(1.0, "weight lambda of the fidelity term")
    fidelity_squared: bool = option(True, "SSIM fidelity D^2 / positions (false: D / "
                                    "sqrt(positions))")
    fidelity_calibrate: bool = option(True, "scale l2 and SSIM fidelity to equal l1 for the "
                                      "training mean image (one lambda for every term)")
    corruption: str = option("mask", "corruption of the inputs (image conditioning)",
                             choices=CORRUPTIONS)
    corruption_size: float = option(0.0, "mask side / noise std / blur sigma (0: 0.5, "
                                    "0.5, 1.0)")
    corruption_seed: int = option(0, "seed of the corruptions (not the run's seed)")
    lr: float = option(1e-3, "learning rate")
    beta1: float = option(0.5, "Adam beta1")
    lr_d: float = option(0.0, "learning rate of the discriminator (0: lr)")

    def __post_init__(self):
        super().__post_init__()
        self.ssim_config()
        for name in ("hidden", "disc_hidden"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must hold widths >= 1, got {getattr(self, name)}")
            object.__setattr__(self, name, tuple(int(h) for h in getattr(self, name)))
        if self.noise_dim < 0 or (self.noise_dim == 0 and self.conditioning != "image"):
            raise ValueError(f"noise_dim must be >= 1 (0 only with conditioning='image'), "
                             f"got {self.noise_dim}")
        if self.corruption_seed < 0:
            raise ValueError(f"corruption_seed must be >= 0, got {self.corruption_seed}")
        if self.fidelity_weight < 0 or self.corruption_size < 0 or self.lr_d < 0:
            raise ValueError("fidelity_weight, corruption_size and lr_d must be >= 0")
        if not (0 <= self.disc_dropout < 1 and 0 <= self.label_smoothing < 0.5):
            raise ValueError(f"need 0 <= disc_dropout < 1 and 0 <= label_smoothing < 0.5, "
                             f"got {self.disc_dropout}, {self.label_smoothing}")


@dataclass(frozen=True)
class LSGANConfig(GANConfig):
    """A least-squares GAN run (Mao et al. 2017): :class:`GANConfig` with
    ``adversarial="ls"``. Coding ``-1-1-0`` by default: on mnist5k (2,000 steps, lr 1e-3)
    it reached FD 85 where ``0-1-1`` let the discriminator win (FD 286; 408-540 at lr
    5e-4 and 2e-4)."""

    adversarial: str = option("ls", "gan: cross-entropy losses; ls: least squares (LSGAN)",
                              choices=ADVERSARIAL)


@dataclass(frozen=True)
class CGANConfig(GANConfig):
    """A class-conditional GAN run (Mirza and Osindero 2014)."""

    conditioning: str = option("class", "none, class (one-hot labels into G and D) or image "
                               "(G restores corrupted images)", choices=CONDITIONINGS)


@dataclass(frozen=True)
class Pix2PixConfig(GANConfig):
    """An image-conditional GAN run (pix2pix-style restoration): deterministic generator
    ``pixels -> 256 -> 256 -> pixels`` (``noise_dim = 0``), Isola et al.'s L1 term with
    ``lambda = 100`` and their Adam lr 2e-4 (on mnist5k, masked digits, 2,000 steps: FD of
    the restorations 32 and class accuracy 0.71 at lr 2e-4, FD 84 and salt-and-pepper
    backgrounds at the GAN default 1e-3)."""

    conditioning: str = option("image", "none, class (one-hot labels into G and D) or image "
                               "(G restores corrupted images)", choices=CONDITIONINGS)
    noise_dim: int = option(0, "noise dimension (0 only for image conditioning)")
    hidden: tuple = option((256, 256), "hidden widths of the generator")
    lr: float = option(2e-4, "learning rate")
    fidelity: str = option("l1", "generator fidelity term: the distance to the paired "
                           "target (image conditioning) or to the matched real image",
                           choices=FIDELITIES)
    fidelity_weight: float = option(100.0, "weight lambda of the fidelity term")


class GAN(GenerativeModel):
    """GAN / LSGAN / conditional GAN (see the module docstring). Networks ``generator``
    and ``discriminator``; stages (and optimiser groups) ``discriminator`` then
    ``generator``; one phase ``train``."""

    name = "gan"

    def __init__(self, config: GANConfig, splits, xp, name=None):
        super().__init__(config, splits, xp)
        self.name = name or self.name
        check_unit_range(splits.train, splits.name, "the generator's outputs are sigmoids "
                         "in (0, 1)")
        c, d = config, self.pixels
        self.conditioning = c.conditioning
        if c.conditioning == "class" and splits.n_classes < 2:
            raise ValueError(f"conditioning='class' needs labelled data; {splits.name} has "
                             "none")
        self.n_classes = splits.n_classes if c.conditioning == "class" else 0
        self.cond_dim = {"none": 0, "class": self.n_classes, "image": d}[c.conditioning]
        self.generator = MLP.from_sizes([c.noise_dim + self.cond_dim, *c.hidden, d],
                                        hidden="relu", output="sigmoid")
        self.discriminator = MLP.from_sizes([d + self.cond_dim, *c.disc_hidden, 1],
                                            hidden="leaky_relu", output="linear",
                                            dropout=c.disc_dropout)
        self.networks.update(generator=self.generator, discriminator=self.discriminator)
        self.groups.update(discriminator=("discriminator",), generator=("generator",))
        self.fidelity, self.fidelity_scale = None, 1.0
        if c.fidelity != "none":
            self.fidelity = ImageDistance(c.fidelity, splits.image_shape, c.ssim_config(),
                                          squared=c.fidelity_squared)
            if c.fidelity_calibrate and c.fidelity != "l1":
                self.fidelity_scale = mean_image_ratio(
                    splits.train, ImageDistance("l1", splits.image_shape, c.ssim_config()),
                    self.fidelity)
        self._corrupted = {}

    @property
    def conditional(self):
        return self.conditioning == "class"

    # --------------------------------------------------------------- helpers
    def _dtype(self):
        return self.generator.params["layer0.weight"].dtype

    def _host(self, a):
        return self.xp.asarray(a, dtype=self._dtype())

    def _onehot(self, labels):
        onehot = np.zeros((len(labels), self.n_classes))
        onehot[np.arange(len(labels)), np.asarray(labels)] = 1.0
        return self._host(onehot)

    def describe(self):
        out = super().describe()
        out["fidelity_scale"] = self.fidelity_scale
        return out

    def corrupted(self, split):
        """The corrupted images ``(n, H, W)`` of a split (image conditioning; cached)."""
        if split not in self._corrupted:
            c = self.config
            images, _ = self.splits.split(split)
            self._corrupted[split] = corrupt(images, c.corruption, c.corruption_size or None,
                                             c.corruption_seed, split)
        return self._corrupted[split]

    def _g_input(self, n, rng, cond):
        """Generator input ``[z, cond]`` (image conditioning: ``[cond, z]``)."""
        xp, k = self.xp, self.config.noise_dim
        parts = [self._host(rng.standard_normal((n, k)))] if k else []
        if self.conditioning == "image":
            parts.insert(0, cond)
        elif self.conditioning == "class":
            parts.append(cond)
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)

    def _d_input(self, images, cond):
        if self.conditioning == "none":
            return images
        return self.xp.concat([images, cond], axis=1)

    def _cond(self, batch):
        if self.conditioning == "class":
            return self._onehot(batch["labels"])
        if self.conditioning == "image":
            return batch["inputs"]
        return None

    # ------------------------------------------------------------ the model
    def phases(self):
        return (Phase("train", self.config.steps, self.config.batch,
                      ("discriminator", "generator")),)

    def phase_data(self, phase):
        xp, train = self.xp, self.splits.train
        data = {"images": xp.asarray(train.reshape(len(train), -1))}
        if self.conditioning == "class":
            data["labels"] = self.splits.train_labels
        elif self.conditioning == "image":
            data["inputs"] = xp.asarray(self.corrupted("train").reshape(len(train), -1))
        return data

    def loss_and_grads(self, batch, rng, stage):
        xp = self.xp
        x = batch["images"]
        n = x.shape[0]
        cond = self._cond(batch)
        if stage == "discriminator":
            fake = self.generator(self._g_input(n, rng, cond), xp)
            both = xp.concat([self._d_input(x, cond), self._d_input(fake, cond)], axis=0)
            logits, tape = self.discriminator.forward(both, xp, training=True, rng=rng)
            loss, g_real, g_fake = discriminator_loss(logits[:n], logits[n:], self.config, xp,
                                                       1.0 - self.config.label_smoothing)
            _, grads = self.discriminator.backward(tape, xp.concat([g_real, g_fake], axis=0),
                                                   xp)
            return {"d_loss": loss}, {"discriminator": grads}
        if stage != "generator":
            raise ValueError(f"unknown GAN stage {stage!r}")
        fake, g_tape = self.generator.forward(self._g_input(n, rng, cond), xp)
        logits, d_tape = self.discriminator.forward(self._d_input(fake, cond), xp,
                                                    training=True, rng=rng)
        adv, g_logits = generator_loss(logits, self.config, xp)
        g_in, _ = self.discriminator.backward(d_tape, g_logits, xp, need_params=False)
        g_fake = g_in[:, :self.pixels]
        losses = {"g_loss": adv}
        if self.fidelity is not None:
            lam = self.config.fidelity_weight * self.fidelity_scale
            if self.conditioning == "image":
                values, grad = self.fidelity(fake, x, xp)
                value, grad = float(xp.sum(values)) / n, grad / n
            else:
                labels = batch.get("labels") if self.conditioning == "class" else None
                value, grad, _ = matched_fidelity(self.fidelity, fake, x, xp, labels)
            g_fake = g_fake + lam * grad
            losses["fidelity"] = value  # the unscaled per-element mean distance
            losses["g_total"] = adv + lam * value
        _, grads = self.generator.backward(g_tape, g_fake, xp)
        return losses, {"generator": grads}

    # ------------------------------------------------- sampling and grids
    def generate(self, n, rng, labels=None, inputs=None):
        """Images ``(n, H, W)`` (namespace arrays): noise from ``rng``; ``labels`` for
        class conditioning, corrupted ``inputs`` ``(n, H, W)`` for image conditioning."""
        xp = self.xp
        cond = None
        if self.conditioning == "class":
            if labels is None:
                raise ValueError("a class-conditional GAN needs labels (one per sample)")
            cond = self._onehot(labels)
        elif self.conditioning == "image":
            if inputs is None:
                raise ValueError("an image-conditional GAN needs corrupted inputs")
            cond = self._host(np.asarray(to_numpy(inputs)).reshape(n, -1))
        out = self.generator(self._g_input(n, rng, cond), xp)
        return xp.reshape(out, (n, *self.image_shape))

    def restore(self, inputs, rng=None):
        """Restorations ``(n, H, W)`` of corrupted images (image conditioning)."""
        rng = rng if rng is not None else np.random.default_rng(0)
        return self.generate(inputs.shape[0], rng, inputs=inputs)

    def sample(self, n, rng, labels=None):
        """``n`` samples (host); image conditioning: restorations of the first ``n``
        corrupted test images."""
        if self.conditioning == "image":
            inputs = self.corrupted("test")[:n]
            return to_numpy(self.restore(inputs, rng))
        return to_numpy(self.generate(n, rng, labels))

    def fixed_inputs(self, rng):
        n = self.config.eval_samples
        out = {"grid_rng": np.random.default_rng(rng.integers(2**63)),
               "val_rng": np.random.default_rng(rng.integers(2**63))}
        if self.conditioning == "class":
            out["grid_labels"] = np.repeat(np.arange(self.n_classes), 10)
            out["val_labels"] = np.arange(n) % self.n_classes
        if self.conditioning == "image":
            val = self.splits.validation[:n]
            out["val_images"] = val
            out["val_inputs"] = self.corrupted("validation")[:len(val)]
        return out

    @staticmethod
    def _fixed_rng(fixed, key):
        """A copy of a fixed generator: the same noise at every call."""
        return _copy_rng(fixed[key])

    def grid_images(self, fixed):
        rng = self._fixed_rng(fixed, "grid_rng")
        if self.conditioning == "image":
            inputs = fixed["val_inputs"][:50]
            outputs = to_numpy(self.restore(inputs, rng))
            rows = []
            for r in range(5):  # pairs of rows: ten inputs, their ten restorations
                rows += [inputs[10 * r:10 * r + 10], outputs[10 * r:10 * r + 10]]
            return np.concatenate(rows)
        return self.generate(100, rng, fixed.get("grid_labels"))

    def validation(self, fixed):
        rng = self._fixed_rng(fixed, "val_rng")
        if self.conditioning == "image":
            restored = to_numpy(self.restore(fixed["val_inputs"], rng))
            errors = reconstruction_errors(restored, fixed["val_images"],
                                           self.config.ssim_config())
            return {"val_restore_l2": errors["val_recon_l2"],
                    "val_restore_ssim": errors["val_recon_ssim"]}
        samples = self.generate(self.config.eval_samples, rng, fixed.get("val_labels"))
        return validation_metrics(self, samples)


def _copy_rng(rng):
    copy = np.random.default_rng()
    copy.bit_generator.state = rng.bit_generator.state
    return copy
