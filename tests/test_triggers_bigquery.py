"""The sql trigger against a BigQuery dataset on the bqemulator (a real REST server, DuckDB-backed): a SELECT
fires after its dry run; a write is refused by the parser, and by the dry run on its own; the rows stay."""

from __future__ import annotations

import uuid

import pytest

from my_llm import Settings
from my_llm.triggers import Refusal, open_database
from tests.bq_fixtures import EMULATOR_PROJECT, bq_emulator  # noqa: F401 (a fixture)
from tests.test_triggers_support import ai_record, append, run_cli, tool_records, write_config


def _client(endpoint: str):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    options = ClientOptions(api_endpoint=endpoint)
    return bigquery.Client(project=EMULATOR_PROJECT, credentials=AnonymousCredentials(), client_options=options)


def test_a_select_fires_and_writes_are_refused_on_bigquery(tmp_path, settings: Settings, bq_emulator):  # noqa: F811
    dataset = f"shop_{uuid.uuid4().hex[:8]}"
    client = _client(bq_emulator)
    client.create_dataset(dataset)
    client.query(f"CREATE TABLE {dataset}.orders (id INT64, status STRING)").result()
    client.query(f"INSERT INTO {dataset}.orders (id, status) VALUES (1, 'paid'), (2, 'open'), (3, 'paid')").result()
    url = f"bigquery://{EMULATOR_PROJECT}/{dataset}"
    config = write_config(
        tmp_path,
        f"""\
        [[trigger]]
        kind = "sql"
        namespaces = ["analytics"]
        database = "{url}"
        maximum_bytes_billed = 1_000_000_000
        endpoint = "{bq_emulator}"
        """,
    )
    append(
        settings,
        ai_record("analytics", "SQL: SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status"),
        ai_record("analytics", "SQL: DELETE FROM orders WHERE true"),
    )

    run_cli("run", "--once", "--source", "log", "--from-start", "--config", str(config))

    fired, refused = tool_records(settings, "analytics")
    assert fired.metadata["trigger"]["decision"] == "fired" and "| paid | 2 |" in fired.content
    assert refused.metadata["trigger"]["decision"] == "refused"
    database = open_database(url, tmp_path, 1_000_000_000, bq_emulator)
    with pytest.raises(Refusal, match="dry run says this is a DELETE"):
        database.run("DELETE FROM orders WHERE true", 10, 30.0)  # the second lock, without the parser
    (row,) = client.query(f"SELECT count(*) AS n FROM {dataset}.orders").result()
    assert row["n"] == 3
