from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from lorebase.cli import app as cli_app
from lorebase.settings import Settings, get_settings

PASSWORD = "a long enough password"


def _env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    assert settings.lorebase_secret_key is not None
    return {
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "REDIS_URL": settings.redis_url.get_secret_value(),
        "REDIS_PREFIX": settings.redis_prefix,
        "LOREBASE_SECRET_KEY": settings.lorebase_secret_key.get_secret_value(),
        "LOREBASE_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _invoke(args: list[str], env: dict[str, str], stdin: str | None = None) -> Any:
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli_app, args, input=stdin, env=env)
    finally:
        get_settings.cache_clear()


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )


async def test_prompts_twice_and_creates_a_user_who_can_log_in(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    env = _env(settings, tmp_path)
    # Run in a thread: the command drives its own event loop with asyncio.run().
    result = await asyncio.to_thread(
        _invoke, ["user", "create", name], {**env, "LOREBASE_PASSWORD": ""}, f"{PASSWORD}\n" * 2
    )
    assert result.exit_code == 0, result.output
    assert f"created user {name}" in result.output
    assert result.output.count("Password") == 1
    assert "Repeat for confirmation" in result.output
    assert PASSWORD not in result.output  # hidden input is not echoed

    token = await _login(client, name, PASSWORD)
    assert token.status_code == 200
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert me.json()["is_admin"] is False


async def test_mismatched_confirmation_creates_nothing(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    env = {**_env(settings, tmp_path), "LOREBASE_PASSWORD": ""}
    result = await asyncio.to_thread(
        _invoke, ["user", "create", name], env, f"{PASSWORD}\nsomething else\n"
    )
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert (await _login(client, name, PASSWORD)).status_code == 401


async def test_password_from_env_admin_flag_and_duplicates(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    env = _env(settings, tmp_path, LOREBASE_PASSWORD=PASSWORD)
    result = await asyncio.to_thread(_invoke, ["user", "create", name, "--admin"], env)
    assert result.exit_code == 0, result.output
    assert f"created administrator {name}" in result.output
    assert "Password" not in result.output  # nothing was asked

    token = await _login(client, name, PASSWORD)
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert me.json()["is_admin"] is True

    again = await asyncio.to_thread(_invoke, ["user", "create", name.upper()], env)
    assert again.exit_code == 1
    assert "already taken" in again.output


async def test_invalid_input_is_refused_without_echoing_the_password(
    settings: Settings, tmp_path: Path
) -> None:
    short = _env(settings, tmp_path, LOREBASE_PASSWORD="short7!")
    result = await asyncio.to_thread(_invoke, ["user", "create", "valid_name"], short)
    assert result.exit_code == 1
    assert "password" in result.output
    assert "short7!" not in result.output
    bad_name = _env(settings, tmp_path, LOREBASE_PASSWORD=PASSWORD)
    result = await asyncio.to_thread(_invoke, ["user", "create", "no spaces allowed"], bad_name)
    assert result.exit_code == 1
    assert "username" in result.output


async def test_operator_can_create_users_when_registration_is_closed(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    env = _env(settings, tmp_path, LOREBASE_PASSWORD=PASSWORD, ALLOW_REGISTRATION="false")
    result = await asyncio.to_thread(_invoke, ["user", "create", name], env)
    assert result.exit_code == 0, result.output
    assert (await _login(client, name, PASSWORD)).status_code == 200


@pytest.mark.slow
async def test_console_script_in_a_subprocess(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **_env(settings, tmp_path, LOREBASE_PASSWORD=PASSWORD)}
    script = Path(sys.executable).with_name("lorebase")
    done = await asyncio.to_thread(
        subprocess.run,
        [str(script), "user", "create", name, "--admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"created administrator {name}" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    assert (await _login(client, name, PASSWORD)).status_code == 200
