"""``my-llm``: look at the message logs and re-publish them. The only module of my_llm that prints or exits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from my_llm import (
    MessageStore,
    MyLLMError,
    Record,
    Settings,
    list_namespaces,
    parse_time,
    validate_namespace,
)
from my_llm.cli_options import SINCE
from my_llm.log import Delivery, read_records, recorded_destination, replay_namespace

if TYPE_CHECKING:
    from my_llm import PubSubChatMessageHistory


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error


def _store(settings: Settings, namespace: str, must_exist: bool = True) -> MessageStore:
    try:
        store = MessageStore(settings.message_history, validate_namespace(namespace), settings.fsync)
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    if must_exist and not store.path.exists() and not store.archives():
        raise click.ClickException(f"No log for namespace {namespace!r} at {store.path}. See `my-llm namespaces`.")
    return store


def _line(record: Record) -> str:
    when = record.created_at[:19].replace("T", " ")
    return f"[dim]{when}[/] [bold]{record.role}[/] [dim]{record.session_id[:8]}[/] {escape(record.content)}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Keep, search and reuse what you say to LLMs. Logs live under MESSAGE_HISTORY."""


@main.command()
def namespaces() -> None:
    """List the namespaces that have a log: messages in the live log, records Pub/Sub has not acknowledged
    (archives included), messages in archives, and the topic `my-llm replay` sends to."""
    settings = _settings()
    names = list_namespaces(settings.message_history)
    if not names:
        click.echo(f"No namespaces yet under {settings.message_history}.")
        return
    table = Table("namespace", "messages", "not yet published", "archived")
    table.add_column("topic", overflow="fold")
    table.add_column("log", overflow="fold")
    for name in names:
        try:
            table.add_row(*_namespace_row(settings, name))
        except MyLLMError as error:
            raise click.ClickException(str(error)) from error
    Console().print(table)


def _namespace_row(settings: Settings, name: str) -> tuple[str, ...]:
    """One row of `my-llm namespaces`, from the namespace's index (which catches up first): no log is read."""
    store = MessageStore(settings.message_history, name, settings.fsync)
    delivery = Delivery(store)
    try:
        counts = delivery.counts()
    finally:
        delivery.close()
    destination = recorded_destination(store.folder)
    topic = destination.topic_path if destination else "(not published yet)"
    return name, str(counts["live"]), str(counts["pending"]), str(counts["archived"]), topic, str(store.path)


@main.group()
def log() -> None:
    """Read a namespace's message log."""


def _filtered(store: MessageStore, since: datetime | None, session: str | None) -> Iterator[Record]:
    for record in store.read():
        if since is not None and parse_time(record.created_at) < since:
            continue
        if session is not None and not record.session_id.startswith(session):
            continue
        yield record


@log.command("show")
@click.argument("namespace")
@click.option("--json", "as_json", is_flag=True, help="One JSON record a line, as stored.")
@click.option(
    "--since", type=SINCE, default=None, help="Only records created at or after TIME (ISO 8601 or 30m, 2h, 7d)."
)
@click.option("--session", default=None, help="Only this session id (a prefix is enough).")
def log_show(namespace: str, as_json: bool, since: datetime | None, session: str | None) -> None:
    """Show the messages of NAMESPACE, oldest first."""
    store = _store(_settings(), namespace)
    records = _filtered(store, since, session)
    if as_json:
        for record in records:
            click.echo(record.to_json())
        return
    table = Table("time (UTC)", "role", "session", "content", "model")
    for record in records:
        when = record.created_at[:19].replace("T", " ")
        table.add_row(when, record.role, record.session_id[:8], escape(record.content), record.model or "")
    Console().print(table)


def _follow(path: Path, offset: int, poll_s: float) -> Iterator[Record]:
    """Yield records appended to ``path`` after byte ``offset``; follows a new log after a clear()."""
    pending, inode = b"", _inode(path)
    while True:
        current = _inode(path)
        if current != inode:  # archived by clear(): a new log starts from zero
            offset, pending, inode = 0, b"", current
        size = path.stat().st_size if current else 0
        if size <= offset:
            time.sleep(poll_s)
            continue
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(size - offset)
        offset += len(chunk)
        *complete, pending = (pending + chunk).split(b"\n")
        for line in complete:
            if line.strip():
                try:
                    yield Record.from_json(line)
                except ValueError:
                    continue  # a torn line from a killed writer


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return 0


