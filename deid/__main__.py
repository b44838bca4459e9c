"""`python -m deid`: see deid.cli."""

import sys

from deid.cli import main

sys.exit(main())
