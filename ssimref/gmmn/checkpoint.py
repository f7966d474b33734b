"""Moved to :mod:`ssimref.generative.checkpoint`; its names stay importable from here."""

from ..generative.checkpoint import *  # noqa: F401,F403
from ..generative.checkpoint import __all__  # noqa: F401
