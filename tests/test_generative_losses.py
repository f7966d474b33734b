"""Loss terms of the generative models against independent references: central finite
differences for every gradient (also at identical images, where SSIM terms are 0 and must
not give NaN), numerical integration for the KL term, enumeration of all permutations for
the matched fidelity term."""

import itertools
import math

import numpy as np
import pytest

from ssimref import SSIMConfig, distance
from ssimref.paired import paired_distance
from ssimref.generative.losses import (LS_CODINGS, ImageDistance, Reconstruction, assignment,
                                       bce_with_logits, brute_force_matching,
                                       gan_discriminator_loss, gan_generator_loss,
                                       gaussian_kl, ls_discriminator_loss, ls_generator_loss,
                                       matched_fidelity, softplus)
from ssimref.generative.mlp import sigmoid

from .finite_differences import assert_grad_close, numerical_gradient

SSIM = SSIMConfig(size=5, data_range=1.0)
SHAPE = (8, 8)
IMAGE_LOSSES = ("l1", "l2", "ssim-eq1", "ssim-eq1-uncentered", "ssim-eq2")
RECONS = ("bce", "l2", "ssim-eq1", "ssim-eq1-uncentered", "ssim-eq2")


def _images(rng, n=3):
    return rng.uniform(0.05, 0.95, size=(n, 64))


def test_softplus_and_bce_are_stable_and_exact(rng):
    a = np.array([[-800.0, -30.0, 0.0, 30.0, 800.0]])
    np.testing.assert_allclose(softplus(a, np)[0, 1:4],
                               [math.log1p(math.exp(-30.0)), math.log(2.0),
                                30.0 + math.log1p(math.exp(-30.0))], rtol=1e-15)
    assert softplus(a, np)[0, 0] == 0.0 and softplus(a, np)[0, 4] == 800.0
    logits, x = rng.normal(size=(4, 6)) * 3, rng.random((4, 6))
    values, grad = bce_with_logits(logits, x, np)
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(values, -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1),
                               rtol=1e-12)
    assert_grad_close(grad, numerical_gradient(
        lambda a: np.sum(bce_with_logits(a, x, np)[0]), logits), rel=1e-7)


@pytest.mark.parametrize("loss", IMAGE_LOSSES)
@pytest.mark.parametrize("squared", [True, False])
def test_image_distance_gradient(loss, squared, rng):
    dist = ImageDistance(loss, SHAPE, SSIM, squared=squared)
    p, x = _images(rng), _images(rng)
    w = rng.random(3)
    values, grad = dist(p, x, np)
    assert values.shape == (3,) and grad.shape == p.shape
    numeric = numerical_gradient(lambda q: np.sum(w * dist(q, x, np)[0]), p)
    assert_grad_close(w[:, None] * grad, numeric, rel=1e-6)


@pytest.mark.parametrize("loss", IMAGE_LOSSES)
def test_image_distance_scale_is_a_per_element_mean(loss, rng):
    """l1/l2: mean over the 64 pixels; SSIM: D^2 over the 16 positions of 5x5 windows in
    8x8 images, D from the core ``ssimref.distance``."""
    p, x = _images(rng, 2), _images(rng, 2)
    values, _ = ImageDistance(loss, SHAPE, SSIM)(p, x, np)
    if loss == "l1":
        expected = np.abs(p - x).mean(axis=1)
    elif loss == "l2":
        expected = ((p - x) ** 2).mean(axis=1)
    else:
        kind = loss[len("ssim-"):]
        expected = [distance(a.reshape(SHAPE), b.reshape(SHAPE), kind, SSIM) ** 2 / 16
                    for a, b in zip(p, x)]
    np.testing.assert_allclose(values, expected, rtol=1e-12)


@pytest.mark.parametrize("loss", IMAGE_LOSSES)
@pytest.mark.parametrize("squared", [True, False])
def test_identical_images_give_zero_not_nan(loss, squared, rng):
    dist = ImageDistance(loss, SHAPE, SSIM, squared=squared)
    x = _images(rng)
    values, grad = dist(x.copy(), x, np)
    assert np.all(values == 0.0) and np.all(grad == 0.0)
    if squared or dist.kind is None:
        # a smooth minimum (D^2) or a symmetric kink (|.|, D): central differences are 0
        numeric = numerical_gradient(lambda q: np.sum(dist(q, x, np)[0]), x.copy())
        assert np.all(np.abs(numeric) < 1e-5)


