"""The test suite's PostgreSQL servers: `lorebase.bench.pgcluster` (the bench's replica scenario
starts the same servers)."""

from lorebase.bench.pgcluster import TcpPostgres

__all__ = ["TcpPostgres"]
