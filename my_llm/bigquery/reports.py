"""The usage reports, each defined once, in GoogleSQL (BigQuery's dialect), over a table named ``records``
whose columns are the record's (:mod:`my_llm.bigquery.schema`).

:func:`compile_sql` turns a definition into what an engine runs: for BigQuery, ``records`` becomes the
table's rows, each id once (:func:`once_sql`), and the text stays GoogleSQL; for DuckDB, sqlglot transpiles
it (``COUNTIF`` -> ``COUNT_IF``, ``DATE(ts)`` -> ``CAST(ts AS DATE)``, ...) and ``records`` is a table read
from the JSONL logs. The views
``setup`` creates are these definitions too, so the dashboard and ``my-llm usage`` cannot drift apart.

A request is an ``ai`` record (one model reply), counted once per ``id``. Tokens and cost come from its
``usage``; a request whose cost is unknown (no price for its model, an import without usage) adds 0 USD
and is counted apart in ``unpriced_requests``. Costs are rounded to 8 decimals (a hundredth of a
micro-dollar), so the engines' different summation orders give the same numbers.
"""

from __future__ import annotations

from datetime import datetime

from my_llm.record import format_time

BY = ("day", "model", "namespace", "session")
# The columns each grouping adds: (alias, GoogleSQL expression over ``records``).
DIMENSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "day": (("day", "DATE(created_at)"),),
    "model": (("model", "COALESCE(model, '(unknown)')"),),
    "namespace": (("namespace", "namespace"),),
    "session": (("namespace", "namespace"), ("session_id", "session_id")),
}
MEASURES = """COUNT(*) AS requests,
  SUM(COALESCE(records.usage.input_tokens, 0)) AS input_tokens,
  SUM(COALESCE(records.usage.output_tokens, 0)) AS output_tokens,
  ROUND(SUM(COALESCE(records.usage.cost_usd, 0)), 8) AS cost_usd,
  COUNTIF(records.usage.cost_usd IS NULL) AS unpriced_requests"""
REQUESTS = "role = 'ai'"
SINCE = "created_at >= @since"
# The columns the reports read (BigQuery bills the columns a query reads: never content or message).
COLUMNS = ("id", "namespace", "session_id", "role", "created_at", "model", "usage")
VIEWS = {"usage_daily": ("day", "model", "namespace"), "usage_sessions": ("session",)}
TOP_SESSIONS = 5


def usage_sql(by: tuple[str, ...], since: bool = False, limit: int | None = None) -> str:
    """The report grouped by the dimensions ``by`` (names from :data:`BY`): one row per group with
    requests, input/output tokens, cost in USD and unpriced requests; by day in time order, otherwise the
    costliest first (ties by requests, then by the keys). ``since`` adds ``created_at >= @since``.

    Raises:
        ValueError: an unknown dimension.
    """
    unknown = [name for name in by if name not in DIMENSIONS]
    if unknown or not by:
        raise ValueError(f"report dimensions {unknown or by!r}: choose from {', '.join(BY)}")
    columns: list[tuple[str, str]] = []
    for name in by:
        columns += [column for column in DIMENSIONS[name] if column not in columns]
    keys = ", ".join(f"{expression} AS {alias}" for alias, expression in columns)
    # Positions, not names: an alias equal to a column name (model) means the column in DuckDB's GROUP BY.
    positions = ", ".join(str(number) for number in range(1, len(columns) + 1))
    order = positions if by[0] == "day" else f"cost_usd DESC, requests DESC, {positions}"
    sql = f"SELECT {keys},\n  {MEASURES}\nFROM records\nWHERE {_where(since)}\nGROUP BY {positions}\nORDER BY {order}"
    return sql + (f"\nLIMIT {int(limit)}" if limit else "")


def totals_sql(since: bool = False) -> str:
    """One row: the measures over every request, and the first and last request's ``created_at``."""
    return (
        f"SELECT {MEASURES},\n  COUNTIF(records.usage.cost_usd IS NOT NULL) AS priced_requests,\n"
        f"  MIN(created_at) AS first_at, MAX(created_at) AS last_at\nFROM records\nWHERE {_where(since)}"
    )


def _where(since: bool) -> str:
    return f"{REQUESTS} AND {SINCE}" if since else REQUESTS


def once_sql(table: str, since: bool = False) -> str:
    """What ``records`` is in BigQuery: the table's rows, each ``id`` once (a Pub/Sub BigQuery subscription
    writes at least once, so a row may land twice), with the columns the reports read; with ``since``, only
    the partitions from ``@since`` on are read. (The local logs hold each record once: no such step.)"""
    where = SINCE if since else "TRUE"
    return f"SELECT {', '.join(COLUMNS)} FROM `{table}` WHERE {where} QUALIFY ROW_NUMBER() OVER (PARTITION BY id) = 1"


def compile_sql(sql: str, dialect: str, source: str | None = None, since: datetime | None = None) -> str:
    """A definition (GoogleSQL over ``records``, maybe with ``@since``) as ``dialect`` runs it.

    Args:
        sql: from :func:`usage_sql` or :func:`totals_sql`.
        dialect: ``bigquery`` or ``duckdb`` (any sqlglot dialect).
        source: a GoogleSQL query that ``records`` stands for (``(source) AS records``), such as
            :func:`once_sql`; None keeps ``records`` as a table's name (DuckDB's table of the logs).
        since: the value of ``@since`` (an aware datetime), written in as a TIMESTAMP literal; required
            when the definition or the source has ``@since``.

    Raises:
        ValueError: ``@since`` is there and ``since`` is None.
    """
    import sqlglot
    from sqlglot import exp

    def swap_source(node: exp.Expression) -> exp.Expression:
        if source and isinstance(node, exp.Table) and node.name == "records" and not node.db:
            return exp.Subquery(this=sqlglot.parse_one(source, read="bigquery"), alias=exp.TableAlias(this="records"))
        return node

    def swap_since(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Parameter):
            if since is None:
                raise ValueError("the report has @since: give since=")
            text = format_time(since).replace("T", " ").replace("Z", "+00:00")
            return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMPTZ"))
        return node

    tree = sqlglot.parse_one(sql, read="bigquery").transform(swap_source).transform(swap_since)
    return tree.sql(dialect=dialect)


def view_sql(name: str, table: str) -> str:
    """The GoogleSQL of the view ``name`` (a key of :data:`VIEWS`) over ``table`` (``project.dataset.table``)."""
    return compile_sql(usage_sql(VIEWS[name]), "bigquery", once_sql(table))
