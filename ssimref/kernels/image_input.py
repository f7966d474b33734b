"""Image input of the scikit-learn estimators (:class:`~ssimref.kernels.SSIMKernel`,
:class:`~ssimref.kernels.SSIMNystroem`): stacks or flat rows, and their conventions."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy.typing as npt
from sklearn.utils.validation import check_array

from ..backend import ArrayLike
from ..config import SSIMConfig, resolve_config
from ..validation import check_not_masked

__all__ = ["ImageInputMixin", "CONVENTIONS"]

#: The :class:`~ssimref.SSIMConfig` fields the estimators take as parameters.
CONVENTIONS = ("window", "size", "sigma", "stride", "data_range", "k1", "k2", "covariance")


class ImageInputMixin:
    """``_images(X, reset)``: ``X`` as a stack ``(n, H, W[, C])`` in its own dtype, from
    image stacks or from scikit-learn's flat ``(n_samples, n_features)`` rows with the
    ``image_shape`` parameter; sets ``image_shape_`` and ``n_features_in_`` at fit and
    checks them afterwards. ``_conventions()``: the estimator's ``config`` with its
    convention parameters applied."""

    image_shape: Any
    config: SSIMConfig | None
    image_shape_: tuple[int, ...]
    n_features_in_: int

    def _conventions(self) -> SSIMConfig:
        return resolve_config(self.config, **{name: getattr(self, name)
                                              for name in CONVENTIONS})

    def _images(self, X: ArrayLike, reset: bool) -> npt.NDArray[Any]:
        check_not_masked(X, "X")  # check_array would drop the mask
        X = check_array(X, allow_nd=True, dtype="numeric")
        given = self._check_image_shape()
        if X.ndim == 2:
            shape = given if reset else (given or self.image_shape_)
            if shape is None:
                raise ValueError(
                    f"X is 2-D, shape {X.shape}: scikit-learn's (n_samples, n_features) "
                    "layout needs image_shape=(H, W) or (H, W, C) to turn rows into "
                    "images (e.g. image_shape=(8, 8) for load_digits().data); or pass "
                    "images of shape (n, H, W[, C])")
            features = math.prod(shape)
            expected = features if reset else self.n_features_in_
            if X.shape[1] != expected:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} "
                                 f"is expecting {expected} features as input (images of "
                                 f"shape {tuple(shape)}, flattened)")
            X = X.reshape((X.shape[0], *shape))
        elif X.ndim in (3, 4):
            if given is not None and tuple(X.shape[1:]) != given:
                raise ValueError(f"X holds images of shape {tuple(X.shape[1:])} but "
                                 f"image_shape={given}; drop image_shape or make it match")
        else:
            raise ValueError(f"X must have shape (n, H, W), (n, H, W, C) or flat "
                             f"(n, H*W[*C]) with image_shape, got shape {X.shape}")
        if reset:
            self.image_shape_ = tuple(X.shape[1:])
            self.n_features_in_ = math.prod(self.image_shape_)
        elif tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(f"X holds images of shape {tuple(X.shape[1:])}, but "
                             f"{type(self).__name__} was fitted on images of shape "
                             f"{self.image_shape_}")
        return X

    def _check_image_shape(self) -> tuple[int, ...] | None:
        shape = self.image_shape
        if shape is None:
            return None
        ok = (isinstance(shape, (tuple, list)) and len(shape) in (2, 3)
              and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                      and int(v) >= 1 for v in shape))
        if not ok:
            raise ValueError(f"image_shape must be a tuple (H, W) or (H, W, C) of positive "
                             f"integers, got {shape!r}")
        return tuple(int(v) for v in shape)
