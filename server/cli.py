"""``my-llm-server``: ``serve`` the API, and the admin commands ``users add|list|disable|key|revoke`` and
``purge``.

The users commands talk to the database in ``MY_LLM_DATABASE_URL`` directly, ``purge`` to the logs under
``MESSAGE_HISTORY`` (no server needed; a running one may keep serving).
"""

from __future__ import annotations

import sys

import click

from my_llm import MyLLMError, list_namespaces
from server.config import ServerSettings
from server.db import make_engine, session_factory
from server.logbook import purge_deleted
from server.users import (
    UserError,
    add_user,
    check_name,
    create_key,
    disable_user,
    list_users,
    namespaces_of_user,
    revoke_keys,
    user_of_namespace,
)


def _sessions():
    try:
        config = ServerSettings.from_env()
        return session_factory(make_engine(config.database_url)), config
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error


@click.group()
def main() -> None:
    """my-llm-server: a REST API, an OpenAI-compatible logging proxy and web pages (sign in at /signin) over
    my_llm."""


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
    """List users: name, admin, disabled, live keys (with the namespace labels of labelled keys)."""
    for user, labels in _run(list_users):
        flags = ", ".join(flag for flag, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on)
        named = ", ".join(f"{label}: {labels[label]}" for label in sorted(filter(None, labels)))
        labelled = f" (namespaces {named})" if named else ""
        click.echo(f"{user.name}\t{flags or '-'}\t{sum(labels.values())} key(s){labelled}")


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable user NAME: their keys stop working at once."""
    _run(lambda session: disable_user(session, name))
    click.echo(f"Disabled {name}.")


@users.command("key")
@click.argument("name")
@click.option(
    "--namespace",
    "label",
    default=None,
    metavar="LABEL",
    help="Log this key's traffic to user-NAME.key-LABEL (1-40 of a-z0-9_-) instead of user-NAME.",
)
def users_key(name: str, label: str | None) -> None:
    """Make a new API key for NAME; printed once, as the last line."""
    key = _run(lambda session: create_key(session, name, label))
    where = f" (logs to user-{name}.key-{label})" if label else ""
    click.echo(f"New key for {name}{where} (shown once; only its hash is stored):")
    click.echo(key)


@users.command("revoke")
@click.argument("name")
@click.option("--prefix", default=None, help="Only the key starting with this (its first 12 characters).")
def users_revoke(name: str, prefix: str | None) -> None:
    """Revoke NAME's keys (all, or the one starting with --prefix)."""
    count = _run(lambda session: revoke_keys(session, name, prefix))
    click.echo(f"Revoked {count} key(s) of {name}.")


@main.command()
@click.option("--user", "user_name", default=None, help="Only this user's namespaces (default: every user's).")
@click.option("--dry-run", is_flag=True, help="Say what would be purged; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(user_name: str | None, dry_run: bool, yes: bool) -> None:
    """Remove from disk the records of deleted conversations, keeping their tombstones.

    The one sanctioned rewrite of the append-only logs (DESIGN.md, "Deleting a conversation"): each log is
    rewritten under its lock and swapped in atomically; records not yet delivered to Pub/Sub stay pending.
    """
    try:
        config = ServerSettings.from_env()
        settings = config.settings
        existing = list_namespaces(settings.message_history)
        if user_name is not None:
            namespaces = [ns for ns in namespaces_of_user(check_name(user_name), existing) if ns in existing]
        else:
            namespaces = [ns for ns in existing if user_of_namespace(ns)]
        plans = [plan for plan in (purge_deleted(settings, ns, dry_run=True) for ns in namespaces) if plan.records]
    except (MyLLMError, UserError) as error:
        raise click.ClickException(str(error)) from error
    if not plans:
        click.echo("Nothing to purge: no deleted conversation has records left on disk.")
        return
    for plan in plans:
        click.echo(_purge_line(plan, "would remove" if dry_run else "to remove"))
    if dry_run:
        click.echo("Dry run: nothing was changed.")
        return
    if not yes:
        click.confirm("Remove these records from disk for good?", abort=True)
    total_records = total_bytes = 0
    for plan in plans:
        try:
            done = purge_deleted(settings, plan.namespace)
        except MyLLMError as error:
            raise click.ClickException(f"{plan.namespace}: {error}") from error
        click.echo(_purge_line(done, "removed"))
        total_records, total_bytes = total_records + done.records, total_bytes + done.bytes
    click.echo(f"Purged {total_records} record(s), {total_bytes} bytes; the tombstones stay.")


def _purge_line(report, verb: str) -> str:
    return (
        f"{report.namespace}: {verb} {report.records} record(s), {report.bytes} bytes of "
        f"{len(report.sessions)} conversation(s) ({', '.join(report.sessions)}) from {', '.join(report.files)}"
    )


if __name__ == "__main__":
    main()
