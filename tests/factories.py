"""Test data made through the real API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # not a pytest test class

    id: str
    username: str
    password: str
    headers: dict[str, str]
    refresh_token: str


async def register_user(
    client: httpx.AsyncClient, *, admin: bool = False, ctx: Any = None, prefix: str = "user"
) -> TestUser:
    """A fresh user, logged in. `admin=True` needs `ctx` (admins are made by the CLI path)."""
    username = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if admin:
        from lorebase.auth.schemas import UserCreate
        from lorebase.auth.service import register_user as create_user

        await create_user(
            ctx=ctx,
            data=UserCreate(username=username, password=DEFAULT_PASSWORD),  # type: ignore[arg-type]
            is_admin=True,
        )
    else:
        response = await client.post(
            "/api/v1/auth/register", json={"username": username, "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 201, response.text
    token = await client.post(
        "/api/v1/auth/token", data={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert token.status_code == 200, token.text
    pair = token.json()
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    return TestUser(
        id=me.json()["id"],
        username=username,
        password=DEFAULT_PASSWORD,
        headers={"Authorization": f"Bearer {pair['access_token']}"},
        refresh_token=pair["refresh_token"],
    )


async def create_project(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"name": f"project-{uuid.uuid4().hex[:8]}", **fields}
    response = await client.post("/api/v1/projects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
