"""The sql trigger against real SQLite and DuckDB files: a SELECT lands as a tool record in the same session
(and the next request sees it); every write or escape is refused and the database file is unchanged; the
connection refuses writes by itself; row limit and timeout."""

from __future__ import annotations

import sqlite3

import pytest

from my_llm import ChatHistory, Settings
from my_llm.triggers import Refusal, TriggerError, open_database
from my_llm.triggers.databases import DuckDBDatabase, SqliteDatabase  # the second lock, tested on its own
from tests.test_triggers_support import ai_record, append, run_cli, tool_records, tree_hash, write_config

ATTACKS = [
    "DROP TABLE orders",
    "DELETE FROM orders",
    "ATTACH DATABASE 'stolen.db' AS stolen",
    "PRAGMA writable_schema = 1",
    "SELECT 1; DELETE FROM orders",
    "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
    "COPY orders TO 'orders.csv'",
    "SELECT * INTO more_orders FROM orders",
    "VACUUM INTO 'copy.db'",
]


def _sqlite(path):
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER, status TEXT, total REAL)")
        connection.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)", [(n, "paid" if n % 3 else "open", n * 2.5) for n in range(250)]
        )
    connection.close()
    return path


def _duckdb(path):
    import duckdb

    connection = duckdb.connect(str(path))
    connection.execute(
        "CREATE TABLE orders AS SELECT range AS id, CASE WHEN range % 3 = 0 THEN 'open' ELSE 'paid' END AS status, "
        "range * 2.5 AS total FROM range(250)"
    )
    connection.close()
    return path


@pytest.fixture(params=["sqlite", "duckdb"])
def shop(request, tmp_path):
    """``(scheme, database file)``: a real file with 250 orders, in a folder of its own."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / f"shop.{request.param}"
    (_sqlite if request.param == "sqlite" else _duckdb)(path)
    return request.param, path


def _config(tmp_path, scheme, path, extra=""):
    return write_config(
        tmp_path,
        f"""\
        ledger = "ledger.sqlite"

        [[trigger]]
        name = "shop"
        kind = "sql"
        namespaces = ["analytics"]
        database = "{scheme}:///{path.relative_to(tmp_path)}"
        max_rows = 100
        {extra}
        """,
    )


def test_a_select_lands_as_a_tool_record_in_the_same_session(tmp_path, settings: Settings, shop):
    scheme, path = shop
    config = _config(tmp_path, scheme, path)
    run_cli("run", "--once", "--source", "log", "--config", str(config))  # first run: starts at the log's end
    history = ChatHistory("analytics", session_id="weekly", settings=settings)
    history.add_user_message("How many orders are paid?")
    ai = ai_record(
        "analytics",
        "I'll look.\nSQL: SELECT status, count(*) AS n FROM orders\nGROUP BY status ORDER BY status",
        "weekly",
    )
    history.add_records([ai])

    output = run_cli("run", "--once", "--source", "log", "--config", str(config))

    assert "fired" in output
    (tool,) = tool_records(settings, "analytics")
    assert tool.session_id == "weekly" and tool.metadata["trigger"]["record_id"] == ai.id
    assert tool.metadata["trigger"]["decision"] == "fired" and tool.metadata["trigger"]["details"]["rows"] == 2
    assert "| status | n |" in tool.content and "| paid | 166 |" in tool.content and "| open | 84 |" in tool.content
    last = ChatHistory("analytics", session_id="weekly", settings=settings).messages[-1]  # what request_llm sends next
    assert last.type == "tool" and last.tool_call_id == f"trigger-{ai.id}-shop-0" and "| paid | 166 |" in last.content
    history.close()


@pytest.mark.parametrize("attack", ATTACKS)
def test_writes_and_escapes_are_refused_and_the_file_is_unchanged(tmp_path, settings: Settings, shop, attack):
    scheme, path = shop
    config = _config(tmp_path, scheme, path)
    before = tree_hash(path.parent)
    append(settings, ai_record("analytics", f"SQL: {attack}"))

    run_cli("run", "--once", "--source", "log", "--from-start", "--config", str(config))

    (tool,) = tool_records(settings, "analytics")
    assert tool.metadata["trigger"]["decision"] == "refused", tool.content
    assert tree_hash(path.parent) == before  # the file is byte for byte the same, and nothing new beside it


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "ATTACH DATABASE 'stolen.db' AS stolen",
        "PRAGMA writable_schema = 1",
        "CREATE TEMP TABLE t (x)",
    ],
)
def test_the_sqlite_connection_refuses_writes_without_the_parser(tmp_path, sql):
    path = _sqlite(tmp_path / "shop.db")
    before = tree_hash(tmp_path)
    with pytest.raises(Refusal, match="read-only connection denied"):
        SqliteDatabase(path, "sqlite:///shop.db").run(sql, 10, 5.0)
    assert tree_hash(tmp_path) == before


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "COPY orders TO 'orders.csv'",
        "ATTACH 'stolen.duckdb' AS s",
        "SELECT * FROM read_csv('/etc/passwd')",
    ],
)
def test_the_duckdb_connection_refuses_writes_and_files_without_the_parser(tmp_path, sql):
    path = _duckdb(tmp_path / "shop.duckdb")
    before = tree_hash(tmp_path)
    with pytest.raises(Refusal, match="read-only connection refused"):
        DuckDBDatabase(path, "duckdb:///shop.duckdb").run(sql, 10, 5.0)
    assert tree_hash(tmp_path) == before


def test_rows_are_limited_and_a_long_query_is_stopped(tmp_path, shop):
    scheme, path = shop
    database = open_database(f"{scheme}:///{path.name}", path.parent)
    result = database.run("SELECT * FROM orders ORDER BY id", 7, 5.0)
    assert len(result.rows) == 7 and result.truncated and result.columns == ["id", "status", "total"]
    endless = {
        "sqlite": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "duckdb": "SELECT sum(hash(a.range * b.range)) FROM range(100000000) a, range(100000000) b",
    }[scheme]
    with pytest.raises(TriggerError, match="timeout"):
        database.run(endless, 10, 0.3)


def test_a_missing_database_is_an_error_outcome_not_a_new_file(tmp_path, settings: Settings):
    config = write_config(
        tmp_path,
        '[[trigger]]\nkind = "sql"\nnamespaces = ["analytics"]\ndatabase = "sqlite:///nowhere.db"\n',
    )
    append(settings, ai_record("analytics", "SQL: SELECT 1"))
    run_cli("run", "--once", "--source", "log", "--from-start", "--config", str(config))
    (tool,) = tool_records(settings, "analytics")
    assert tool.metadata["trigger"]["decision"] == "error" and "does not exist" in tool.content
    assert not (tmp_path / "nowhere.db").exists()
