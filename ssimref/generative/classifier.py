"""The feature classifier of the evaluation: an MLP trained on a data set's real training
split, whose last hidden layer is the feature space of the Frechet distance and whose
predictions grade class-conditional samples.

Architecture: ``pixels -> 256 -> 128 -> 10``, ReLU hidden units, softmax output; the
features are the 128 ReLU activations of the last hidden layer. Training: softmax
cross-entropy, Adam (lr 1e-3, betas 0.9 / 0.999), minibatches of 128, 10 epochs over the
training split augmented with copies of every image shifted by one pixel in each of the
8 directions (zero fill) — 9 images per training digit — drawn in an order from a
generator seeded 0, one BLAS thread: the same weights on every run on one machine.
Measured test accuracy: 0.97+ on mnist5k (500 test digits), 0.97+ on the 8x8 digits (300)
(see ``docs/generative.md`` for the figures of the current version, and
:attr:`FeatureClassifier.test_accuracy`).

Cache: a trained classifier is stored under ``ssimref.datasets.cache_dir() /
"classifiers" / KEY`` as a checkpoint (:mod:`~ssimref.generative.checkpoint`: ``.npz``
without pickles, SHA-256, written atomically), ``KEY`` a SHA-256 of the settings, the
format version and the training images and labels. A cache entry that fails its checksum
or holds other settings is retrained and replaced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint, save_checkpoint
from .mlp import MLP, Linear
from .optim import Adam

__all__ = ["ClassifierConfig", "FeatureClassifier", "train_classifier", "load_classifier",
           "softmax_cross_entropy", "shifted", "CLASSIFIER_FORMAT"]

CLASSIFIER_FORMAT = 1


@dataclass(frozen=True)
class ClassifierConfig:
    """Settings of the feature classifier (see the module docstring)."""

    hidden: tuple = (256, 128)
    epochs: int = 10
    batch: int = 128
    lr: float = 1e-3
    shift: int = 1
    seed: int = 0


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of integer ``labels`` under ``softmax(logits)`` and its gradient
    ``(softmax(logits) - onehot(labels)) / n`` (NumPy arrays)."""
    n = logits.shape[0]
    shifted_logits = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted_logits).sum(axis=1, keepdims=True))
    log_p = shifted_logits - log_z
    loss = -float(np.mean(log_p[np.arange(n), labels]))
    grad = np.exp(log_p)
    grad[np.arange(n), labels] -= 1.0
    return loss, grad / n


def shifted(images, dy, dx):
    """Images ``(n, H, W)`` moved by ``dy`` rows and ``dx`` columns, zeros shifted in."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


class FeatureClassifier:
    """A trained classifier: :meth:`features`, :meth:`predict`, :meth:`accuracy`.

    Attributes: ``net`` (:class:`~ssimref.generative.mlp.MLP`), ``config``,
    ``test_accuracy`` and ``validation_accuracy`` on the data set's own splits.
    """

    def __init__(self, net, config, test_accuracy=None, validation_accuracy=None):
        self.net, self.config = net, config
        self.test_accuracy, self.validation_accuracy = test_accuracy, validation_accuracy

    def _flat(self, images):
        images = np.asarray(images, dtype=np.float64)
        return images.reshape(images.shape[0], -1)

    def features(self, images):
        """Activations ``(n, hidden[-1])`` of the last hidden layer."""
        x = self._flat(images)
        last = max(i for i, layer in enumerate(self.net.layers) if isinstance(layer, Linear))
        return self.net.forward_until(x, np, last)

    def logits(self, images):
        return self.net(self._flat(images), np)

    def predict(self, images):
        """Predicted labels ``(n,)``."""
        return np.argmax(self.logits(images), axis=1)

    def accuracy(self, images, labels):
        return float(np.mean(self.predict(images) == np.asarray(labels)))


def _augmented(images, shift):
    if not shift:
        return images, 1
    moved = [images] + [shifted(images, dy, dx) for dy in (-shift, 0, shift)
                        for dx in (-shift, 0, shift) if (dy, dx) != (0, 0)]
    return np.concatenate(moved), len(moved)


def train_classifier(splits, config=ClassifierConfig()):
    """Train the classifier on ``splits.train`` (deterministic; see the module
    docstring) and measure it on the validation and test splits."""
    from threadpoolctl import threadpool_limits
    n_classes = splits.n_classes
    if n_classes < 2:
        raise ValueError(f"{splits.name} has no labels; the feature classifier needs them")
    images, copies = _augmented(np.asarray(splits.train), config.shift)
    labels = np.tile(splits.train_labels, copies)
    x = images.reshape(images.shape[0], -1)
    net = MLP.from_sizes([x.shape[1], *config.hidden, n_classes], hidden="relu",
                         output="linear")
    rng = np.random.default_rng(config.seed)
    net.init(rng, np)
    opt = Adam(lr=config.lr)
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(config.epochs):
            order = rng.permutation(x.shape[0])
            for start in range(0, len(order), config.batch):
                idx = order[start:start + config.batch]
                logits, tape = net.forward(x[idx], np)
                _, g = softmax_cross_entropy(logits, labels[idx])
                _, grads = net.backward(tape, g, np)
                net.params = opt.step(net.params, grads, np)
        classifier = FeatureClassifier(net, config)
        classifier.test_accuracy = classifier.accuracy(splits.test, splits.test_labels)
        classifier.validation_accuracy = classifier.accuracy(splits.validation,
                                                             splits.validation_labels)
    return classifier


def _key(splits, config):
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": CLASSIFIER_FORMAT, "config": asdict(config)},
                             sort_keys=True).encode())
    digest.update(np.ascontiguousarray(splits.train, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(splits.train_labels, dtype="<i8").tobytes())
    return digest.hexdigest()[:24]


def load_classifier(splits, config=ClassifierConfig(), cache=True):
    """The classifier of ``splits`` (a :class:`~ssimref.generative.data.DigitSplits`):
    read from the disk cache when present and intact, else trained and cached.

    ``cache=False`` trains without reading or writing the cache. A cache folder that
    cannot be written only skips the write.
    """
    folder = None
    if cache:
        from ..datasets import cache_dir
        folder = Path(cache_dir()) / "classifiers" / _key(splits, config)
        try:
            arrays, meta = load_checkpoint(folder)
            if meta.get("config") == json.loads(json.dumps(asdict(config))) and \
                    meta.get("format") == CLASSIFIER_FORMAT:
                net = MLP.from_sizes([int(np.prod(splits.image_shape)), *config.hidden,
                                      splits.n_classes], hidden="relu", output="linear")
                net.params = {k: np.asarray(v) for k, v in arrays.items()}
                return FeatureClassifier(net, config, meta["test_accuracy"],
                                         meta["validation_accuracy"])
        except (FileNotFoundError, ValueError, KeyError, OSError):
            pass  # missing or damaged: retrain
    classifier = train_classifier(splits, config)
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            save_checkpoint(folder, config.epochs, classifier.net.params,
                            {"config": asdict(config), "format": CLASSIFIER_FORMAT,
                             "dataset": splits.name,
                             "test_accuracy": classifier.test_accuracy,
                             "validation_accuracy": classifier.validation_accuracy})
        except OSError:
            pass
    return classifier
