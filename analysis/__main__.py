"""Lets `python3 -m analysis ...` run the command line."""

import sys

from .cli import main

sys.exit(main())
