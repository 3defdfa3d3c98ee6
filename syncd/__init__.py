"""syncd: directory sync daemon."""

__version__ = "0.1.0"
