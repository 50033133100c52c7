"""The databases a ``sql`` trigger may query, each opened read-only by the connection itself.

The second lock (the first is :func:`my_llm.triggers.sql_check.check_statement`):

- **SQLite**: ``file:<path>?mode=ro`` (the file is opened read-only by SQLite), ``PRAGMA query_only``, no
  attached databases (``SQLITE_LIMIT_ATTACHED = 0``), and an authorizer that allows only reading tables
  and calling functions other than ``load_extension`` and friends (an ``ATTACH``, ``PRAGMA``, temp table,
  transaction or write is denied before it runs). Timeout: a progress handler interrupts the query.
- **DuckDB**: ``read_only=True``, ``enable_external_access=false`` (no files, ``COPY``, ``ATTACH``,
  extensions, URLs), ``lock_configuration=true`` (the query cannot turn it back on). Timeout: the
  connection is interrupted from a timer.
- **BigQuery**: a dry run first: it must be a ``SELECT`` reading at most ``maximum_bytes_billed``; the run
  itself carries ``maximum_bytes_billed`` and a job timeout. Use credentials with a read-only role
  (``roles/bigquery.dataViewer`` + ``jobUser``): the dry run cannot replace that.

Every database is opened per query and closed after it: nothing is held between firings.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from my_llm.triggers.base import Refusal, TriggerError

_SQLITE_ALLOWED = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_SQLITE_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})
_SQLITE_PROGRESS_STEPS = 1000


@dataclass(frozen=True)
class QueryResult:
    """Rows of one query: ``columns`` (names), ``rows`` (at most ``max_rows``), ``truncated`` (more rows
    existed), ``elapsed_s`` (wall-clock seconds of the query and fetch), ``facts`` (e.g. bytes processed)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    elapsed_s: float
    facts: dict[str, Any] = field(default_factory=dict)


