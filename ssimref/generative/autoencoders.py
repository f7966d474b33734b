"""Variational and adversarial autoencoders with the paper's SSIM reconstruction terms.

**VAE** (Kingma and Welling, ICLR 2014). Encoder ``x -> (mu, logvar)`` (ReLU hidden
layers, linear output of ``2 k`` units), reparameterisation ``z = mu + exp(logvar / 2)
eps`` with ``eps ~ N(0, I)``, decoder ``z -> a`` (logits; the image is ``sigmoid(a)``).
Loss per batch, minimised (the negative ELBO for ``bce``, up to constants)::

    L = mean_i [ R(x_i, a_i) + beta KL(N(mu_i, diag exp(logvar_i)) || N(0, I)) ]

with ``R`` the reconstruction term of :class:`~ssimref.generative.losses.Reconstruction`
(``bce``, ``l2``, or the paper's Eq. (1) / Eq. (2) SSIM distances, optionally mixed with a
pixel loss) and the analytic KL ``1/2 sum_j (mu_j^2 + exp(logvar_j) - logvar_j - 1)``.
Section 4 of the paper proposes exactly this: an SSIM distance for the second term of
Eq. (4). Gradients: ``dL/da`` from ``R``, back through the decoder to ``z``, then
``dz/dmu = 1``, ``dz/dlogvar = eps exp(logvar / 2) / 2``, plus the KL's ``mu`` and
``(exp(logvar) - 1) / 2``, back through the encoder.

**AAE** (Makhzani, Shlens, Jaitly, Goodfellow, Frey, ICLR 2016 workshop). Deterministic
encoder ``x -> z`` (linear output), decoder as above, and a discriminator ``z -> logit``
(LeakyReLU hidden layers) that tells prior samples (real) from codes (fake). Each step
runs Makhzani et al.'s three phases on one batch, each with its own optimiser:

1. ``reconstruction``: encoder and decoder minimise ``mean_i R(x_i, a_i)``;
2. ``discriminator``: the discriminator minimises the GAN (or least-squares) loss with
   prior draws as real and codes as fake;
3. ``regularization``: the encoder minimises the generator loss on its codes.

Priors: ``"gaussian"`` ``N(0, I)``; ``"mixture10"`` an equal mixture of 10 Gaussians with
means ``2 (cos(2 pi c / 10), sin(2 pi c / 10), 0, ..., 0)`` and standard deviation 0.5
in every coordinate (Makhzani et al.'s ten-component prior, placed on a circle in the
first two coordinates). The paper's proposal for the AAE is its reconstruction term: the
adversarial part compares codes, not images, so an SSIM distance has no place there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..backend import to_numpy
from .config import ReconOptions, RunConfig, SSIMOptions, option
from .data import check_unit_range
from .losses import (ADVERSARIAL, LS_CODINGS, GENERATOR_LOSSES, Reconstruction,
                     discriminator_loss, generator_loss, gaussian_kl)
from .metrics import reconstruction_errors, validation_metrics
from .mlp import MLP, reparameterize, reparameterize_vjp, sigmoid
from .trainer import GenerativeModel, Phase

__all__ = ["VAE", "VAEConfig", "AAE", "AAEConfig", "PRIORS", "sample_prior"]

PRIORS = ("gaussian", "mixture10")


def _check_recon_data(config, splits):
    check_unit_range(splits.train, splits.name,
                     f"recon={config.recon!r} and the sigmoid decoder need targets in [0, 1]"
                     + (" (binary cross-entropy is undefined outside)"
                        if "bce" in (config.recon, config.mix) else ""))


@dataclass(frozen=True)
class VAEConfig(ReconOptions, SSIMOptions, RunConfig):
    """A VAE run (see :class:`VAE`). Encoder ``pixels -> hidden -> 2 latent``, decoder
    ``latent -> reversed(hidden) -> pixels``, Adam lr 1e-3, batch 64."""

    latent: int = option(16, "latent dimension k")
    hidden: tuple = option((256,), "hidden widths of the encoder (the decoder mirrors them)")
    beta: float = option(1.0, "weight of the KL term")

    def __post_init__(self):
        super().__post_init__()
        self.check_recon()
        self.ssim_config()
        if self.latent < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"latent and hidden widths must be >= 1, got latent="
                             f"{self.latent}, hidden={self.hidden}")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))


@dataclass(frozen=True)
class AAEConfig(ReconOptions, SSIMOptions, RunConfig):
    """An AAE run (see :class:`AAE`)."""

    latent: int = option(8, "code dimension")
    hidden: tuple = option((256,), "hidden widths of the encoder (the decoder mirrors them)")
    disc_hidden: tuple = option((128, 128), "hidden widths of the code discriminator")
    prior: str = option("gaussian", "prior of the codes", choices=PRIORS)
    adversarial: str = option("gan", "gan: cross-entropy losses; ls: least squares",
                              choices=ADVERSARIAL)
    generator_loss: str = option("non-saturating", "GAN generator loss of the encoder",
                                 choices=GENERATOR_LOSSES)
    ls_coding: str = option("0-1-1", "least-squares coding a-b-c", choices=tuple(LS_CODINGS))
    lr_d: float = option(0.0, "learning rate of the discriminator (0: lr)")

    def __post_init__(self):
        super().__post_init__()
        self.check_recon()
        self.ssim_config()
        for name in ("hidden", "disc_hidden"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must hold widths >= 1, got {getattr(self, name)}")
            object.__setattr__(self, name, tuple(int(h) for h in getattr(self, name)))
        if self.latent < 1 or self.lr_d < 0:
            raise ValueError(f"need latent >= 1 and lr_d >= 0, got {self.latent}, "
                             f"{self.lr_d}")


def sample_prior(prior, rng, n, k):
    """``n`` draws ``(n, k)`` (host) from ``prior`` (see the module docstring)."""
    if prior == "gaussian":
        return rng.standard_normal((n, k))
    if prior != "mixture10":
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    component = rng.integers(0, 10, size=n)
    z = 0.5 * rng.standard_normal((n, k))
    angle = 2.0 * math.pi * component / 10.0
    z[:, 0] += 2.0 * np.cos(angle)
    if k > 1:
        z[:, 1] += 2.0 * np.sin(angle)
    return z


class _Autoencoder(GenerativeModel):
    """What the VAE and the AAE share: data, reconstruction term, decoding, grids."""

    def __init__(self, config, splits, xp, code_out):
        super().__init__(config, splits, xp)
        _check_recon_data(config, splits)
        d = self.pixels
        self.latent = config.latent
        self.encoder = MLP.from_sizes([d, *config.hidden, code_out], hidden="relu",
                                      output="linear")
        self.decoder = MLP.from_sizes([config.latent, *reversed(config.hidden), d],
                                      hidden="relu", output="linear")
        self.networks.update(encoder=self.encoder, decoder=self.decoder)
        self.recon = Reconstruction(config.recon, splits.image_shape, config.ssim_config(),
                                    squared=config.recon_squared,
                                    ssim_weight=config.ssim_weight or None, mix=config.mix,
                                    mix_weight=config.mix_weight,
                                    calibration_images=splits.train)

    conditional = False

    def prior_draws(self, rng, n):  # pragma: no cover - abstract
        """``n`` codes ``(n, latent)`` (host) from the model's prior."""
        raise NotImplementedError

    def describe(self):
        out = super().describe()
        out["recon"] = repr(self.recon)
        out["ssim_weight"] = self.recon.ssim_weight
        return out

    def _dtype(self):
        return self.encoder.params["layer0.weight"].dtype

    def _host(self, a):
        return self.xp.asarray(a, dtype=self._dtype())

    def phase_data(self, phase):
        train = self.splits.train
        return {"images": self.xp.asarray(train.reshape(len(train), -1))}

    def encode(self, images):
        """Codes ``(n, k)`` of images ``(n, H, W)`` (the mean for a VAE)."""
        xp = self.xp
        x = self._host(xp.reshape(xp.asarray(images), (images.shape[0], -1)))
        return self.encoder(x, xp)[:, :self.latent]

    def decode(self, codes):
        """Images ``(n, H, W)`` in (0, 1) of codes ``(n, k)``."""
        xp = self.xp
        p = sigmoid(self.decoder(self._host(codes), xp), xp)
        return xp.reshape(p, (p.shape[0], *self.image_shape))

    def reconstruct(self, images):
        """``decode(encode(images))`` (the VAE decodes the posterior mean)."""
        return self.decode(self.encode(images))

    def fixed_inputs(self, rng):
        n = self.config.eval_samples
        val = self.splits.validation
        return {"grid_z": self.prior_draws(rng, 100), "val_z": self.prior_draws(rng, n),
                "val_images": val[:min(n, len(val))]}

    def grid_images(self, fixed):
        return self.decode(fixed["grid_z"])

    def sample(self, n, rng, labels=None):
        return to_numpy(self.decode(self.prior_draws(rng, n)))

    def validation(self, fixed):
        out = validation_metrics(self, to_numpy(self.decode(fixed["val_z"])))
        val = fixed["val_images"]
        rec = to_numpy(self.reconstruct(val))
        out.update(reconstruction_errors(rec, val, self.config.ssim_config()))
        return out


