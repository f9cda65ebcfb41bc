"""`python -m services.quality`: the same as `deloton quality`."""

import sys

from services.cli import main

sys.exit(main(["quality", *sys.argv[1:]]))
