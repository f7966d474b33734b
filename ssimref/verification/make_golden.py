"""Generate the golden SSIM values shipped with ssimref (``verification/golden.json``).

Run ``python -m ssimref.verification.make_golden --force`` to regenerate the file in place,
or ``--output PATH`` to write elsewhere. The file holds, for every small case of
:mod:`ssimref.verification.cases` (their pixels stored as JSON lists with dtype, shape and
memory layout) and every configuration of :data:`GOLDEN_CONFIGS`, values computed by the
loop-based :mod:`ssimref.verification.oracle`:

- ``ssim``: mean SSIM (over window positions and channels),
- ``s1_mean``, ``s2_mean``: means of the luminance and contrast-structure maps,
- ``d2_eq1``, ``d2_eq1-uncentered``, ``d2_eq2``: squared SSIM distances ``D^2``, the sums
  over windows and channels of ``1 - s2``, ``1 - s1 s2`` and ``2 - s1 - s2``,
- ``exact``: for uniform windows and inputs whose decimal values are exact binary numbers,
  the same quantities computed in exact rational arithmetic and correctly rounded to 30
  significant digits (a decimal string; the fractions themselves run to thousands of
  digits).

Other projects can test against the file without running ssimref; it records the
configurations and the versions that generated it. The generator lives inside the package
(not in ``benchmarks/``) so that an installed ssimref can regenerate and check its own
golden file, which the test suite does.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..config import SSIMConfig
from . import oracle
from .cases import corpus

__all__ = ["GOLDEN_CONFIGS", "GOLDEN_PATH", "golden_values", "build", "load_golden",
           "case_arrays", "main"]

GOLDEN_PATH = Path(__file__).with_name("golden.json")

GOLDEN_CONFIGS = {
    "wang2004": dict(window="gaussian", size=11, sigma=1.5, stride=1, k1=0.01, k2=0.03,
                     covariance="population"),
    "skimage": dict(window="uniform", size=7, sigma=1.5, stride=1, k1=0.01, k2=0.03,
                    covariance="sample"),
    "paper": dict(window="gaussian", size=7, sigma=1.5, stride=1, k1=0.01, k2=0.03,
                  covariance="sample"),
    "blocks4": dict(window="uniform", size=4, sigma=1.5, stride=4, k1=0.01, k2=0.03,
                    covariance="sample"),
}
"""Configurations (fields of :class:`ssimref.SSIMConfig`; the data range is each case's).
"blocks4" is the paper's non-overlapping 4x4 blocks (stride = size)."""

QUANTITIES = ("ssim", "s1_mean", "s2_mean", "d2_eq1", "d2_eq1-uncentered", "d2_eq2")


def _exactly_decimal(a) -> bool:
    """Whether every value's shortest decimal is the binary value itself, so that exact
    arithmetic on the decimals is exact arithmetic on the array."""
    return all(Fraction(str(v)) == Fraction(v) for v in np.asarray(a, dtype=np.float64).ravel())


def _quantities(s1, s2):
    s1, s2 = s1.ravel().tolist(), s2.ravel().tolist()
    n = len(s1)
    exact = isinstance(s1[0], Fraction)
    total = sum if exact else math.fsum
    return {
        "ssim": total(a * b for a, b in zip(s1, s2)) / n,
        "s1_mean": total(s1) / n,
        "s2_mean": total(s2) / n,
        "d2_eq1": total(1 - b for b in s2),
        "d2_eq1-uncentered": total(1 - a * b for a, b in zip(s1, s2)),
        "d2_eq2": total(2 - a - b for a, b in zip(s1, s2)),
    }


def golden_values(case, name, exact=True):
    """The golden quantities of one case under the configuration ``name`` (None when its
    window does not fit the case)."""
    config = SSIMConfig(data_range=case.data_range, **GOLDEN_CONFIGS[name])
    if config.size > min(case.x.shape[:2]):
        return None
    values = _quantities(*oracle.ssim_components(case.x, case.y, config))
    if exact and config.window == "uniform" and _exactly_decimal(case.x) \
            and _exactly_decimal(case.y):
        fractions = _quantities(*oracle.ssim_components(case.x, case.y, config, exact=True))
        values["exact"] = {k: _decimal(v) for k, v in fractions.items()}
    return values


def _decimal(fraction, digits=30) -> str:
    """A Fraction correctly rounded to ``digits`` significant digits, as a string."""
    with localcontext() as ctx:
        ctx.prec = digits
        return str(Decimal(fraction.numerator) / Decimal(fraction.denominator))


def _pixels(a):
    """Nested lists of JSON numbers (integers where the value is an integer)."""
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return a.tolist()
    values = a.astype(np.float64)
    if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
        return values.astype(np.int64).tolist()
    return values.tolist()


def build(names=None, exact=True):
    """The golden document (a dict) for the small cases (or those named)."""
    import ssimref

    cases = corpus(large=False) if names is None else corpus(names=names)
    doc = {
        "format": "ssimref-golden/1",
        "generator": "python -m ssimref.verification.make_golden "
                     "(loop-based oracle ssimref.verification.oracle)",
        "versions": {"ssimref": ssimref.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "definitions": {
            "window": "gaussian: w_ij = g_i g_j, g_k = exp(-(k - r)^2 / (2 sigma^2)), "
                      "r = (size - 1) / 2, normalised to sum 1; uniform: 1 / size^2",
            "positions": "valid windows only, every stride-th position from the top-left "
                         "pixel: (H - size) // stride + 1 per axis",
            "moments": "mu = sum w x; var = f sum w (x - mu)^2; cov = f sum w (x - mu_x)(y - "
                       "mu_y); f = 1 (population), 1 / (1 - sum w^2) (sample)",
            "s1": "(2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1), c1 = (k1 L)^2",
            "s2": "(2 cov + c2) / (var_x + var_y + c2), c2 = (k2 L)^2",
            "ssim": "mean over positions and channels of s1 s2",
            "s1_mean, s2_mean": "means over positions and channels of s1 and s2",
            "d2_eq1, d2_eq1-uncentered, d2_eq2": "sums over positions and channels of "
                                                 "1 - s2, 1 - s1 s2 and 2 - s1 - s2",
            "exact": "the same quantities in exact rational arithmetic, correctly rounded "
                     "to 30 significant digits, for uniform windows and inputs whose "
                     "decimal digits are their binary values",
            "images": "x and y as nested lists [row][col] or [row][col][channel]; convert "
                      "with the recorded dtype; L is the case's data_range",
        },
        "configs": GOLDEN_CONFIGS,
        "cases": {},
        "values": {},
    }
    for case in cases:
        doc["cases"][case.name] = {
            "description": case.description, "shape": list(case.shape),
            "dtype": str(case.x.dtype), "layout": case.layout,
            "data_range": case.data_range, "x": _pixels(case.x), "y": _pixels(case.y)}
        doc["values"][case.name] = {
            name: values for name in GOLDEN_CONFIGS
            if (values := golden_values(case, name, exact)) is not None}
    return doc


def dumps(doc) -> str:
    """JSON text with one line per image (compact pixel lists, indented structure)."""
    images, marked = {}, json.loads(json.dumps(doc))
    for name, case in marked["cases"].items():
        for key in ("x", "y"):
            token = f"@@{name}.{key}@@"
            images[f'"{token}"'] = json.dumps(case[key], separators=(",", ":"))
            case[key] = token
    text = json.dumps(marked, indent=1, sort_keys=True)
    for token, compact in images.items():
        text = text.replace(token, compact)
    return text + "\n"


def case_arrays(entry):
    """``(x, y)`` NumPy arrays of a golden-file case entry, in its dtype and layout."""
    dtype = np.dtype(entry["dtype"])
    x, y = (np.array(entry[k], dtype=dtype) for k in ("x", "y"))
    if entry["layout"] == "F":
        x, y = np.asfortranarray(x), np.asfortranarray(y)
    return x, y


def load_golden(path=None) -> dict:
    """The shipped golden document (or the one at ``path``)."""
    path = GOLDEN_PATH if path is None else Path(path)
    return json.loads(path.read_text())


def main(argv=None) -> int:
    from ..io import atomic_path

    parser = argparse.ArgumentParser(prog="python -m ssimref.verification.make_golden",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(GOLDEN_PATH),
                        help=f"where to write (default: the packaged {GOLDEN_PATH.name})")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    try:
        if Path(args.output).exists() and not args.force:
            raise FileExistsError(f"{args.output} exists; pass --force to overwrite it")
        text = dumps(build())
        with atomic_path(args.output, args.force) as tmp:
            Path(tmp).write_text(text)
    except (OSError, ValueError) as exc:
        print(f"make_golden: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
