"""The password policy (issue 14): at least 10 characters, not common, not one repeated."""

from __future__ import annotations

import uuid

import httpx
import pytest


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("aaaaaaaa", "at least 10"),
        ("aaaaaaaaaaaa", "too few characters"),
        ("Password123", "too common"),
        ("1234567890", "too common"),
    ],
)
async def test_weak_passwords_are_refused(
    client: httpx.AsyncClient, password: str, reason: str
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": f"weak_{uuid.uuid4().hex[:8]}", "password": password},
    )
    assert response.status_code == 422, response.text
    assert reason in response.json()["errors"][0]["msg"]
    assert password not in response.text, "the password is never echoed"


async def test_a_passphrase_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": f"ok_{uuid.uuid4().hex[:8]}", "password": "purple lantern river"},
    )
    assert response.status_code == 201, response.text
