"""All LLM usage in BigQuery, exactly once, and usage reports that also run locally on DuckDB.

The face of ``my_llm.bigquery``: import from here. The table's columns are the record's
(:mod:`~my_llm.bigquery.schema`); records reach it three ways, all de-duplicated on ``id``:

- a Pub/Sub BigQuery subscription per namespace topic (made by :func:`setup_subscriptions`), with no code
  of ours running;
- :func:`sync_namespace`: from the logs on disk, incrementally (a cursor per namespace), each batch loaded
  into a staging table and MERGEd on ``id``;
- :class:`Sink`: a streaming subscriber doing the same for Pub/Sub, acknowledging only after the write.

:func:`usage_report` runs one definition of each report (GoogleSQL, :mod:`~my_llm.bigquery.reports`) on
BigQuery (:class:`BigQueryEngine`) or, transpiled by sqlglot, on DuckDB over the logs (:class:`LocalEngine`).

Clients are handed in; :func:`bigquery_client` and :func:`pubsub_clients` build them for a :class:`Target`
(``BIGQUERY_EMULATOR_HOST`` switches to an emulator). Errors are :class:`BigQueryError` (a MyLLMError).
Heavy libraries (google-cloud-bigquery, DuckDB, sqlglot) are imported by the functions that use them.
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
    from my_llm.bigquery.cursor import Cursor
    from my_llm.bigquery.merge import Batch, Writer, merge_sql
    from my_llm.bigquery.reports import BY, VIEWS, compile_sql, once_sql, totals_sql, usage_sql
    from my_llm.bigquery.schema import COLUMN_NAMES, RowError, row_line, table_schema, to_row
    from my_llm.bigquery.setup import (
        DEAD_LETTER_TOPIC,
        Step,
        namespace_topics,
        setup_subscriptions,
        setup_tables,
        subscription_id,
    )
    from my_llm.bigquery.sink import Sink, SinkReport
    from my_llm.bigquery.sync import SyncReport, log_files, pending_bytes, sync_namespace
    from my_llm.bigquery.target import BigQueryError, Target, bigquery_client, pubsub_clients
    from my_llm.bigquery.usage import (
        BigQueryEngine,
        CostComparison,
        Engine,
        LocalEngine,
        UsageReport,
        compare_costs,
        local_logs,
        usage_report,
    )

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "BY": "my_llm.bigquery.reports",
    "Batch": "my_llm.bigquery.merge",
    "BigQueryEngine": "my_llm.bigquery.usage",
    "BigQueryError": "my_llm.bigquery.target",
    "COLUMN_NAMES": "my_llm.bigquery.schema",
    "CostComparison": "my_llm.bigquery.usage",
    "Cursor": "my_llm.bigquery.cursor",
    "DEAD_LETTER_TOPIC": "my_llm.bigquery.setup",
    "Engine": "my_llm.bigquery.usage",
    "LocalEngine": "my_llm.bigquery.usage",
    "RowError": "my_llm.bigquery.schema",
    "Sink": "my_llm.bigquery.sink",
    "SinkReport": "my_llm.bigquery.sink",
    "Step": "my_llm.bigquery.setup",
    "SyncReport": "my_llm.bigquery.sync",
    "Target": "my_llm.bigquery.target",
    "UsageReport": "my_llm.bigquery.usage",
    "VIEWS": "my_llm.bigquery.reports",
    "Writer": "my_llm.bigquery.merge",
    "bigquery_client": "my_llm.bigquery.target",
    "compare_costs": "my_llm.bigquery.usage",
    "compile_sql": "my_llm.bigquery.reports",
    "local_logs": "my_llm.bigquery.usage",
    "log_files": "my_llm.bigquery.sync",
    "merge_sql": "my_llm.bigquery.merge",
    "namespace_topics": "my_llm.bigquery.setup",
    "once_sql": "my_llm.bigquery.reports",
    "pending_bytes": "my_llm.bigquery.sync",
    "pubsub_clients": "my_llm.bigquery.target",
    "row_line": "my_llm.bigquery.schema",
    "setup_subscriptions": "my_llm.bigquery.setup",
    "setup_tables": "my_llm.bigquery.setup",
    "subscription_id": "my_llm.bigquery.setup",
    "sync_namespace": "my_llm.bigquery.sync",
    "table_schema": "my_llm.bigquery.schema",
    "to_row": "my_llm.bigquery.schema",
    "totals_sql": "my_llm.bigquery.reports",
    "usage_report": "my_llm.bigquery.usage",
    "usage_sql": "my_llm.bigquery.reports",
}

__all__ = [
    "BY",
    "COLUMN_NAMES",
    "DEAD_LETTER_TOPIC",
    "VIEWS",
    "Batch",
    "BigQueryEngine",
    "BigQueryError",
    "CostComparison",
    "Cursor",
    "Engine",
    "LocalEngine",
    "RowError",
    "Sink",
    "SinkReport",
    "Step",
    "SyncReport",
    "Target",
    "UsageReport",
    "Writer",
    "bigquery_client",
    "compare_costs",
    "compile_sql",
    "local_logs",
    "log_files",
    "merge_sql",
    "namespace_topics",
    "once_sql",
    "pending_bytes",
    "pubsub_clients",
    "row_line",
    "setup_subscriptions",
    "setup_tables",
    "subscription_id",
    "sync_namespace",
    "table_schema",
    "to_row",
    "totals_sql",
    "usage_report",
    "usage_sql",
]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
