"""``python -m consultflow``: the same command line as the ``consultflow`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
