"""``python -m syncd`` → :func:`syncd.cli.main`."""

import sys

from syncd.cli import main

sys.exit(main())
