"""``my-llm usage``: the reports of :mod:`my_llm.bigquery.reports`, run by an engine, and the cost comparison.

Two engines run the same definitions (the :class:`Engine` protocol):

- :class:`LocalEngine`: DuckDB (embedded, offline) over the JSONL logs, live and archived, read in place
  with ``read_json`` (only the columns a report needs; a torn last line is skipped).
- :class:`BigQueryEngine`: the table in BigQuery (or its emulator).

The comparison is the seeds' question "API or our own GPU?": at the request rate measured over the report's
window, what the API costs per hour, against a GPU rented at ``gpu_hourly`` USD an hour, and the request
rate at which the two cost the same (from the mean cost of a priced request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from my_llm.bigquery.reports import TOP_SESSIONS, compile_sql, once_sql, totals_sql, usage_sql
from my_llm.bigquery.target import BigQueryError, Target, api_retry
from my_llm.log import MessageStore, list_namespaces
from my_llm.record import format_time, parse_time, utc_now

# The columns the reports read, typed as BigQuery holds them.
_LOCAL_COLUMNS = {
    "namespace": "VARCHAR",
    "session_id": "VARCHAR",
    "role": "VARCHAR",
    "created_at": "TIMESTAMPTZ",
    "model": "VARCHAR",
    "usage": "STRUCT(input_tokens BIGINT, output_tokens BIGINT, cost_usd DOUBLE)",
}
MIN_WINDOW = timedelta(minutes=1)


class Engine(Protocol):
    """Runs a report definition (GoogleSQL over ``records``, maybe with ``@since``); rows as plain dicts."""

    name: str

    def run(self, sql: str, since: datetime | None) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def local_logs(root: Path, namespaces: Sequence[str] = ()) -> list[Path]:
    """Every log under ``root`` (``MESSAGE_HISTORY``), archives included, of ``namespaces`` (all when empty)."""
    paths: list[Path] = []
    for name in namespaces or list_namespaces(root):
        store = MessageStore(root, name)
        paths += [*store.archives(), *([store.path] if store.path.exists() else [])]
    return paths


class LocalEngine:
    """DuckDB, in memory, over ``paths`` (JSONL logs). The logs are read once, on the first report, into a
    table ``records`` of the columns the reports use (a snapshot: later reports see the same records); times
    are UTC. The logs hold each record once (an append is a new id; replays and re-imports add no line),
    so unlike the table they need no de-duplication. Use as a context manager, or call :meth:`close`."""

    name = "duckdb"

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [Path(path) for path in paths]
        self._connection = None

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def run(self, sql: str, since: datetime | None) -> list[dict[str, Any]]:
        import duckdb

        try:
            cursor = self._connect().execute(compile_sql(sql, "duckdb", None, since))
            names = [column[0] for column in cursor.description]
            return [_plain(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
        except duckdb.Error as error:
            raise BigQueryError(f"DuckDB could not run the report over {len(self.paths)} logs: {error}") from error

    def close(self) -> None:
        """Release the in-memory database."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self):
        if self._connection is None:
            import duckdb

            connection = duckdb.connect()
            try:
                connection.execute("SET TimeZone = 'UTC'")
                connection.execute("SET enable_progress_bar = false")
                connection.execute(f"CREATE TEMP TABLE records AS {self._source()}")
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _source(self) -> str:
        if not self.paths:
            columns = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in _LOCAL_COLUMNS.items())
            return f"SELECT {columns} WHERE FALSE"
        files = ", ".join(_quote(str(path)) for path in self.paths)
        columns = ", ".join(f"{_quote(name)}: {_quote(kind)}" for name, kind in _LOCAL_COLUMNS.items())
        return (
            f"SELECT * FROM read_json([{files}], format = 'newline_delimited', ignore_errors = true, "
            f"columns = {{{columns}}})"
        )


