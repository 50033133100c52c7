"""``my-llm``: look at the message logs. The only module of my_llm that prints or exits."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from my_llm import MessageStore, MyLLMError, Settings, list_namespaces, validate_namespace


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Keep, search and reuse what you say to LLMs. Logs live under MESSAGE_HISTORY."""


@main.command()
def namespaces() -> None:
    """List the namespaces that have a message log, with their message counts."""
    settings = _settings()
    names = list_namespaces(settings.message_history)
    if not names:
        click.echo(f"No namespaces yet under {settings.message_history}.")
        return
    table = Table("namespace", "messages", "log")
    for name in names:
        store = MessageStore(settings.message_history, name)
        table.add_row(name, str(sum(1 for _ in store.read())), str(store.path))
    Console().print(table)


@main.group()
def log() -> None:
    """Read a namespace's message log."""


@log.command("show")
@click.argument("namespace")
@click.option("--json", "as_json", is_flag=True, help="One JSON record a line, as stored.")
def log_show(namespace: str, as_json: bool) -> None:
    """Show the messages of NAMESPACE, oldest first."""
    settings = _settings()
    try:
        store = MessageStore(settings.message_history, validate_namespace(namespace), settings.fsync)
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    if not store.path.exists():
        raise click.ClickException(f"No log for namespace {namespace!r} at {store.path}. See `my-llm namespaces`.")
    if as_json:
        for record in store.read():
            click.echo(record.to_json())
        return
    table = Table("time (UTC)", "role", "content", "model", show_lines=False)
    for record in store.read():
        table.add_row(record.created_at[:19].replace("T", " "), record.role, record.content, record.model or "")
    Console().print(table)
