"""The PostgreSQL pool (psycopg 3, async) shared by every repository."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from pgvector.psycopg import register_vector_async
from prometheus_client import Counter
from psycopg import AsyncConnection, sql
from psycopg.abc import Params
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

Conn = AsyncConnection[DictRow]
log = logging.getLogger(__name__)

SEARCH_READS = Counter(
    "lorebase_search_reads_total",
    "Searches by the server that answered them (replica, or primary when no replica was fresh)",
    ["target"],
)


@dataclass
class SearchRoute:
    """Where one search reads: decided by its first `search_connection` (`chosen`), then kept
    for its other connections. `replica`: the index of the fresh replica, None: the primary."""

    chosen: bool = False
    replica: int | None = None


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
        max_lifetime: float = 1800.0,
        max_idle: float = 300.0,
        session_settings: dict[str, str] | None = None,
        replica_conninfos: Sequence[str] = (),
    ) -> None:
        """`session_settings` are `set_config`-ed on every new connection (e.g. the
        configured `hnsw.ef_search`, so a search needs no transaction to set it locally).
        `replica_conninfos`: streaming read replicas that `search_connection` may use."""
        self.conninfo = conninfo
        self.session_settings = settings = dict(session_settings or {})

        async def configure(conn: AsyncConnection[Any]) -> None:
            await _configure(conn, settings)

        def pool(url: str, timeout: float) -> AsyncConnectionPool[Conn]:
            return AsyncConnectionPool(
                url,
                min_size=min_size,
                max_size=max_size,
                open=False,
                configure=configure,
                kwargs={"row_factory": dict_row},
                timeout=timeout,
                max_lifetime=max_lifetime,
                max_idle=max_idle,
            )

        self.pool: AsyncConnectionPool[Conn] = pool(conninfo, 10.0)
        # A replica that does not hand out a connection quickly is skipped, not waited for.
        self.replicas = [pool(url, 1.0) for url in replica_conninfos]
        self._turn = itertools.count()

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30.0)
        for replica in self.replicas:
            # A replica that is down at start must not stop the service: searches use the
            # primary until it answers.
            await replica.open(wait=False)

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.close()
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        async with self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def search_connection(
        self, *, project_id: UUID, generation: int, route: SearchRoute | None = None
    ) -> AsyncIterator[Conn]:
        """A connection for a project's search: a read replica (round robin) that has replayed
        at least `generation` of the project's corpus, else the primary. The caller read
        `generation` from the primary, so the answer is never staler than its own writes.
        `route` carries the choice across one search's connections (legs, passages): the
        freshness check runs once per search, since a replica never goes back."""
        async with AsyncExitStack() as stack:
            if route is not None and route.chosen:
                conn = await self._routed(stack, route)
            else:
                conn, index = await self._fresh_replica(stack, project_id, generation)
                if route is not None:
                    route.chosen, route.replica = True, index
            SEARCH_READS.labels("primary" if conn is None else "replica").inc()
            if conn is None:
                conn = await stack.enter_async_context(self.pool.connection())
            yield conn

    async def _routed(self, stack: AsyncExitStack, route: SearchRoute) -> Conn | None:
        """A connection of the replica `route` chose (None: the primary, or that replica fails
        now; the rest of the search then reads from the primary)."""
        if route.replica is None:
            return None
        try:
            return await stack.enter_async_context(self.replicas[route.replica].connection())
        except (PoolTimeout, psycopg.Error, OSError) as exc:
            log.warning("read replica unavailable, using the primary: %s", type(exc).__name__)
            route.replica = None
            return None

    async def _fresh_replica(
        self, stack: AsyncExitStack, project_id: UUID, generation: int
    ) -> tuple[Conn | None, int | None]:
        if not self.replicas:
            return None, None
        start = next(self._turn)
        for i in range(len(self.replicas)):
            index = (start + i) % len(self.replicas)
            attempt = AsyncExitStack()
            try:
                conn = await attempt.enter_async_context(self.replicas[index].connection())
                cursor = await conn.execute(
                    "SELECT corpus_generation FROM projects WHERE id = %s", (project_id,)
                )
                row = await cursor.fetchone()
            except (PoolTimeout, psycopg.Error, OSError) as exc:
                log.warning("read replica unavailable, trying the next one: %s", type(exc).__name__)
                await attempt.aclose()
                continue
            if row is not None and int(row["corpus_generation"]) >= generation:
                await stack.enter_async_context(attempt)
                return conn, index
            await attempt.aclose()  # lagging behind the caller's writes
        return None, None

    async def ping(self) -> bool:
        try:
            async with self.pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")
        except Exception:
            return False
        return True


async def one_row(cursor: psycopg.AsyncCursor[DictRow]) -> DictRow:
    """The row a statement that always returns one (INSERT ... RETURNING, count(*)) returned."""
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


def where_equal(where: list[str], params: list[Any], columns: Mapping[str, object]) -> None:
    """Add `column = %s` to `where`, and its value to `params`, for every column in `columns`
    whose value is not None (a list filter left out matches everything)."""
    for column, value in columns.items():
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)


async def page_of(
    conn: Conn,
    rows: list[DictRow],
    *,
    skip: int,
    count: str | sql.SQL | sql.Composed,
    params: Params | None = None,
) -> tuple[list[DictRow], int]:
    """A page read with `count(*) OVER () AS total`, and that total. A page past the end has
    no row to carry it: then `count` (one row, column `total`) counts; an empty first page
    means there is nothing."""
    if rows:
        return rows, int(rows[0]["total"])
    if skip == 0:
        return [], 0
    cursor = await conn.execute(count, params)
    row = await cursor.fetchone()
    return [], int(row["total"]) if row else 0


def sqlalchemy_url(conninfo: str) -> str:
    """The same database as a SQLAlchemy URL for Alembic (psycopg 3 dialect)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if conninfo.startswith(prefix):
            return "postgresql+psycopg://" + conninfo[len(prefix) :]
    raise ValueError("DATABASE_URL must start with postgresql://")