@pytest.mark.parametrize("recon", RECONS)
@pytest.mark.parametrize("squared", [True, False])
def test_reconstruction_identical_images_give_zero(recon, squared, rng):
    if recon == "bce" or (recon == "l2" and not squared):
        return
    logits = rng.normal(size=(3, 64))
    x = sigmoid(logits, np)
    term = Reconstruction(recon, SHAPE, SSIM, squared=squared, ssim_weight=3.0)
    total, grad, _ = term(logits, x, np)
    assert np.all(total == 0.0) and np.all(grad == 0.0)


@pytest.mark.parametrize("recon,mix", [(r, "none") for r in RECONS] +
                         [("ssim-eq2", "l2"), ("ssim-eq1", "bce"),
                          ("ssim-eq1-uncentered", "l2")])
@pytest.mark.parametrize("squared", [True, False])
def test_reconstruction_gradient(recon, mix, squared, rng):
    term = Reconstruction(recon, SHAPE, SSIM, squared=squared, mix=mix, mix_weight=0.7,
                          calibration_images=rng.random((5, 8, 8)))
    logits, x = rng.normal(size=(3, 64)), rng.random((3, 64))
    w = rng.random(3)
    total, grad, parts = term(logits, x, np)
    numeric = numerical_gradient(lambda a: np.sum(w * term(a, x, np)[0]), logits)
    assert_grad_close(w[:, None] * grad, numeric, rel=1e-6)
    assert set(parts) == {recon} | ({mix} if mix != "none" else set())


