"""The table's columns (the record, schema 2) and the row each record becomes, validated before it is written.

One column per record field (``../shared/DESIGN.md``, "One record"), so a Pub/Sub BigQuery subscription with
``use_table_schema`` fills the table from the published JSON with no code of ours::

    id STRING REQUIRED, schema INT64 REQUIRED, namespace STRING REQUIRED, session_id STRING REQUIRED,
    role STRING REQUIRED, content STRING, created_at TIMESTAMP REQUIRED, source STRING, model STRING,
    usage RECORD<input_tokens INT64, output_tokens INT64, cost_usd FLOAT64>, metadata JSON, message JSON

partitioned by day on ``created_at`` and clustered by ``namespace``. Rows are checked here, not by the
server: an emulator accepts rows that BigQuery rejects (a missing REQUIRED field, say), and one bad row must
not fail a load of 100,000 good ones.
"""

from __future__ import annotations

import json
import math
from typing import Any

from my_llm.bigquery.target import BigQueryError
from my_llm.errors import InvalidNamespaceError
from my_llm.record import ROLES, SCHEMA_VERSION, format_time, parse_time, validate_namespace

# (name, BigQuery type, mode, description); ``usage`` has the sub-fields below.
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "STRING", "REQUIRED", "the record's own uuid4 hex; rows are unique on it"),
    ("schema", "INT64", "REQUIRED", "record schema version (2)"),
    ("namespace", "STRING", "REQUIRED", "the namespace (a folder on disk, a Pub/Sub topic my-llm-<namespace>)"),
    ("session_id", "STRING", "REQUIRED", "the conversation"),
    ("role", "STRING", "REQUIRED", "human, ai, system, tool or summary"),
    ("content", "STRING", "NULLABLE", "the message's text"),
    ("created_at", "TIMESTAMP", "REQUIRED", "when the record was made (UTC)"),
    ("source", "STRING", "NULLABLE", "live, chatgpt_export, read_repo, create_script"),
    ("model", "STRING", "NULLABLE", "the model that wrote an ai record"),
    ("usage", "RECORD", "NULLABLE", "tokens and cost in USD of an ai record; cost_usd null when the price is unknown"),
    ("metadata", "JSON", "NULLABLE", "the record's metadata object"),
    ("message", "JSON", "NULLABLE", "the whole LangChain message (message_to_dict), null for summaries and events"),
)
USAGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("input_tokens", "INT64"),
    ("output_tokens", "INT64"),
    ("cost_usd", "FLOAT64"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(column[0] for column in COLUMNS)
PARTITION_FIELD = "created_at"
CLUSTER_FIELDS = ("namespace",)
_INT64_MAX = 2**63 - 1


class RowError(BigQueryError, ValueError):
    """A record that would not make a valid row (the message names the field and the record id)."""


def table_schema() -> list:
    """The table's columns as ``google.cloud.bigquery.SchemaField`` objects."""
    from google.cloud.bigquery import SchemaField

    fields = []
    for name, kind, mode, description in COLUMNS:
        sub = [SchemaField(sub_name, sub_kind) for sub_name, sub_kind in USAGE_FIELDS] if kind == "RECORD" else ()
        fields.append(SchemaField(name, kind, mode=mode, description=description, fields=sub))
    return fields


def to_row(data: Any) -> dict[str, Any]:
    """The row for one record's JSON object (a log line or a Pub/Sub message's data, parsed), in column order.

    ``created_at`` is normalised to ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; ``usage`` keeps its three columns
    (other keys are dropped); ``metadata`` null becomes ``{}``; JSON columns stay objects (a load job of
    NDJSON takes them as they are).

    Raises:
        RowError: not an object; a REQUIRED field missing or of the wrong type; a role outside
            :data:`my_llm.record.ROLES`; an invalid namespace; a time that does not parse; a schema newer
            than this code; token counts that are not non-negative INT64s; a cost that is not a finite number.
    """
    if not isinstance(data, dict):
        raise RowError(f"A record must be a JSON object, not {type(data).__name__}.")
    record_id = data.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise RowError("A record has no id (a non-empty string).")
    where = f"record {record_id!r}"
    schema = data.get("schema", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or not 1 <= schema <= SCHEMA_VERSION:
        raise RowError(f"{where}: schema {schema!r} is not 1..{SCHEMA_VERSION}.")
    for name in ("namespace", "session_id", "role"):
        if not isinstance(data.get(name), str):
            raise RowError(f"{where}: {name} is missing or not a string.")
    try:
        validate_namespace(data["namespace"])
    except InvalidNamespaceError as error:
        raise RowError(f"{where}: {error}") from None
    if data["role"] not in ROLES:
        raise RowError(f"{where}: role {data['role']!r} is not one of {', '.join(ROLES)}.")
    return {
        "id": record_id,
        "schema": schema,
        "namespace": data["namespace"],
        "session_id": data["session_id"],
        "role": data["role"],
        "content": _optional_str(data, "content", where),
        "created_at": _time(data.get("created_at"), where),
        "source": _optional_str(data, "source", where),
        "model": _optional_str(data, "model", where),
        "usage": _usage(data.get("usage"), where),
        "metadata": _object(data.get("metadata"), "metadata", where) or {},
        "message": _object(data.get("message"), "message", where),
    }


def row_line(row: dict[str, Any]) -> bytes:
    """One NDJSON line (with its newline) for a load job."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8") + b"\n"


def _optional_str(data: dict, name: str, where: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise RowError(f"{where}: {name} is {type(value).__name__}, not a string or null.")
    return value


def _object(value: Any, name: str, where: str) -> dict | None:
    if value is not None and not isinstance(value, dict):
        raise RowError(f"{where}: {name} is {type(value).__name__}, not an object or null.")
    return value


def _time(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise RowError(f"{where}: created_at is missing or not a string.")
    try:
        return format_time(parse_time(value))
    except ValueError:
        raise RowError(f"{where}: created_at {value!r} is not an ISO 8601 time.") from None


def _usage(value: Any, where: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RowError(f"{where}: usage is {type(value).__name__}, not an object or null.")
    usage = {}
    for name in ("input_tokens", "output_tokens"):
        count = value.get(name)
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= _INT64_MAX
        ):
            raise RowError(f"{where}: usage.{name} {count!r} is not a non-negative integer.")
        usage[name] = count
    cost = value.get("cost_usd")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost)):
        raise RowError(f"{where}: usage.cost_usd {cost!r} is not a finite number.")
    usage["cost_usd"] = None if cost is None else float(cost)
    return usage
