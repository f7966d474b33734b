"""Finite-difference check of a whole generative model's ``loss_and_grads``, shared by
the tests and by the report of the largest relative errors."""

import numpy as np

from ssimref.generative.mlp import LeakyReLU, ReLU, Tanh

# the scalar each stage's gradients belong to
STAGE_LOSS = {"vae": "loss", "reconstruction": "recon", "regularization": "g_loss",
              "discriminator": "d_loss", "generator": ("g_total", "g_loss", "loss"),
              "autoencoder": "loss"}


def smooth(model):
    """Replace (leaky) ReLUs by tanh: finite differences then hold everywhere."""
    for net in model.networks.values():
        net.layers = [Tanh() if isinstance(layer, (ReLU, LeakyReLU)) else layer
                      for layer in net.layers]
    return model


def stage_loss(losses, stage):
    keys = STAGE_LOSS[stage]
    for key in (keys if isinstance(keys, tuple) else (keys,)):
        if key in losses:
            return losses[key]
    raise KeyError(stage)


def check_model(model, n=4, entries=10, h=1e-6, seed=3):
    """Largest relative error over every stage, network and sampled parameter entry:
    ``|analytic - numeric| / max |numeric|`` per parameter array."""
    rng = np.random.default_rng(seed)
    model.init(np.random.default_rng(seed + 1))
    worst = 0.0
    for phase in model.phases():
        data = model.phase_data(phase)
        idx = np.arange(n)
        batch = {k: (v[idx] if isinstance(v, np.ndarray) and v.dtype.kind in "iu"
                     else v[:n]) for k, v in data.items()}
        for stage in phase.stages:
            losses, grads = model.loss_and_grads(batch, np.random.default_rng(11), stage)
            assert set(grads) <= set(model.groups[stage])
            for net, g in grads.items():
                params = model.networks[net].params
                assert sorted(g) == sorted(params), (stage, net)
                for name, p in params.items():
                    picks = [np.unravel_index(k, p.shape) for k in
                             rng.choice(p.size, size=min(entries, p.size), replace=False)]
                    numeric = []
                    for i in picks:
                        values = []
                        for sign in (1, -1):
                            q = p.copy()
                            q[i] += sign * h
                            params[name] = q
                            values.append(stage_loss(model.loss_and_grads(
                                batch, np.random.default_rng(11), stage)[0], stage))
                        params[name] = p
                        numeric.append((values[0] - values[1]) / (2 * h))
                    numeric = np.array(numeric)
                    analytic = np.array([g[name][i] for i in picks])
                    scale = max(np.abs(numeric).max(), 1e-10)
                    worst = max(worst, float(np.abs(analytic - numeric).max() / scale))
    return worst
