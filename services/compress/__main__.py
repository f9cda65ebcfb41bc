"""`python -m services.compress [--now ISO] [--loop]`, the same as `deloton compress`."""

import sys

from services.cli import main

sys.exit(main(["compress", *sys.argv[1:]]))
