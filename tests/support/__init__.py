"""What the tests (and bench) share: config builder, WORKBOX state, subprocesses, oracle, PostgreSQL.

The dependency runs one way: ``bench`` imports from here; nothing under ``tests`` imports ``bench``
(an import-linter contract in pyproject.toml).
"""
