"""``my-llm bigquery setup|sync|sink`` and ``my-llm usage``: the click commands of :mod:`my_llm.bigquery`.

``bigquery`` (a group) and ``usage`` (a command) are added to ``my_llm.cli.main``. Like ``my_llm.cli``,
this module prints and exits; the library raises :class:`my_llm.MyLLMError`, turned here into
``click.ClickException`` (exit code 1).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import sys
import threading
import time
from functools import partial

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from my_llm import MessageStore, MyLLMError, Settings, list_namespaces, validate_namespace
from my_llm.bigquery import (
    BY,
    BigQueryEngine,
    LocalEngine,
    Sink,
    SinkReport,
    Target,
    UsageReport,
    bigquery_client,
    compare_costs,
    local_logs,
    namespace_topics,
    pending_bytes,
    pubsub_clients,
    setup_subscriptions,
    setup_tables,
    sync_namespace,
    usage_report,
)
from my_llm.cli_options import SINCE

_MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd", "unpriced_requests")


def _target(dataset: str | None, table: str | None, location: str | None = None) -> tuple[Settings, Target]:
    try:
        settings = Settings.from_env()
        return settings, Target.from_settings(settings, dataset, table, location)
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error


def _table_options(command):
    command = click.option("--table", default=None, help="Table of the records  [default: messages].")(command)
    return click.option(
        "--dataset", default=None, help="BigQuery dataset  [default: MY_LLM_BIGQUERY_DATASET or my_llm]."
    )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bigquery() -> None:
    """Land every record in BigQuery, exactly once (BIGQUERY_EMULATOR_HOST points at an emulator)."""


@bigquery.command()
@_table_options
@click.option("--location", default=None, help="Where a new dataset lives (EU, US, a region)  [default: US].")
@click.option("--namespace", "namespaces", multiple=True, help="Subscribe only these namespaces' topics.")
@click.option(
    "--subscriptions",
    type=click.Choice(["bigquery", "sink", "none"]),
    default="bigquery",
    show_default=True,
    help="Per namespace topic: a BigQuery subscription, a pull subscription for `bigquery sink`, or none.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be made; make nothing.")
def setup(dataset, table, location, namespaces, subscriptions, dry_run) -> None:
    """Make the dataset, the table, the views and a subscription per namespace topic: a Pub/Sub BigQuery
    subscription (records land with no code running), or with --subscriptions sink a pull subscription for
    `my-llm bigquery sink`.

    Idempotent: what exists is left as it is. Subscriptions need a Pub/Sub project (GOOGLE_CLOUD_PROJECT or
    PUBSUB_EMULATOR_HOST); they are skipped with the BigQuery emulator and Google Cloud's Pub/Sub.
    """
    settings, target = _target(dataset, table, location)
    try:
        steps = setup_tables(bigquery_client(target), target, dry_run)
        if subscriptions != "none" and (target.pubsub_emulator_host or not target.emulator_host):
            publisher, subscriber = pubsub_clients(target)
            topics = namespace_topics(
                publisher, target, settings.message_history, [*map(validate_namespace, namespaces)]
            )
            steps += setup_subscriptions(publisher, subscriber, target, topics, subscriptions, dry_run)
        elif subscriptions != "none":
            click.echo("No subscriptions: the BigQuery emulator is set and PUBSUB_EMULATOR_HOST is not.", err=True)
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    table_view = Table("kind", "name", "state", "detail", title="dry run: nothing made" if dry_run else None)
    for step in steps:
        table_view.add_row(step.kind, step.name, step.state, step.detail)
    Console(width=200).print(table_view)


@bigquery.command()
@click.argument("namespaces", nargs=-1)
@_table_options
@click.option("--batch-rows", default=100_000, show_default=True, help="Rows per load job and MERGE.")
def sync(namespaces, dataset, table, batch_rows) -> None:
    """Load what is on disk and not yet in the table (all namespaces by default): each batch goes into a
    staging table and is MERGEd on id, so running it twice, or after Pub/Sub delivered, adds nothing."""
    settings, target = _target(dataset, table)
    try:
        names = [validate_namespace(name) for name in namespaces] or list_namespaces(settings.message_history)
        stores = [MessageStore(settings.message_history, name, settings.fsync) for name in names]
        total = sum(pending_bytes(store, target) for store in stores)
        client = bigquery_client(target)
        reports = []
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("sync", total=total or None)
            for store in stores:
                progress.update(task, description=f"sync {store.namespace}")
                reports.append(
                    sync_namespace(
                        client, target, store, batch_rows=batch_rows, on_progress=partial(progress.advance, task)
                    )
                )
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    result = Table("namespace", "read", "inserted", "already there", "rejected", title=f"into {target.table_id}")
    for report in reports:
        result.add_row(report.namespace, *map(str, (report.read, report.inserted, report.present, report.rejected)))
    Console().print(result)


@bigquery.command()
@click.option(
    "--subscription", "subscriptions", multiple=True, required=True, help="SUB or projects/P/subscriptions/SUB."
)
@_table_options
@click.option("--batch-rows", default=10_000, show_default=True, help="Messages per write.")
@click.option(
    "--batch-seconds",
    default=60.0,
    show_default=True,
    help="Longest wait to fill a batch (BigQuery: 1,500 loads a day).",
)
def sink(subscriptions, dataset, table, batch_rows, batch_seconds) -> None:
    """Stream records from Pub/Sub subscriptions into the table until SIGTERM or Ctrl-C, acknowledging each
    batch only after it is written (staging + MERGE on id: exactly once)."""
    _settings, target = _target(dataset, table)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    try:
        _publisher, subscriber = pubsub_clients(target)
        paths = [name if name.startswith("projects/") else subscriber.subscription_path(target.project, name)
                 for name in subscriptions]  # fmt: skip
        runner = Sink(
            bigquery_client(target), target, subscriber, paths, batch_rows=batch_rows, batch_seconds=batch_seconds
        )
        click.echo(f"Writing {', '.join(paths)} into {target.table_id}; stop with Ctrl-C or SIGTERM.", err=True)
        report = runner.run(stop, on_batch=_every(10.0, _say_sink))
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    _say_sink(report)


def _say_sink(report: SinkReport) -> None:
    click.echo(
        f"sink: {report.received} received, {report.inserted} inserted, {report.rejected} rejected, "
        f"{report.batches} batches in {report.seconds or 0:.0f} s",
        err=True,
    )


def _every(seconds: float, say):
    last = [time.monotonic()]

    def maybe(report) -> None:
        if time.monotonic() - last[0] >= seconds:
            last[0] = time.monotonic()
            say(report)

    return maybe


@click.command()
@click.option("--since", type=SINCE, default=None, help="Only requests since an age (7d, 2h) or an ISO time.")
@click.option("--by", type=click.Choice(BY), default="model", show_default=True, help="Group requests by.")
@click.option("--bigquery", "use_bigquery", is_flag=True, help="From the BigQuery table, not the local logs.")
@_table_options
@click.option("--top", default=5, show_default=True, help="How many of the costliest sessions to list.")
@click.option("--gpu-hourly", type=float, help="USD an hour of a self-hosted GPU, to compare with the API.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="The grouped rows as CSV.")
def usage(since, by, use_bigquery, dataset, table, top, gpu_hourly, as_json, as_csv) -> None:
    """Tokens, requests and USD of the model replies (ai records), grouped, with the costliest sessions.

    Runs on DuckDB over the local logs (offline), or with --bigquery on the table; both run the same
    definition. Unknown prices count 0 USD and are counted apart.
    """
    try:
        settings = Settings.from_env()
        if use_bigquery:
            target = Target.from_settings(settings, dataset, table)
            engine = BigQueryEngine(bigquery_client(target), target)
        else:
            engine = LocalEngine(local_logs(settings.message_history))
        try:
            report = usage_report(engine, by, since, top)
        finally:
            engine.close()
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    comparison = compare_costs(report, gpu_hourly) if gpu_hourly is not None else None
    if as_json:
        data = dataclasses.asdict(report) | {"since": since.isoformat() if since else None}
        click.echo(json.dumps(data | {"comparison": dataclasses.asdict(comparison) if comparison else None}))
    elif as_csv:
        keys = [key for key in report.rows[0] if key not in _MEASURES] if report.rows else [by]
        writer = csv.DictWriter(sys.stdout, [*keys, *_MEASURES], lineterminator="\n")
        writer.writeheader()
        writer.writerows(report.rows)
    else:
        _print_usage(report, comparison)


def _print_usage(report: UsageReport, comparison) -> None:
    console = Console()
    console.print(_rows_table(report.rows, f"by {report.by} ({report.engine})"))
    totals = report.totals
    console.print(
        f"{totals['requests'] or 0} requests, {totals['input_tokens'] or 0} input and {totals['output_tokens'] or 0} "
        f"output tokens, ${totals['cost_usd'] or 0:.6f}; {totals['unpriced_requests'] or 0} at unknown prices."
    )
    if report.sessions:
        console.print(_rows_table(report.sessions, "costliest sessions"))
    if comparison:
        line = (
            f"At {comparison.requests_per_hour:,.1f} requests/h (over {_duration(comparison.hours)}) the API costs "
            f"${comparison.api_usd_per_hour:.4f}/h; the GPU costs ${comparison.gpu_usd_per_hour:.2f}/h."
        )
        if comparison.break_even_requests_per_hour:
            line += f" They break even at {comparison.break_even_requests_per_hour:,.0f} requests/h."
        else:
            line += " No request has a known price: no break-even rate."
        console.print(line)


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"


def _rows_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    if not rows:
        table.add_column("no requests")
        return table
    for key in rows[0]:
        table.add_column(key, justify="right" if key in _MEASURES else "left")
    for row in rows:
        table.add_row(*(f"{value:.6f}" if key == "cost_usd" else str(value) for key, value in row.items()))
    return table
