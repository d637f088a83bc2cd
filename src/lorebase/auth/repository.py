"""SQL for users and refresh tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from lorebase.db import Conn, one_row, page_of

USER_COLUMNS = "id, username, email, is_admin, is_active, created_at, password_hash"


async def insert_user(
    conn: Conn, *, username: str, email: str | None, password_hash: str, is_admin: bool
) -> dict[str, Any] | None:
    """The new user, or None when the username is taken (case-insensitively)."""
    cur = await conn.execute(
        f"""
        INSERT INTO users (username, email, password_hash, is_admin)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT ((lower(username))) DO NOTHING
        RETURNING {USER_COLUMNS}
        """,
        (username, email, password_hash, is_admin),
    )
    return await cur.fetchone()


async def get_user_by_username(conn: Conn, username: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower(%s)", (username,)
    )
    return await cur.fetchone()


async def find_users_by_login(conn: Conn, login: str) -> list[dict[str, Any]]:
    """The user with this username (case-insensitively), else those with this e-mail."""
    cur = await conn.execute(
        f"""
        SELECT {USER_COLUMNS} FROM users
        WHERE lower(username) = lower(%(login)s)
           OR (lower(email) = lower(%(login)s) AND NOT EXISTS (
               SELECT 1 FROM users WHERE lower(username) = lower(%(login)s)))
        ORDER BY lower(username) LIMIT 2
        """,
        {"login": login},
    )
    return await cur.fetchall()


async def get_user(conn: Conn, user_id: UUID) -> dict[str, Any] | None:
    cur = await conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
    return await cur.fetchone()


async def insert_refresh_token(
    conn: Conn, *, jti: UUID, user_id: UUID, family_id: UUID, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (id, user_id, family_id, expires_at) VALUES (%s, %s, %s, %s)",
        (jti, user_id, family_id, expires_at),
    )


async def spend_refresh_token(conn: Conn, jti: UUID) -> dict[str, Any] | None:
    """Mark the token used; returns its row as it was, or None if it does not exist."""
    cur = await conn.execute(
        """
        UPDATE refresh_tokens AS t SET used_at = now()
        FROM (SELECT id, used_at AS was_used_at FROM refresh_tokens WHERE id = %s FOR UPDATE) AS old
        WHERE t.id = old.id
        RETURNING t.id, t.user_id, t.family_id, t.expires_at, t.revoked_at, old.was_used_at
        """,
        (jti,),
    )
    return await cur.fetchone()


async def revoke_family(conn: Conn, family_id: UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = %s AND revoked_at IS NULL",
        (family_id,),
    )


API_KEY_COLUMNS = "id, name, prefix, scopes, project_id, expires_at, last_used_at, created_at"


async def count_live_api_keys_locked(conn: Conn, *, user_id: UUID) -> int:
    """The user's unrevoked, unexpired keys; locks the user's row so that concurrent mints
    are counted one after the other (the cap holds under a burst)."""
    await conn.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,))
    cur = await conn.execute(
        "SELECT count(*) AS n FROM api_keys WHERE user_id = %s AND revoked_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > now())",
        (user_id,),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def insert_api_key(
    conn: Conn,
    *,
    user_id: UUID,
    name: str,
    prefix: str,
    key_hash: str,
    scopes: list[str],
    project_id: UUID | None,
    expires_at: datetime | None,
) -> dict[str, Any]:
    cur = await conn.execute(
        f"""
        INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes, project_id, expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {API_KEY_COLUMNS}
        """,
        (user_id, name, prefix, key_hash, scopes, project_id, expires_at),
    )
    return await one_row(cur)


async def list_api_keys(
    conn: Conn, *, user_id: UUID, skip: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    cur = await conn.execute(
        f"""
        SELECT {API_KEY_COLUMNS}, count(*) OVER () AS total FROM api_keys
        WHERE user_id = %s AND revoked_at IS NULL
        ORDER BY created_at DESC, id OFFSET %s LIMIT %s
        """,
        (user_id, skip, limit),
    )
    count = "SELECT count(*) AS total FROM api_keys WHERE user_id = %s AND revoked_at IS NULL"
    rows, total = await page_of(
        conn, await cur.fetchall(), skip=skip, count=count, params=(user_id,)
    )
    return [{k: v for k, v in r.items() if k != "total"} for r in rows], total


async def get_api_key(conn: Conn, *, user_id: UUID, key_id: UUID) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {API_KEY_COLUMNS} FROM api_keys "
        "WHERE id = %s AND user_id = %s AND revoked_at IS NULL",
        (key_id, user_id),
    )
    return await cur.fetchone()


async def revoke_api_key(conn: Conn, *, user_id: UUID, key_id: UUID) -> bool:
    cur = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() "
        "WHERE id = %s AND user_id = %s AND revoked_at IS NULL",
        (key_id, user_id),
    )
    return cur.rowcount > 0


async def use_api_key(
    conn: Conn, *, key_hash: str, touch_after_seconds: int
) -> dict[str, Any] | None:
    """The live key with its owner, or None if unknown, expired or revoked. `last_used_at` is
    stamped only when it is older than `touch_after_seconds`, so most uses write nothing.
    One statement: the data-modifying CTE runs whether or not the outer query reads it."""
    cur = await conn.execute(
        """
        WITH k AS (
            SELECT k.id, k.user_id, k.scopes, k.project_id, k.last_used_at,
                   u.username, u.is_admin
            FROM api_keys k JOIN users u ON u.id = k.user_id
            WHERE k.key_hash = %s AND u.is_active
              AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
        ), touched AS (
            UPDATE api_keys SET last_used_at = now()
            WHERE id = (SELECT id FROM k)
              AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => %s))
        )
        SELECT id, user_id, scopes, project_id, username, is_admin FROM k
        """,
        (key_hash, touch_after_seconds),
    )
    return await cur.fetchone()


async def list_users(conn: Conn, *, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Users by name, one page, and how many there are."""
    cur = await conn.execute(
        f"SELECT {USER_COLUMNS}, count(*) OVER () AS total FROM users "
        "ORDER BY lower(username) OFFSET %s LIMIT %s",
        (skip, limit),
    )
    return await page_of(
        conn, await cur.fetchall(), skip=skip, count="SELECT count(*) AS total FROM users"
    )
