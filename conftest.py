"""pytest runs doctests over ssimref/ too: skip the modules of engines whose library is
not installed (the package itself imports them only when used)."""

import importlib.util


def _missing(module):
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


collect_ignore = [path for path, module in (("ssimref/engines/numba_engine.py", "numba"),
                                          ("ssimref/engines/numba_vjp.py", "numba"))
                  if _missing(module)]
