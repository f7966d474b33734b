"""Moved to :mod:`ssimref.generative.grid`; its names stay importable from here."""

from ..generative.grid import *  # noqa: F401,F403
from ..generative.grid import __all__  # noqa: F401
