"""Every generative model's loss_and_grads against central finite differences (every
stage, every network, every reconstruction and fidelity term, both adversarial losses),
and the models' wiring: shapes, registry, bad configurations."""

import numpy as np
import pytest

from ssimref.generative.runs import MODELS, build_model, config_class

from .generative_gradcheck import check_model, smooth

TINY = dict(ssim_size=5, steps=1, batch=4, eval_samples=20)
REL = 2e-6


def _model(name, **kw):
    cls = config_class(name)
    extra = {}
    if name in ("vae", "aae"):
        extra = dict(hidden=(6,), latent=3)
    if name == "aae":
        extra.update(disc_hidden=(5,))
    if name in ("gan", "lsgan", "cgan", "pix2pix"):
        extra = dict(hidden=(6,), disc_hidden=(5,))
        if name != "pix2pix":
            extra["noise_dim"] = 3
    extra.update(kw)
    return smooth(build_model(name, cls(**TINY, **extra)))


@pytest.mark.parametrize("recon,mix", [("bce", "none"), ("l2", "none"), ("ssim-eq1", "none"),
                                       ("ssim-eq1-uncentered", "none"), ("ssim-eq2", "none"),
                                       ("ssim-eq2", "l2"), ("ssim-eq1", "bce")])
@pytest.mark.parametrize("squared", [True, False])
def test_vae_gradients(recon, mix, squared):
    assert check_model(_model("vae", recon=recon, mix=mix, recon_squared=squared,
                              beta=0.7)) < REL


@pytest.mark.parametrize("recon", ["bce", "l2", "ssim-eq1", "ssim-eq2"])
@pytest.mark.parametrize("adversarial,prior", [("gan", "gaussian"), ("ls", "mixture10")])
def test_aae_gradients(recon, adversarial, prior):
    assert check_model(_model("aae", recon=recon, adversarial=adversarial,
                              prior=prior)) < REL


def _gan_cases():
    """Every model x fidelity term; the matched SSIM terms of the unpaired models (a
    distance matrix per finite difference: 5-9 s each) run in the default suite for one
    pair each (gan with Eq. (2), cgan with Eq. (1) within classes) and the rest as slow."""
    cases = []
    for name in ("gan", "lsgan", "cgan", "pix2pix"):
        for fidelity in ("none", "l1", "l2", "ssim-eq1", "ssim-eq1-uncentered", "ssim-eq2"):
            slow = (name != "pix2pix" and fidelity.startswith("ssim")
                    and (name, fidelity) not in (("gan", "ssim-eq2"), ("cgan", "ssim-eq1")))
            cases.append(pytest.param(name, fidelity, marks=[pytest.mark.slow] if slow
                                      else []))
    return cases


@pytest.mark.parametrize("name,fidelity", _gan_cases())
def test_gan_family_gradients(name, fidelity):
    assert check_model(_model(name, fidelity=fidelity, fidelity_weight=0.8)) < REL


@pytest.mark.parametrize("variant", [dict(generator_loss="saturating"),
                                     dict(adversarial="ls", ls_coding="-1-1-0"),
                                     dict(disc_dropout=0.3, label_smoothing=0.1,
                                          fidelity="l2"),
                                     pytest.param(dict(fidelity="ssim-eq2",
                                                       fidelity_squared=False),
                                                  marks=pytest.mark.slow),
                                     dict(conditioning="image", noise_dim=2,
                                          corruption="noise", fidelity="ssim-eq2")])
def test_gan_variants_gradients(variant):
    assert check_model(_model("gan", **variant)) < REL


@pytest.mark.parametrize("kernel,space,conditional", [("rbf", "data", False),
                                                      ("ssim", "code", True)])
def test_gmmn_gradients_through_the_shared_protocol(kernel, space, conditional):
    model = _model("gmmn", kernel=kernel, space=space, conditional=conditional,
                   hidden=(5,), code_dim=3, ae_hidden=6, ae_dropout=0.0)
    assert check_model(model) < REL


def test_registry_lists_every_model():
    assert sorted(MODELS) == ["aae", "cgan", "gan", "gmmn", "lsgan", "pix2pix", "vae"]
    defaults = {name: config_class(name)() for name in MODELS}
    assert defaults["lsgan"].adversarial == "ls" and defaults["gan"].adversarial == "gan"
    assert defaults["cgan"].conditioning == "class"
    p2p = defaults["pix2pix"]
    assert (p2p.conditioning, p2p.fidelity, p2p.fidelity_weight, p2p.noise_dim) == \
        ("image", "l1", 100.0, 0)


def test_bad_configurations_name_the_fix():
    with pytest.raises(ValueError, match="recon must be one of"):
        config_class("vae")(recon="ssim")
    with pytest.raises(ValueError, match="mix"):
        config_class("vae")(recon="l2", mix="bce")
    with pytest.raises(ValueError, match="noise_dim"):
        config_class("gan")(noise_dim=0)
    with pytest.raises(ValueError, match="size must be odd"):
        config_class("vae")(ssim_size=6)
    with pytest.raises(ValueError, match="unknown model"):
        config_class("diffusion")
    with pytest.raises(ValueError, match="do not fit"):
        build_model("vae", config_class("vae")(recon="ssim-eq2", ssim_size=9))


def test_sampling_shapes_and_ranges():
    rng = np.random.default_rng(0)
    for name in ("vae", "aae", "gan", "cgan", "pix2pix"):
        model = _model(name)
        model.init(np.random.default_rng(1))
        labels = np.arange(7) % 10 if name == "cgan" else None
        images = model.sample(7, rng, labels)
        assert images.shape == (7, 8, 8) and images.min() >= 0 and images.max() <= 1
