"""The ``sql`` trigger: ``SQL: <query>`` in an AI message runs one read-only query against the database
named in the config, and the result (the first rows as a table, the row count, the time) goes back into
the session as a ``tool`` record.

Config keys (besides the common ones, :class:`my_llm.triggers.base.Common`)::

    database = "sqlite:///data/shop.db"   # or duckdb:///..., or bigquery://project/dataset
    max_rows = 100                         # rows fetched and shown (1..10,000)
    timeout_s = 10                         # the query is interrupted after this (0.1..300)
    maximum_bytes_billed = 1_000_000_000   # BigQuery only, required there
    endpoint = "http://127.0.0.1:9050"     # BigQuery only: an emulator (anonymous credentials)

The default prefix is ``SQL:``, to a blank line (or the closing fence of a fenced block).
"""

from __future__ import annotations

from typing import Any

from my_llm.triggers.base import FIRED, Common, Context, Match, Outcome, PatternTrigger
from my_llm.triggers.config import TriggerTable
from my_llm.triggers.databases import Database, QueryResult, open_database
from my_llm.triggers.sql_check import check_statement

CELL_CHARS = 200


class SqlTrigger(PatternTrigger):
    """Runs a checked, read-only query (see :mod:`my_llm.triggers.sql_check` and
    :mod:`my_llm.triggers.databases` for the two locks). Idempotent: a query re-run after a crash changes
    nothing.

    Args:
        common: the common options.
        database: where queries run.
        max_rows: rows fetched and shown.
        timeout_s: seconds before the query is stopped.
    """

    idempotent = True

    def __init__(self, common: Common, database: Database, max_rows: int = 100, timeout_s: float = 10.0) -> None:
        super().__init__(common)
        self.database, self.max_rows, self.timeout_s = database, max_rows, timeout_s

    @classmethod
    def from_table(cls, table: TriggerTable) -> SqlTrigger:
        """Build from a ``[[trigger]]`` table (raises TriggerConfigError naming the key)."""
        common = table.common("SQL:", "paragraph")
        url = table.text("database")
        billed = table.integer("maximum_bytes_billed", None, low=1)
        endpoint = table.text("endpoint", None)
        try:
            database = open_database(url, table.folder, billed, endpoint)
        except ValueError as error:
            raise table.error(str(error), "database") from None
        max_rows = table.integer("max_rows", 100, low=1, high=10_000)
        timeout_s = table.number("timeout_s", 10.0, low=0.1, high=300.0)
        return cls(common, database, max_rows, timeout_s)

    def describe(self) -> str:
        """``SQL: ... -> sqlite:///data/shop.db (max_rows 100, timeout 10 s)``."""
        limits = f"max_rows {self.max_rows}, timeout {self.timeout_s:g} s"
        return f"{self.common.pattern.describe()} -> {self.database.url} ({limits})"

    def check_body(self, body: str, context: Context) -> None:
        """Refuse anything but a single read-only query (parsed in the database's dialect)."""
        check_statement(body, self.database.dialect)

    def fire(self, match: Match, context: Context) -> Outcome:
        """Run the query; the outcome's content is the result as a table.

        Raises:
            Refusal: the statement check or the read-only connection refused it.
            TriggerError: the database is missing, the query failed or ran past its timeout.
        """
        sql = check_statement(match.body, self.database.dialect)
        result = self.database.run(sql, self.max_rows, self.timeout_s)
        shown = f"first {len(result.rows)} rows shown (max_rows = {self.max_rows})" if result.truncated else ""
        count = (
            f"{len(result.rows)}+ rows"
            if result.truncated
            else f"{len(result.rows)} row{'s' * (len(result.rows) != 1)}"
        )
        summary = f"{count} in {result.elapsed_s * 1000:.1f} ms from {self.database.url}"
        details: dict[str, Any] = {
            "database": self.database.url,
            "rows": len(result.rows),
            "truncated": result.truncated,
            "elapsed_ms": round(result.elapsed_s * 1000, 3),
            **result.facts,
        }
        content = f"{summary}{'; ' + shown if shown else ''}\n\n{as_table(result)}"
        return Outcome(FIRED, summary, content, details)


def as_table(result: QueryResult) -> str:
    """The rows as a Markdown table (``NULL`` for None; cells cut at 200 characters, on one line)."""
    if not result.columns:
        return "(no columns)"

    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(value)
        text = text.replace("\r", " ").replace("\n", " ").replace("|", "\\|")
        return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"

    lines = ["| " + " | ".join(cell(name) for name in result.columns) + " |", "|" + " --- |" * len(result.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in result.rows]
    return "\n".join(lines)
