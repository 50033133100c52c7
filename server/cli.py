"""``my-llm-server``: ``serve`` the API, and the admin commands ``users add|list|disable|key|revoke``.

The users commands talk to the database in ``MY_LLM_DATABASE_URL`` directly (no server needed).
"""

from __future__ import annotations

import sys

import click

from my_llm import MyLLMError
from server.config import ServerSettings
from server.db import make_engine, session_factory
from server.users import add_user, create_key, disable_user, list_users, revoke_keys


def _sessions():
    try:
        config = ServerSettings.from_env()
        return session_factory(make_engine(config.database_url)), config
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error


@click.group()
def main() -> None:
    """my-llm-server: a REST API and an OpenAI-compatible logging proxy over my_llm."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log every request line.")
def serve(host: str, port: int, access_log: bool) -> None:
    """Serve the API (OpenAPI at /docs, routes under /v1) with uvicorn."""
    import uvicorn

    from server.app import create_app

    try:
        app = create_app()
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log, timeout_graceful_shutdown=10)


@main.group()
def users() -> None:
    """Manage users and their API keys."""


def _run(action):
    sessions, _config = _sessions()
    with sessions() as session:
        try:
            return action(session)
        except MyLLMError as error:
            raise click.ClickException(str(error)) from error


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an admin.")
@click.option("--password-stdin", is_flag=True, help="Read a password (first line) from stdin.")
def users_add(name: str, admin: bool, password_stdin: bool) -> None:
    """Add user NAME (lowercase letters, digits, _.-)."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not password:
        raise click.ClickException("--password-stdin: stdin gave an empty password.")
    user = _run(lambda session: add_user(session, name, admin=admin, password=password))
    click.echo(
        f"Added {user.name}{' (admin)' if user.is_admin else ''}. Give them a key: my-llm-server users key {name}"
    )


@users.command("list")
def users_list() -> None:
    """List users: name, admin, disabled, live keys."""
    for user, keys in _run(list_users):
        flags = ", ".join(flag for flag, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on)
        click.echo(f"{user.name}\t{flags or '-'}\t{keys} key(s)")


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable user NAME: their keys stop working at once."""
    _run(lambda session: disable_user(session, name))
    click.echo(f"Disabled {name}.")


@users.command("key")
@click.argument("name")
def users_key(name: str) -> None:
    """Make a new API key for NAME; printed once, as the last line."""
    key = _run(lambda session: create_key(session, name))
    click.echo(f"New key for {name} (shown once; only its hash is stored):")
    click.echo(key)


@users.command("revoke")
@click.argument("name")
@click.option("--prefix", default=None, help="Only the key starting with this (its first 12 characters).")
def users_revoke(name: str, prefix: str | None) -> None:
    """Revoke NAME's keys (all, or the one starting with --prefix)."""
    count = _run(lambda session: revoke_keys(session, name, prefix))
    click.echo(f"Revoked {count} key(s) of {name}.")


if __name__ == "__main__":
    main()
