"""`python -m services.export` is `deloton export`."""

import sys

from services.cli import main

sys.exit(main(["export", *sys.argv[1:]]))
