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


async def _configure(conn: AsyncConnection[Any], session_settings: dict[str, str]) -> None:
    # Autocommit is set here, not in the pool's connect kwargs: procrastinate's LISTEN
    # connection reuses those kwargs and adds its own `autocommit=True` (a TypeError that
    # stopped the job worker of `lorebase serve`).
    await conn.set_autocommit(True)
    await register_vector_async(conn)
    # Filtered HNSW searches keep scanning until top-k rows pass the filter (pgvector >= 0.8).
    await conn.execute("SET hnsw.iterative_scan = relaxed_order")
    for name, value in session_settings.items():
        await conn.execute("SELECT set_config(%s, %s, false)", (name, value))


class Database:
    """An async connection pool; `connection()` for reads, `transaction()` for writes."""

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 2,
        max_size: int = 20,
        session_settings: dict[str, str] | None = None,
    ) -> None:
        """`session_settings` are `set_config`-ed on every new connection (e.g. the
        configured `hnsw.ef_search`, so a search needs no transaction to set it locally)."""
        self.conninfo = conninfo
        self.session_settings = settings = dict(session_settings or {})

        async def configure(conn: AsyncConnection[Any]) -> None:
            await _configure(conn, settings)

        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=configure,
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
