"""Alembic migrations of the SQL adapter (run by :func:`~studentstatus.adapters.sql.upgrade`)."""