class VAE(_Autoencoder):
    """Variational autoencoder (see the module docstring). Networks ``encoder`` and
    ``decoder``, one optimiser group ``vae``, one phase ``train``."""

    name = "vae"

    def __init__(self, config: VAEConfig, splits, xp):
        super().__init__(config, splits, xp, 2 * config.latent)
        self.groups["vae"] = ("encoder", "decoder")

    def phases(self):
        return (Phase("train", self.config.steps, self.config.batch, ("vae",)),)

    def prior_draws(self, rng, n):
        return rng.standard_normal((n, self.latent))

    def loss_and_grads(self, batch, rng, stage):
        xp, k, beta = self.xp, self.latent, self.config.beta
        x = batch["images"]
        n = x.shape[0]
        h, enc_tape = self.encoder.forward(x, xp)
        mu, logvar = h[:, :k], h[:, k:]
        eps = self._host(rng.standard_normal((n, k)))
        z, std = reparameterize(mu, logvar, eps, xp)
        logits, dec_tape = self.decoder.forward(z, xp)
        rec, g_logits, parts = self.recon(logits, x, xp)
        kl, g_mu_kl, g_lv_kl = gaussian_kl(mu, logvar, xp)
        gz, dec_grads = self.decoder.backward(dec_tape, g_logits / n, xp)
        g_mu, g_lv = reparameterize_vjp(gz, std, eps)
        g_h = xp.concat([g_mu + (beta / n) * g_mu_kl, g_lv + (beta / n) * g_lv_kl], axis=1)
        _, enc_grads = self.encoder.backward(enc_tape, g_h, xp)
        rec_mean, kl_mean = float(xp.sum(rec)) / n, float(xp.sum(kl)) / n
        losses = {"loss": rec_mean + beta * kl_mean, "recon": rec_mean, "kl": kl_mean}
        if len(parts) > 1:
            losses.update({f"recon_{name}": float(xp.sum(v)) / n for name, v in parts.items()})
        return losses, {"encoder": enc_grads, "decoder": dec_grads}