def test_ssim_weight_rule(rng):
    """Default weight: mean ||m - x||^2 / mean D(m, x)^2 over the calibration images, m
    their mean image, D from the core ``ssimref.distance`` (D itself when unsquared); an
    explicit weight replaces it."""
    images = rng.random((6, 8, 8)) ** 2
    m = images.mean(axis=0)
    sq = np.mean([np.sum((m - x) ** 2) for x in images])
    d = np.array([distance(m, x, "eq2", SSIM) for x in images])
    squared = Reconstruction("ssim-eq2", SHAPE, SSIM, calibration_images=images)
    assert squared.ssim_weight == pytest.approx(sq / np.mean(d**2), rel=1e-12)
    root = Reconstruction("ssim-eq2", SHAPE, SSIM, squared=False, calibration_images=images)
    assert root.ssim_weight == pytest.approx(sq / np.mean(d), rel=1e-12)
    # the calibrated term equals the l2 term on average for the mean image
    logits = np.broadcast_to(np.log(m / (1 - m)).reshape(1, -1), (6, 64))
    flat = images.reshape(6, -1)
    assert np.mean(squared(logits, flat, np)[0]) == pytest.approx(sq, rel=1e-9)
    logits, x = rng.normal(size=(2, 64)), rng.random((2, 64))
    p = sigmoid(logits, np)
    d = np.array([distance(a.reshape(SHAPE), b.reshape(SHAPE), "eq2", SSIM)
                  for a, b in zip(p, x)])
    mixed = Reconstruction("ssim-eq2", SHAPE, SSIM, ssim_weight=2.5, mix="l2", mix_weight=0.5)
    np.testing.assert_allclose(mixed(logits, x, np)[0],
                               2.5 * d**2 + 0.5 * np.sum((p - x) ** 2, axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="calibration_images"):
        Reconstruction("ssim-eq1", SHAPE, SSIM)


def test_gan_fidelity_calibration_against_l1():
    from ssimref.generative.data import load_splits
    from ssimref.generative.runs import build_model, config_class
    splits = load_splits("digits")
    model = build_model("pix2pix", config_class("pix2pix")(fidelity="ssim-eq1", ssim_size=5))
    m = splits.train.mean(axis=0)
    l1 = np.mean(np.abs(splits.train - m).mean(axis=(1, 2)))
    means = np.broadcast_to(m, splits.train.shape)
    d2 = paired_distance(means, splits.train, "eq1", SSIM, squared=True) / 16
    assert model.fidelity_scale == pytest.approx(l1 / np.mean(d2), rel=1e-10)
    plain = build_model("pix2pix", config_class("pix2pix")(fidelity="ssim-eq1", ssim_size=5,
                                                           fidelity_calibrate=False))
    assert plain.fidelity_scale == 1.0
    assert build_model("pix2pix", config_class("pix2pix")(ssim_size=5)).fidelity_scale == 1.0


def test_eq1_ignores_window_means(rng):
    """Eq. (1) centres every window: an image and its copy brightened by a constant are at
    distance 0 (so an eq1-only loss cannot fix brightness); Eq. (2) and l2 see the offset."""
    x = rng.uniform(0.1, 0.6, size=(2, 64))
    brighter = x + 0.3
    eq1, _ = ImageDistance("ssim-eq1", SHAPE, SSIM)(brighter, x, np)
    eq2, _ = ImageDistance("ssim-eq2", SHAPE, SSIM)(brighter, x, np)
    l2, _ = ImageDistance("l2", SHAPE, SSIM)(brighter, x, np)
    assert np.all(eq1 < 1e-12)
    assert np.all(eq2 > 1e-3) and np.allclose(l2, 0.09)


def test_gaussian_kl_against_numerical_integration(rng):
    """KL(q || p) = integral of q log(q / p), by quadrature in each coordinate (the
    coordinates are independent, so the KL is the sum over coordinates)."""
    from scipy import integrate, stats
    mu, logvar = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    values, g_mu, g_lv = gaussian_kl(mu, logvar, np)
    for i in range(2):
        total = 0.0
        for m, lv in zip(mu[i], logvar[i]):
            s = math.exp(lv / 2)
            q = stats.norm(m, s)
            total += integrate.quad(lambda z: q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z)),
                                    m - 40 * s, m + 40 * s, epsabs=1e-13, epsrel=1e-12)[0]
        assert values[i] == pytest.approx(total, rel=1e-9)
    assert_grad_close(g_mu, numerical_gradient(lambda m: np.sum(gaussian_kl(m, logvar, np)[0]),
                                               mu), rel=1e-8)
    assert_grad_close(g_lv, numerical_gradient(lambda v: np.sum(gaussian_kl(mu, v, np)[0]),
                                               logvar), rel=1e-8)


def test_gaussian_kl_against_monte_carlo():
    """A second, sampling reference: E_q[log q(z) - log p(z)] over 400,000 draws, within
    5 standard errors."""
    from scipy import stats
    mu, logvar = np.array([[0.7, -1.2]]), np.array([[0.4, -0.9]])
    value = gaussian_kl(mu, logvar, np)[0][0]
    rng = np.random.default_rng(5)
    s = np.exp(logvar[0] / 2)
    z = mu[0] + s * rng.standard_normal((400_000, 2))
    log_ratio = np.sum(stats.norm.logpdf(z, mu[0], s) - stats.norm.logpdf(z), axis=1)
    se = log_ratio.std() / math.sqrt(len(log_ratio))
    assert abs(log_ratio.mean() - value) < 5 * se


def test_label_smoothing_is_the_cross_entropy_with_target_09(rng):
    real, fake = rng.normal(size=(5, 1)), rng.normal(size=(3, 1))
    loss, g_real, _ = gan_discriminator_loss(real, fake, np, real_target=0.9)
    D_real, D_fake = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
    expected = (-np.mean(0.9 * np.log(D_real) + 0.1 * np.log(1 - D_real))
                - np.mean(np.log(1 - D_fake)))
    assert loss == pytest.approx(expected, rel=1e-12)
    assert_grad_close(g_real, numerical_gradient(
        lambda v: gan_discriminator_loss(v, fake, np, real_target=0.9)[0], real), rel=1e-7)


