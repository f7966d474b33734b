"""Moved to :mod:`ssimref.generative.optim`; its names stay importable from here."""

from ..generative.optim import *  # noqa: F401,F403
from ..generative.optim import __all__  # noqa: F401
