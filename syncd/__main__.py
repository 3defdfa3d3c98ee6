"""``python -m syncd`` → :func:`syncd.cli.entry`."""

from syncd.cli import entry

entry()