@pytest.mark.parametrize("kind", ["gan", "gan-saturating", "ls-0-1-1", "ls--1-1-0"])
def test_adversarial_losses_by_formula_and_gradient(kind, rng):
    real, fake = rng.normal(size=(5, 1)) * 2, rng.normal(size=(4, 1)) * 2
    D = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
    if kind.startswith("gan"):
        d_loss, g_real, g_fake = gan_discriminator_loss(real, fake, np)
        assert d_loss == pytest.approx(-np.mean(np.log(D[0])) - np.mean(np.log(1 - D[1])),
                                       rel=1e-12)
        saturating = kind == "gan-saturating"
        g_loss, g_gen = gan_generator_loss(fake, np, saturating=saturating)
        expected = np.mean(np.log(1 - D[1])) if saturating else -np.mean(np.log(D[1]))
        assert g_loss == pytest.approx(expected, rel=1e-12)
        d_of_real = numerical_gradient(lambda v: gan_discriminator_loss(v, fake, np)[0], real)
        d_of_fake = numerical_gradient(lambda v: gan_discriminator_loss(real, v, np)[0], fake)
        g_of_fake = numerical_gradient(
            lambda v: gan_generator_loss(v, np, saturating=saturating)[0], fake)
    else:
        coding = kind[3:]
        a, b, c = LS_CODINGS[coding]
        d_loss, g_real, g_fake = ls_discriminator_loss(real, fake, coding, np)
        assert d_loss == pytest.approx(0.5 * np.mean((real - b) ** 2) +
                                       0.5 * np.mean((fake - a) ** 2), rel=1e-12)
        g_loss, g_gen = ls_generator_loss(fake, coding, np)
        assert g_loss == pytest.approx(0.5 * np.mean((fake - c) ** 2), rel=1e-12)
        d_of_real = numerical_gradient(lambda v: ls_discriminator_loss(v, fake, coding, np)[0],
                                       real)
        d_of_fake = numerical_gradient(lambda v: ls_discriminator_loss(real, v, coding, np)[0],
                                       fake)
        g_of_fake = numerical_gradient(lambda v: ls_generator_loss(v, coding, np)[0], fake)
    assert_grad_close(g_real, d_of_real, rel=1e-7)
    assert_grad_close(g_fake, d_of_fake, rel=1e-7)
    assert_grad_close(g_gen, g_of_fake, rel=1e-7)


@pytest.mark.parametrize("n", [2, 4, 6])
def test_assignment_against_brute_force(n, rng):
    for _ in range(5):
        cost = rng.random((n, n))
        perm = assignment(cost)
        _, best = brute_force_matching(cost)
        assert sum(cost[i, perm[i]] for i in range(n)) == pytest.approx(best, rel=1e-14)
        assert sorted(perm) == list(range(n))


def test_assignment_within_classes_against_brute_force(rng):
    labels = np.array([0, 1, 0, 2, 1, 0])
    cost = rng.random((6, 6))
    perm = assignment(cost, labels)
    assert np.all(labels[perm] == labels)
    _, best = brute_force_matching(cost, labels)
    assert sum(cost[i, perm[i]] for i in range(6)) == pytest.approx(best, rel=1e-14)


@pytest.mark.parametrize("loss", ["ssim-eq2", "ssim-eq1", "l1", "l2"])
def test_matched_fidelity_is_the_minimum_over_all_permutations(loss, rng):
    """The matched term equals min over all 5! permutations of the mean distance, each
    distance computed pair by pair (not from the matrix the assignment used), and its
    gradient is the gradient of that mean with the minimising permutation fixed."""
    dist = ImageDistance(loss, SHAPE, SSIM)
    G, X = _images(rng, 5), _images(rng, 5)
    value, grad, perm = matched_fidelity(dist, G, X, np)
    best = min(np.mean(dist(G, X[list(p)], np)[0]) for p in itertools.permutations(range(5)))
    assert value == pytest.approx(best, rel=1e-12)
    numeric = numerical_gradient(lambda g: np.mean(dist(g, X[perm], np)[0]), G)
    assert_grad_close(grad, numeric, rel=1e-6)
    # and the value is continuous: a small move of G keeps the optimal value near
    moved, _, _ = matched_fidelity(dist, G + 1e-7, X, np)
    assert abs(moved - value) < 1e-5
