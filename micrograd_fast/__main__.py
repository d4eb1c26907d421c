"""``python -m micrograd_fast``: the micrograd-fast command."""

import sys

from micrograd_fast.lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
