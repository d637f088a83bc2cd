"""The PostgreSQL pool (psycopg 3, async) shared by every repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Conn = AsyncConnection[DictRow]


async def _configure(conn: AsyncConnection[Any]) -> None:
    # Autocommit is set here, not in the pool's connect kwargs: procrastinate's LISTEN
    # connection reuses those kwargs and adds its own `autocommit=True` (a TypeError that
    # stopped the job worker of `lorebase serve`).
    await conn.set_autocommit(True)
    await register_vector_async(conn)
    # Filtered HNSW searches keep scanning until top-k rows pass the filter (pgvector >= 0.8).
    await conn.execute("SET hnsw.iterative_scan = relaxed_order")


class Database:
    """An async connection pool; `connection()` for reads, `transaction()` for writes."""

    def __init__(self, conninfo: str, *, min_size: int = 2, max_size: int = 20) -> None:
        self.conninfo = conninfo
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=_configure,
            kwargs={"row_factory": dict_row},
            timeout=10.0,
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30.0)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        async with self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    async def ping(self) -> bool:
        try:
            async with self.pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")
        except Exception:
            return False
        return True


def sqlalchemy_url(conninfo: str) -> str:
    """The same database as a SQLAlchemy URL for Alembic (psycopg 3 dialect)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if conninfo.startswith(prefix):
            return "postgresql+psycopg://" + conninfo[len(prefix) :]
    raise ValueError("DATABASE_URL must start with postgresql://")
