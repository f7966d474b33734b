"""``python -m ssimref`` runs the command line."""

import sys

from .cli import main

if __name__ == "__main__":  # worker processes that re-import this module run nothing
    sys.exit(main())