@log.command("tail")
@click.argument("namespace")
@click.option("-n", "--lines", default=10, show_default=True, type=click.IntRange(0), help="Records to show first.")
@click.option("--follow/--no-follow", default=True, show_default=True, help="Keep printing new records (Ctrl+C stops).")
@click.option("--json", "as_json", is_flag=True, help="One JSON record a line, as stored.")
def log_tail(namespace: str, lines: int, follow: bool, as_json: bool) -> None:
    """Show the last records of NAMESPACE, then new ones as they are logged."""
    store = _store(_settings(), namespace, must_exist=False)
    console = Console(highlight=False)

    def emit(record: Record) -> None:
        if as_json:
            click.echo(record.to_json())
        else:
            console.print(_line(record))

    offset = store.path.stat().st_size if store.path.exists() else 0
    recent = list(read_records(store.path))[-lines:] if lines else []
    for record in recent:
        emit(record)
    if not follow:
        return
    try:
        for record in _follow(store.path, offset, poll_s=0.2):
            emit(record)
    except KeyboardInterrupt:
        pass


@main.command()
@click.argument("namespace", required=False)
@click.option(
    "--since", type=SINCE, default=None, help="Re-publish every record created at or after TIME, acknowledged or not."
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for acknowledgements per namespace.")
@click.option(
    "--topic",
    default=None,
    metavar="TOPIC",
    help="Send to this topic (an id, or projects/P/topics/T) instead of the one recorded with NAMESPACE.",
)
def replay(namespace: str | None, since: datetime | None, timeout: float, topic: str | None) -> None:
    """Re-publish what Pub/Sub has not acknowledged, for NAMESPACE or every namespace.

    Each namespace's records go to the topic recorded when it was first published (`my-llm namespaces`
    shows it), or to my-llm-NAMESPACE when none was. Records keep their ids, so consumers that
    de-duplicate on the `id` attribute see each record once.
    """
    if topic and not namespace:
        raise click.UsageError("--topic needs a NAMESPACE: one topic for every namespace would mix them.")
    settings = _settings()
    names = [namespace] if namespace else list_namespaces(settings.message_history)
    table = Table("namespace", "sent", "acknowledged", "still pending")
    table.add_column("topic", overflow="fold")
    failed = 0
    for name in names:
        _store(settings, name)
        try:
            report = replay_namespace(name, settings, since=since, timeout=timeout, topic=topic)
        except MyLLMError as error:
            raise click.ClickException(str(error)) from error
        table.add_row(name, str(report.candidates), str(report.acknowledged), str(report.failed), report.topic_path)
        failed += report.failed
    Console().print(table)
    if failed:
        raise click.ClickException(
            f"{failed} record(s) were not acknowledged; they stay in the outbox. Run replay again."
        )


def _history(namespace: str, model: str | None = None) -> PubSubChatMessageHistory:
    from my_llm import PubSubChatMessageHistory, get_chat_model  # LangChain: only for the commands that chat

    settings = _settings()
    store = _store(settings, namespace)
    chat = get_chat_model(model, settings) if model else None
    return PubSubChatMessageHistory(store.namespace, settings=settings, chat=chat)


MODEL_HELP = (
    "Chat model: provider:model (openai:gpt-4o-mini) or local "
    "[default: MY_LLM_MODEL, else OpenAI if a key is set, else local]."
)


@main.command()
@click.argument("namespace")
@click.option(
    "-n", "--last", "n", type=click.IntRange(1), default=None, help="Summarise only the last N messages [all]."
)
@click.option("--model", default=None, metavar="SPEC", help=MODEL_HELP)
def summarise(namespace: str, n: int | None, model: str | None) -> None:
    """Summarise NAMESPACE's messages with the chat model and log the summary as a `summary` record."""
    try:
        history = _history(namespace, model)
        click.echo(history.apply_summarise_to_memory(n))
        history.close()
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error


@main.command()
@click.argument("namespace")
def index(namespace: str) -> None:
    """Embed NAMESPACE's messages into its vector store (only those not embedded yet)."""
    try:
        history = _history(namespace)
        started = time.perf_counter()
        added = history.save_vectorstore_memory()
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Embedded {added} new message(s) in {time.perf_counter() - started:.1f} s -> {history.store.folder / 'chroma'}"
    )