class AAE(_Autoencoder):
    """Adversarial autoencoder (see the module docstring). Networks ``encoder``,
    ``decoder``, ``discriminator``; groups (stages) ``reconstruction``,
    ``discriminator``, ``regularization``."""

    name = "aae"

    def __init__(self, config: AAEConfig, splits, xp):
        super().__init__(config, splits, xp, config.latent)
        self.discriminator = MLP.from_sizes([config.latent, *config.disc_hidden, 1],
                                            hidden="leaky_relu", output="linear")
        self.networks["discriminator"] = self.discriminator
        self.groups.update(reconstruction=("encoder", "decoder"),
                           discriminator=("discriminator",), regularization=("encoder",))

    def phases(self):
        return (Phase("train", self.config.steps, self.config.batch,
                      ("reconstruction", "discriminator", "regularization")),)

    def prior_draws(self, rng, n):
        return sample_prior(self.config.prior, rng, n, self.latent)

    def loss_and_grads(self, batch, rng, stage):
        xp = self.xp
        x = batch["images"]
        n = x.shape[0]
        if stage == "reconstruction":
            z, enc_tape = self.encoder.forward(x, xp)
            logits, dec_tape = self.decoder.forward(z, xp)
            rec, g_logits, parts = self.recon(logits, x, xp)
            gz, dec_grads = self.decoder.backward(dec_tape, g_logits / n, xp)
            _, enc_grads = self.encoder.backward(enc_tape, gz, xp)
            losses = {"recon": float(xp.sum(rec)) / n}
            if len(parts) > 1:
                losses.update({f"recon_{k}": float(xp.sum(v)) / n for k, v in parts.items()})
            return losses, {"encoder": enc_grads, "decoder": dec_grads}
        if stage == "discriminator":
            codes = self.encoder(x, xp)
            prior = self._host(self.prior_draws(rng, n))
            both = xp.concat([prior, codes], axis=0)
            logits, tape = self.discriminator.forward(both, xp)
            loss, g_real, g_fake = discriminator_loss(logits[:n], logits[n:], self.config, xp)
            _, grads = self.discriminator.backward(tape, xp.concat([g_real, g_fake], axis=0),
                                                   xp)
            return {"d_loss": loss}, {"discriminator": grads}
        if stage != "regularization":
            raise ValueError(f"unknown AAE stage {stage!r}")
        codes, enc_tape = self.encoder.forward(x, xp)
        logits, tape = self.discriminator.forward(codes, xp)
        loss, g_fake = generator_loss(logits, self.config, xp)
        g_codes, _ = self.discriminator.backward(tape, g_fake, xp, need_params=False)
        _, enc_grads = self.encoder.backward(enc_tape, g_codes, xp)
        return {"g_loss": loss}, {"encoder": enc_grads}
