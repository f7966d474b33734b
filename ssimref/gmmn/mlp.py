"""Moved to :mod:`ssimref.generative.mlp`; its names stay importable from here."""

from ..generative.mlp import *  # noqa: F401,F403
from ..generative.mlp import __all__  # noqa: F401
