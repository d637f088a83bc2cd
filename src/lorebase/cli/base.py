"""The `lorebase` command's Typer app and what every command shares: failing in one line,
checking the providers, starting (or reaching) the services.

Every `lorebase` process imports this package (cli/__init__ registers all the commands), so
the command modules import at the top only what defining their options needs; what a command
runs is imported in its body. `lorebase --help`, `user create`, `worker`, `mcp` or `bench`
then do not pay for the web app, MCP, Alembic or the benchmark they do not use
(tests/unit/test_cli_imports.py keeps it so)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import typer
from pydantic import SecretStr

from lorebase.embedded import EmbeddedServices, start_services
from lorebase.errors import ConfigurationError
from lorebase.logs import configure_logging
from lorebase.providers.registry import check_providers
from lorebase.settings import Settings, get_settings

app = typer.Typer(help="Lorebase: a knowledge engine for AI agents.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def fail(message: str) -> None:
    typer.secho(f"lorebase: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=1)


def command_settings() -> Settings:
    """The settings, with logging configured as they say: what every command starts with."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def project_option(value: str) -> uuid.UUID:
    """`--project` as a project id; a one-line failure naming the value otherwise."""
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"--project must be a project id (a UUID), got {value!r}")
        raise  # unreachable


@contextlib.contextmanager
def running_services(settings: Settings) -> Iterator[tuple[Settings, EmbeddedServices]]:
    """Start embedded services if needed, migrate, and yield settings that point at them."""
    try:
        services = start_services(settings)
    except ConfigurationError as exc:
        fail(str(exc))
        raise  # unreachable; keeps type checkers happy
    try:
        from lorebase.migrate import upgrade_database  # Alembic: only commands that migrate

        upgrade_database(services.database_url)
        resolved = settings.model_copy(
            update={
                "database_url": SecretStr(services.database_url),
                "redis_url": SecretStr(services.redis_url),
                "lorebase_secret_key": SecretStr(services.secret_key),
            }
        )
        yield resolved, services
    finally:
        services.stop()


def check_configured(settings: Settings) -> None:
    # A missing key or unknown provider fails here, as one line, not in uvicorn's lifespan.
    try:
        check_providers(settings)
    except ConfigurationError as exc:
        fail(str(exc))
