"""pytest runs doctests over ssimref/ too: skip the modules of engines whose library is
not installed (the package itself imports them only when used)."""

import importlib.util

collect_ignore = [path for path, module in (("ssimref/engines/numba_engine.py", "numba"),)
                  if importlib.util.find_spec(module) is None]
