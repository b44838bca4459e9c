"""``python -m hub.serve [--workers N …]``: see hub.serve.options for the settings."""

from __future__ import annotations

import os
import sys

from hub.serve.options import parse_options
from hub.serve.server import run

if __name__ == "__main__":
    sys.exit(run(parse_options(sys.argv[1:], os.environ)))
