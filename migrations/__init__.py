"""Alembic environment of the staging database (shipped as ``syncd.migrations``)."""
