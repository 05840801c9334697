"""``python -m learnact``: the same command line as the ``learnact`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
