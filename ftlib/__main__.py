"""``python -m ftlib ...``: see ftlib/cli.py."""
import sys

from .cli import main

sys.exit(main())