@main.command()
@click.argument("namespace")
@click.argument("question")
@click.option("-k", "--top-k", default=8, show_default=True, type=click.IntRange(1, 100), help="Messages retrieved.")
@click.option("--model", default=None, metavar="SPEC", help=MODEL_HELP)
def ask(namespace: str, question: str, top_k: int, model: str | None) -> None:
    """Answer QUESTION from NAMESPACE's messages (hybrid retrieval), citing the messages used."""
    if not question.strip():
        raise click.UsageError("QUESTION is empty.")
    try:
        history = _history(namespace, model)
        result = history.question_memory(question, k=top_k)
        history.close()
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    click.echo(result.answer)
    click.echo("== Messages used:")
    for record in result.messages:
        click.echo(
            f" - {record.created_at[:19].replace('T', ' ')} {record.role}: {record.content[:100]!r} ({record.id[:8]})"
        )


@main.command("import-chatgpt")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--namespace", required=True, help="Namespace to import into, e.g. chatgpt.")
@click.option("--all-branches", is_flag=True, help="Keep edited/regenerated branches too (marked in metadata).")
@click.option("--include-thoughts", is_flag=True, help="Keep the model's thoughts and reasoning recaps.")
@click.option(
    "--include-user-context",
    is_flag=True,
    help="Keep personal data: custom instructions and ChatGPT's memory writes (bio). Off by default.",
)
def import_chatgpt(
    path: Path, namespace: str, all_branches: bool, include_thoughts: bool, include_user_context: bool
) -> None:
    """Import a ChatGPT data export at PATH: conversations.json, conversations-000.json..., a folder, or the .zip.

    Only the active branch of each conversation is kept unless --all-branches. Running it again imports only
    what is new; an interrupted import completes when run again.
    """
    from my_llm import PubSubChatMessageHistory  # LangChain: only when importing

    settings = _settings()
    try:
        history = PubSubChatMessageHistory(validate_namespace(namespace), source="chatgpt_export", settings=settings)
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    console = Console(stderr=True)
    columns = (TextColumn("Importing"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[done]} conversations"),
               TimeRemainingColumn())  # fmt: skip
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("import", total=None, done=0)

            def on_conversation(done: int, read: int, total: int) -> None:
                progress.update(task, completed=read, total=total, done=done)

            report = history.load_chatgpt_export(
                path,
                all_branches=all_branches,
                include_thoughts=include_thoughts,
                include_user_context=include_user_context,
                on_conversation=on_conversation,
            )
    except MyLLMError as error:
        partial = getattr(error, "report", None)
        if partial is not None:
            console.print(
                f"Kept {partial.messages_imported} message(s) from the {partial.conversations} conversation(s) "
                "before the error; run the import again once the export is fixed."
            )
        raise click.ClickException(str(error)) from error
    finally:
        history.close()
    table = Table("", "count", title=f"ChatGPT export -> {namespace}")
    table.add_row("conversations", str(report.conversations))
    table.add_row("messages imported", str(report.messages_imported))
    for reason, count in sorted(report.skipped.items()):
        table.add_row(f"skipped: {reason}", str(count))
    Console().print(table)


def _add_command_groups() -> None:
    # The BigQuery and triggers commands live in their own modules (cli_bigquery, cli_triggers); they import
    # their rooms lazily, so `my-llm --help` stays quick. Packages above my_llm (evaluation's `eval`, plugins)
    # add commands through the entry point group `my_llm.commands`, as llm's plugins do: my_llm never
    # imports them by name.
    from importlib.metadata import entry_points

    from my_llm.cli_bigquery import bigquery, usage
    from my_llm.cli_triggers import triggers

    for command in (bigquery, usage, triggers):
        main.add_command(command)
    for entry in entry_points(group="my_llm.commands"):
        if entry.name in main.commands:
            continue  # a built-in command wins over a plugin of the same name
        try:
            main.add_command(entry.load(), entry.name)
        except ImportError as error:  # a broken plugin must not take the whole CLI down: say which, go on
            click.echo(f"my-llm: command {entry.name!r} from {entry.value} could not be loaded: {error}", err=True)


_add_command_groups()
