"""Durable job queue wiring (procrastinate on PostgreSQL)."""