class BigQueryEngine:
    """The records' table of ``target`` in BigQuery, through ``client`` (a ``google.cloud.bigquery.Client``)."""

    name = "bigquery"

    def __init__(self, client, target: Target) -> None:
        self.client, self.target = client, target

    def run(self, sql: str, since: datetime | None) -> list[dict[str, Any]]:
        from google.api_core.exceptions import GoogleAPIError

        try:
            source = once_sql(self.target.table_id, since is not None)
            job = self.client.query(compile_sql(sql, "bigquery", source, since), retry=api_retry())
            rows = job.result(retry=api_retry())
            return [_plain(dict(row.items())) for row in rows]
        except GoogleAPIError as error:
            raise BigQueryError(
                f"BigQuery could not run the report on {self.target.table_id}: {error}. "
                f"Run `my-llm bigquery setup --dataset {self.target.dataset}` first?"
            ) from error

    def close(self) -> None:
        """Nothing to release (the client is the caller's)."""


@dataclass(frozen=True)
class UsageReport:
    """A usage report: ``rows`` grouped by ``by``, the ``totals`` row, the costliest ``sessions``.

    Every row has requests, input_tokens, output_tokens, cost_usd (USD, unknown prices as 0) and
    unpriced_requests; totals also priced_requests, first_at and last_at (ISO times or None).
    """

    by: str
    since: datetime | None
    engine: str
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    sessions: list[dict[str, Any]] = field(default_factory=list)


def usage_report(
    engine: Engine, by: str = "model", since: datetime | None = None, top: int = TOP_SESSIONS
) -> UsageReport:
    """Run the report grouped by ``by`` (day, model, namespace, session), its totals and the ``top``
    costliest sessions on ``engine``, for requests made at or after ``since`` (all when None).

    Raises:
        BigQueryError: the engine failed. ValueError: an unknown ``by``.
    """
    rows = engine.run(usage_sql((by,), since is not None), since)
    totals = engine.run(totals_sql(since is not None), since)[0]
    sessions = engine.run(usage_sql(("session",), since is not None, limit=top), since) if top else []
    return UsageReport(by, since, engine.name, rows, totals, sessions)


@dataclass(frozen=True)
class CostComparison:
    """API spend at the measured rate against a rented GPU (all USD; rates in requests per hour)."""

    hours: float  # the window the rate is measured over
    requests_per_hour: float
    api_usd_per_hour: float
    gpu_usd_per_hour: float
    usd_per_request: float | None  # mean over priced requests; None when none is priced
    break_even_requests_per_hour: float | None  # where the API costs gpu_usd_per_hour


def compare_costs(report: UsageReport, gpu_hourly: float, now: datetime | None = None) -> CostComparison:
    """The comparison for ``report`` (see the module docstring). The window runs from ``since`` (or the
    first request) to now (or, without ``since``, the last request), at least one minute."""
    totals = report.totals
    start = report.since or _time(totals.get("first_at"))
    end = (now or utc_now()) if report.since else _time(totals.get("last_at"))
    window = max(end - start, MIN_WINDOW) if start and end else MIN_WINDOW
    hours = window.total_seconds() / 3600
    priced = int(totals.get("priced_requests") or 0)
    cost = float(totals.get("cost_usd") or 0.0)
    per_request = cost / priced if priced else None
    return CostComparison(
        hours=hours,
        requests_per_hour=int(totals.get("requests") or 0) / hours,
        api_usd_per_hour=cost / hours,
        gpu_usd_per_hour=gpu_hourly,
        usd_per_request=per_request,
        break_even_requests_per_hour=gpu_hourly / per_request if per_request else None,
    )


def _time(text: str | None) -> datetime | None:
    return parse_time(text) if text else None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Values both engines give alike: dates and times as ISO strings, decimals as floats."""
    for key, value in row.items():
        if isinstance(value, datetime):
            row[key] = format_time(value)
        elif isinstance(value, date):
            row[key] = value.isoformat()
        elif isinstance(value, Decimal):
            row[key] = float(value)
    return row


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
