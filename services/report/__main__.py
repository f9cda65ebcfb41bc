"""`python -m services.report` is `deloton report`."""

import sys

from services.cli import main

sys.exit(main(["report", *sys.argv[1:]]))
