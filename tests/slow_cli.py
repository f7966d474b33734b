"""``python tests/slow_cli.py ARGS...`` runs ``ssimref ARGS...`` with every engine slowed
down by ``$SSIMREF_TEST_TILE_DELAY`` seconds per tile, in this process and in the Dask
worker processes it starts (they re-import this file as their main module, which runs the
module-level code below but not the command). The kill/resume tests use it to stop a job
after some but not all of its tiles on any machine. With ``$SSIMREF_TEST_TILE_MARK`` set
to a path, every tile creates that file before it starts (a test waits for it to know
that the computation is under way)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.dask_helpers import block_method, slow_engines  # noqa: E402

_DELAY = float(os.environ.get("SSIMREF_TEST_TILE_DELAY", "0") or 0)
_MARK = os.environ.get("SSIMREF_TEST_TILE_MARK")
if _DELAY > 0:
    slow_engines(_DELAY)
if _MARK:
    from ssimref.engines import get_engine

    for _name in ("numba", "reference"):
        _engine = get_engine(_name)
        _method = block_method(_engine)

        def _marked(*args, _original=getattr(_engine, _method), **kwargs):
            Path(_MARK).touch()
            return _original(*args, **kwargs)

        setattr(_engine, _method, _marked)

if __name__ == "__main__":
    from ssimref.cli import main

    sys.exit(main(sys.argv[1:]))
