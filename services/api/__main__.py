"""`python -m services.api [--host H] [--port P]`, the same as `deloton api`."""

import sys

from services.cli import main

sys.exit(main(["api", *sys.argv[1:]]))
