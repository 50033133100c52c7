"""``my-llm triggers run|list``: the click commands of :mod:`my_llm.triggers`.

``triggers`` (a group) is added to ``my_llm.cli.main``. Like ``my_llm.cli``, this module prints and exits;
the library raises :class:`my_llm.MyLLMError`, turned here into ``click.ClickException`` (exit code 1).
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from my_llm import MyLLMError, Settings

if TYPE_CHECKING:  # the triggers room (LangChain messages) is imported by the commands that run
    from my_llm.triggers import (
        Handled,
        Ledger,
        RunReport,
        TriggerConfig,
    )

_STYLE = {"fired": "green", "would_fire": "green", "refused": "yellow", "would_refuse": "yellow"}
_STYLE |= {"error": "red", "unknown": "red", "handled_before": "dim"}
CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="triggers.toml",
    show_default=True,
    help="The triggers TOML file.",
)


@dataclass(frozen=True)
class _Options:
    dry_run: bool
    once: bool
    from_start: bool
    as_json: bool


def _config(path: Path) -> tuple[Settings, TriggerConfig]:
    from my_llm.triggers import load_config

    try:
        return Settings.from_env(), load_config(path)
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def triggers() -> None:
    """Act on what the model says: `SQL:` runs a read-only query, `EMAIL:` sends a mail, once per message.

    Off by default: nothing runs unless the config (--config, TOML) names a trigger for a namespace.
    """


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM: the runner finishes the match at hand and stops."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@triggers.command("run")
@click.argument("namespaces", nargs=-1)
@CONFIG_OPTION
@click.option("--dry-run", is_flag=True, help="Report what would fire; run, write and acknowledge nothing.")
@click.option("--once", is_flag=True, help="Handle what is there now, then exit (for cron).")
@click.option(
    "--source",
    type=click.Choice(["auto", "pubsub", "log"]),
    default="auto",
    show_default=True,
    help="auto: Pub/Sub when a project (or PUBSUB_EMULATOR_HOST) is configured and publishing is on, else the logs.",
)
@click.option("--from-start", is_flag=True, help="With the logs: read a log seen for the first time from its start.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per handled match.")
def run(
    namespaces: tuple[str, ...],
    config_path: Path,
    dry_run: bool,
    once: bool,
    source: str,
    from_start: bool,
    as_json: bool,
) -> None:
    """Run the configured triggers on the AI messages of NAMESPACES (default: every namespace in the config).

    Reads a Pub/Sub subscription per namespace (my-llm-NAMESPACE-triggers, created if missing) or follows
    the logs on disk. Each match is handled once (a ledger of handled record ids) and its outcome is logged
    into the same session as a tool record; messages are acknowledged only after that.
    """
    from my_llm.triggers import Ledger, source_kind

    settings, config = _config(config_path)
    names = _namespaces(config, namespaces)
    console = Console(stderr=True, highlight=False)
    try:
        kind = source_kind(settings.google_cloud_project, settings.publish, source)
        if from_start and kind == "pubsub":
            raise click.UsageError("--from-start is for the logs on disk (--source log).")
        ledger_path = config.ledger_path(settings.message_history)
        ledger = Ledger.for_dry_run(ledger_path) if dry_run else Ledger(ledger_path)
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    options = _Options(dry_run, once, from_start, as_json)
    with _stop_on_signals() as stop:
        report = _run(settings, config, names, ledger, kind, stop, options, console)
    decisions = ", ".join(f"{count} {decision}" for decision, count in sorted(report.decisions.items())) or "no matches"
    console.print(
        f"{'Dry run: ' if dry_run else ''}scanned {report.scanned} records ({report.invalid} not records); "
        f"{report.matched} matches: {decisions}."
    )


def _namespaces(config: TriggerConfig, given: tuple[str, ...]) -> list[str]:
    configured = config.namespaces()
    if not configured:
        raise click.ClickException(
            f"{config.path} configures no trigger: nothing to run (triggers are off by default)."
        )
    missing = [name for name in given if name not in configured]
    if missing:
        raise click.ClickException(
            f"No trigger in {config.path} watches {', '.join(missing)} (configured: {', '.join(configured)})."
        )
    return list(given) or configured


def _run(
    settings: Settings,
    config: TriggerConfig,
    names: list[str],
    ledger: Ledger,
    kind: str,
    stop: threading.Event,
    options: _Options,
    console: Console,
) -> RunReport:
    """Start the source, run until done (``once``) or stopped, release everything."""
    from my_llm.triggers import HistoryWriter, LogSource, PubSubSource, Runner, RunReport

    dry_run = options.dry_run
    writer = None if dry_run else HistoryWriter(settings)
    if kind == "pubsub":
        reader = PubSubSource(settings.google_cloud_project, names, config.subscription, dry_run=dry_run)
    else:
        reader = LogSource(settings.message_history, names, ledger, from_start=options.from_start, read_only=dry_run)
    runner = Runner(config.triggers, ledger, writer, dry_run=dry_run, on_handled=_printer(options.as_json, console))
    report = RunReport()
    try:
        for note in reader.start():
            console.print(f"[dim]{escape(note)}[/]")
        runner.run(reader.batches(stop, options.once), report)
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    finally:
        reader.close()
        if writer is not None:
            writer.close()
        ledger.close()
    return report


def _printer(as_json: bool, console: Console):
    def emit(handled: Handled) -> None:
        record = handled.match.record
        if as_json:
            fields = {"decision": handled.decision, "why": handled.why, "trigger": handled.match.trigger}
            fields |= {"kind": handled.kind, "namespace": record.namespace, "session_id": record.session_id}
            fields |= {"record_id": record.id, "match": handled.match.index, "tool_record_id": handled.tool_record_id}
            click.echo(json.dumps(fields))
            return
        style = _STYLE.get(handled.decision, "")
        console.print(
            f"[{style}]{handled.decision:<14}[/] {escape(handled.match.trigger)} {record.namespace} "
            f"[dim]{record.session_id[:8]} {record.id[:8]}[/] {escape(handled.why)}"
        )

    return emit


@triggers.command("list")
@CONFIG_OPTION
@click.option("-n", "--last", default=3, show_default=True, type=click.IntRange(0), help="Last outcomes per trigger.")
def list_triggers(config_path: Path, last: int) -> None:
    """Show the configured triggers, their outcomes so far, and the last ones (from the ledger; read-only)."""
    from my_llm.triggers import Ledger

    settings, config = _config(config_path)
    if not config.triggers:
        click.echo(f"{config.path} configures no trigger (triggers are off by default).")
        return
    try:
        ledger = Ledger.for_dry_run(config.ledger_path(settings.message_history))
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    console = Console(highlight=False)
    table = Table("name", "kind", "namespaces", "outcomes")
    table.add_column("what", overflow="fold")
    try:
        for trigger in config.triggers:
            counts = ledger.counts(trigger.name)
            outcomes = ", ".join(f"{count} {decision}" for decision, count in sorted(counts.items())) or "none yet"
            namespaces = ", ".join(sorted(trigger.namespaces))
            table.add_row(trigger.name, trigger.kind, namespaces, outcomes, escape(trigger.describe()))
        console.print(table)
        if last:
            _print_latest(console, config, ledger, last)
    finally:
        ledger.close()


def _print_latest(console: Console, config: TriggerConfig, ledger: Ledger, last: int) -> None:
    table = Table("time (UTC)", "trigger", "decision", "namespace", "record")
    table.add_column("why", overflow="fold")
    for trigger in config.triggers:
        for entry in ledger.latest(trigger.name, last):
            when = datetime.fromtimestamp(entry.started_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            decision = entry.decision or entry.state
            style = _STYLE.get(decision, "")
            table.add_row(
                when,
                entry.trigger,
                f"[{style}]{decision}[/]",
                entry.namespace,
                entry.record_id[:8],
                escape(entry.why or ""),
            )
    if table.row_count:
        console.print(table)
