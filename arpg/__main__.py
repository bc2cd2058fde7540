"""``python -m arpg <command>``: the same command line as the ``arpg`` console script."""

import sys

from .cli import main

sys.exit(main())