class Database(Protocol):
    """A database a trigger may query. ``dialect`` is sqlglot's name for its SQL; ``url`` is as configured."""

    dialect: str
    url: str

    def run(self, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        """Run one checked query. Raises Refusal (the connection declined it) or TriggerError (it failed)."""


def open_database(
    url: str, folder: Path, maximum_bytes_billed: int | None = None, endpoint: str | None = None
) -> Database:
    """The database named by ``url``; nothing is opened yet.

    ``sqlite:///relative/path.db`` (relative to ``folder``, the config file's), ``sqlite:////absolute.db``,
    ``duckdb:///...`` the same way, ``bigquery://project/dataset`` (``endpoint``: a BigQuery emulator's URL,
    reached with anonymous credentials; else BigQuery with the application-default credentials).

    Raises:
        ValueError: another scheme, no path, BigQuery without ``maximum_bytes_billed``, or an endpoint
            for a database that is not BigQuery.
    """
    if endpoint is not None and not url.startswith("bigquery:"):
        raise ValueError("endpoint is for a bigquery:// database only")
    parts = urlsplit(url)
    if parts.scheme in ("sqlite", "duckdb"):
        if parts.netloc or not parts.path.strip("/"):
            raise ValueError(f"write {parts.scheme}:///relative/path or {parts.scheme}:////absolute/path, not {url!r}")
        path = (folder / parts.path[1:]).resolve()
        return SqliteDatabase(path, url) if parts.scheme == "sqlite" else DuckDBDatabase(path, url)
    if parts.scheme == "bigquery":
        dataset = parts.path.strip("/")
        if not parts.netloc or not dataset or "/" in dataset:
            raise ValueError(f"write bigquery://project/dataset, not {url!r}")
        if maximum_bytes_billed is None:
            raise ValueError("a BigQuery database needs maximum_bytes_billed (bytes a query may read)")
        return BigQueryDatabase(parts.netloc, dataset, maximum_bytes_billed, url, endpoint=endpoint)
    raise ValueError(f"the database must be sqlite:///..., duckdb:///... or bigquery://project/dataset, not {url!r}")


def _fetch(cursor: Any, max_rows: int) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    columns = [column[0] for column in cursor.description or []]
    rows = [tuple(row) for row in cursor.fetchmany(max_rows + 1)]
    return columns, rows[:max_rows], len(rows) > max_rows


class SqliteDatabase:
    """A SQLite file, opened read-only per query (see the module docstring)."""

    dialect = "sqlite"

    def __init__(self, path: Path, url: str) -> None:
        self.path, self.url = path, url

    def run(self, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        """See :class:`Database`. The file must exist (it is never created)."""
        if not self.path.is_file():
            raise TriggerError(f"the database {self.path} does not exist")
        denied: list[str] = []

        def authorize(action: int, first: str | None, second: str | None, *_: object) -> int:
            if action in _SQLITE_ALLOWED and (
                action != sqlite3.SQLITE_FUNCTION or second not in _SQLITE_DENIED_FUNCTIONS
            ):
                return sqlite3.SQLITE_OK
            denied.append(" ".join(str(part) for part in (first, second) if part) or f"action {action}")
            return sqlite3.SQLITE_DENY

        deadline = time.monotonic() + timeout_s
        started = time.perf_counter()
        try:
            connection = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error as error:
            raise TriggerError(f"could not open {self.path} read-only: {error}") from None
        try:
            connection.execute("PRAGMA query_only = ON")
            if hasattr(connection, "setlimit"):  # Python 3.11+
                connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            connection.set_authorizer(authorize)
            connection.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
            columns, rows, truncated = _fetch(connection.execute(sql), max_rows)
        except sqlite3.Error as error:
            if denied:
                raise Refusal(f"the read-only connection denied {denied[0]!r}") from None
            if time.monotonic() > deadline:
                raise TriggerError(f"the query ran past its timeout ({timeout_s:g} s) and was stopped") from None
            raise TriggerError(f"SQLite could not run the query: {error}") from None
        finally:
            connection.close()
        return QueryResult(columns, rows, truncated, time.perf_counter() - started)


class DuckDBDatabase:
    """A DuckDB file, opened read-only without external access per query (see the module docstring)."""

    dialect = "duckdb"

    def __init__(self, path: Path, url: str) -> None:
        self.path, self.url = path, url

    def run(self, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        """See :class:`Database`. The file must exist (it is never created)."""
        import duckdb

        if not self.path.is_file():
            raise TriggerError(f"the database {self.path} does not exist")
        config = {
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "lock_configuration": True,
        }
        started = time.perf_counter()
        try:
            connection = duckdb.connect(str(self.path), read_only=True, config=config)
        except duckdb.Error as error:
            raise TriggerError(f"could not open {self.path} read-only: {error}") from None
        timer = threading.Timer(timeout_s, connection.interrupt)
        timer.start()
        try:
            columns, rows, truncated = _fetch(connection.execute(sql), max_rows)
        except duckdb.InterruptException:
            raise TriggerError(f"the query ran past its timeout ({timeout_s:g} s) and was stopped") from None
        except (duckdb.PermissionException, duckdb.InvalidInputException) as error:
            raise Refusal(f"the read-only connection refused it: {str(error).splitlines()[0]}") from None
        except duckdb.Error as error:
            raise TriggerError(f"DuckDB could not run the query: {str(error).splitlines()[0]}") from None
        finally:
            timer.cancel()
            connection.close()
        return QueryResult(columns, rows, truncated, time.perf_counter() - started)


class BigQueryDatabase:
    """A BigQuery dataset: a dry run (a ``SELECT`` within ``maximum_bytes_billed``), then the query.

    Args:
        project / dataset: the default dataset of the query (tables are named without it).
        maximum_bytes_billed: bytes a query may read; the dry run refuses more, and BigQuery fails a job
            that would bill more.
        endpoint: an emulator's URL (anonymous credentials); None for BigQuery itself.
    """

    dialect = "bigquery"

    def __init__(self, project: str, dataset: str, maximum_bytes_billed: int, url: str, endpoint: str | None = None):
        self.project, self.dataset, self.maximum_bytes_billed, self.url = project, dataset, maximum_bytes_billed, url
        self.endpoint = endpoint

    def _client(self) -> Any:
        """A client per query (nothing is held between firings).

        Raises:
            TriggerError: no credentials (``gcloud auth application-default login``).
        """
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import bigquery

        if self.endpoint:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            options = ClientOptions(api_endpoint=self.endpoint)
            return bigquery.Client(project=self.project, credentials=AnonymousCredentials(), client_options=options)
        try:
            return bigquery.Client(project=self.project)
        except DefaultCredentialsError as error:
            raise TriggerError(f"no Google Cloud credentials for BigQuery: {error}") from None

    def run(self, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        """See :class:`Database`."""
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import bigquery

        client = self._client()
        options = {
            "default_dataset": f"{self.project}.{self.dataset}",
            "maximum_bytes_billed": self.maximum_bytes_billed,
        }
        started = time.perf_counter()
        try:
            dry = client.query(sql, job_config=bigquery.QueryJobConfig(dry_run=True, use_query_cache=False, **options))
            if dry.statement_type != "SELECT":
                raise Refusal(f"BigQuery's dry run says this is a {dry.statement_type}, not a SELECT")
            planned = dry.total_bytes_processed or 0
            if planned > self.maximum_bytes_billed:
                raise Refusal(f"it would read {planned:,} bytes; maximum_bytes_billed = {self.maximum_bytes_billed:,}")
            job = client.query(sql, job_config=bigquery.QueryJobConfig(**options), timeout=timeout_s)
            try:
                rows = job.result(timeout=timeout_s, max_results=max_rows + 1)
            except TimeoutError:
                job.cancel()
                raise TriggerError(f"the query ran past its timeout ({timeout_s:g} s) and was cancelled") from None
            columns = [column.name for column in rows.schema]
            values = [tuple(row.values()) for row in rows]
        except GoogleAPIError as error:
            raise TriggerError(f"BigQuery could not run the query: {error}") from None
        finally:
            client.close()
        elapsed = time.perf_counter() - started
        facts = {"bytes_processed": job.total_bytes_processed, "job_id": job.job_id}
        return QueryResult(columns, values[:max_rows], len(values) > max_rows, elapsed, facts)
