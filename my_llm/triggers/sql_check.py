"""Is this SQL a single read-only query? Checked by parsing with sqlglot, before any connection is opened.

The first of two locks: the connection is the second (:mod:`my_llm.triggers.databases` opens SQLite with
``mode=ro``, ``PRAGMA query_only`` and an authorizer, DuckDB with ``read_only`` and no external access).
Accepted: exactly one statement whose root is a query (``SELECT``, a set operation such as ``UNION``, a
parenthesised query), with no node anywhere in it that writes, changes the schema or the session, reaches
outside the database (``ATTACH``, ``COPY``, ``PRAGMA``, ``SELECT ... INTO``, ``FOR UPDATE``, file-reading
table functions such as ``read_csv``, a quoted file path as a table) or that sqlglot could only keep as an
opaque command. A write hidden in a CTE (``WITH d AS (DELETE ... RETURNING *) SELECT ...``) is found by
walking the whole tree.
"""

from __future__ import annotations

import functools
import logging

from my_llm.triggers.base import Refusal

# Node types that are never part of a read-only query (sqlglot class names; a version without one of them
# still loads).
FORBIDDEN_NODES = (
    "Insert Update Delete Merge Create Drop Alter AlterTable TruncateTable Command Copy Pragma Attach Detach "
    "Set Use Transaction Commit Rollback Into Lock Install LoadData Grant Revoke Analyze Cache Uncache "
    "Refresh Declare Export"
).split()
# Functions that read files or other databases, load code or call out (SQLite, DuckDB, BigQuery).
FORBIDDEN_FUNCTIONS = frozenset(
    (
        "load_extension readfile writefile edit fts3_tokenizer read_csv read_csv_auto readcsv read_parquet "
        "readparquet parquet_scan read_json read_json_auto read_json_objects read_ndjson read_ndjson_auto "
        "read_text read_blob glob sniff_csv read_xlsx iceberg_scan delta_scan sqlite_scan sqlite_attach "
        "postgres_scan mysql_scan query query_table external_query getvariable"
    ).split()
)
DIALECTS = ("sqlite", "duckdb", "bigquery")


@functools.cache
def _node_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """``(query roots, forbidden nodes)`` as sqlglot classes; sqlglot is imported here, on first use (it
    costs about 0.15 s, which a CLI that never checks SQL should not pay)."""
    from sqlglot import exp

    forbidden = tuple(node for node in (getattr(exp, name, None) for name in FORBIDDEN_NODES) if isinstance(node, type))
    return (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery), forbidden


def check_statement(sql: str, dialect: str) -> str:
    """Return ``sql`` without a trailing ``;`` if it is one read-only query in ``dialect``.

    Args:
        sql: the text a trigger matched.
        dialect: ``sqlite``, ``duckdb`` or ``bigquery`` (sqlglot's dialect names).

    Raises:
        Refusal: empty; not parseable; more than one statement; the root is not a query; a node that
            writes or reaches outside (the reason names it).
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    text = sql.strip().rstrip(";").strip()
    if not text:
        raise Refusal("the SQL is empty")
    sqlglot_log = logging.getLogger("sqlglot")
    level = sqlglot_log.level
    sqlglot_log.setLevel(logging.ERROR)  # "falling back to parsing as a Command" is our refusal, not a warning
    try:
        statements = [statement for statement in sqlglot.parse(text, read=dialect) if statement is not None]
    except SqlglotError as error:
        raise Refusal(f"the SQL could not be parsed as {dialect}: {str(error).splitlines()[0]}") from None
    finally:
        sqlglot_log.setLevel(level)
    if len(statements) != 1:
        raise Refusal(f"only a single statement may run; found {len(statements)}")
    root = statements[0]
    roots, forbidden = _node_types()
    if not isinstance(root, roots):
        raise Refusal(f"only a read-only query (SELECT) may run, not {_label(root)}")
    for node in root.walk():
        if isinstance(node, forbidden):
            raise Refusal(f"{_label(node)} is not allowed in a read-only query")
        if isinstance(node, exp.Func) and _function_name(node) in FORBIDDEN_FUNCTIONS:
            raise Refusal(f"the function {_function_name(node)}() reads outside the database or loads code")
        if isinstance(node, exp.Table) and _is_file_path(node):
            raise Refusal(f"the table {node.name!r} looks like a file path; only tables of the database may be read")
    return text


def _label(node) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return f"the command {str(node.this).upper()}"
    key = getattr(node, "key", type(node).__name__).upper()
    return {"INTO": "SELECT ... INTO", "LOCK": "FOR UPDATE / FOR SHARE"}.get(key, key)


def _function_name(node) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def _is_file_path(table) -> bool:
    from sqlglot import exp

    identifier = table.this
    if not isinstance(identifier, exp.Identifier) or not identifier.quoted:
        return False
    return any(mark in identifier.name for mark in ("/", "\\", ".", ":"))
