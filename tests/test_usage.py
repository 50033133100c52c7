"""`my-llm usage` on DuckDB over the local logs (no server): what counts as a request, unknown prices counted
apart, --since, archives, torn lines, the output formats and the API-against-GPU comparison."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from my_llm import MessageStore, Record
from my_llm.bigquery import (
    BY,
    LocalEngine,
    compare_costs,
    compile_sql,
    local_logs,
    once_sql,
    usage_report,
    usage_sql,
)
from my_llm.cli_bigquery import usage

DAY = datetime(2026, 11, 21, 10, tzinfo=timezone.utc)


def reply(namespace, session, model, tokens_in, tokens_out, cost, when=DAY) -> Record:
    usage = None if tokens_in is None else {"input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": cost}
    return Record.new(namespace, session, "ai", "answer", model=model, usage=usage, created_at=when)


def write_logs(root) -> None:
    team = MessageStore(root, "team")
    team.append(
        [
            Record.new("team", "s1", "human", "question", created_at=DAY),  # not a request
            reply("team", "s1", "gpt-4o-mini", 100, 20, 2.7e-05),
            reply("team", "s1", "gpt-4o-mini", 200, 40, 5.4e-05, DAY + timedelta(days=1)),
            reply("team", "s2", "ollama:llama3.1", 50, 10, None),  # unknown price
        ]
    )
    team.archive()  # archived records still count
    team.append([reply("team", "s3", None, None, None, None, DAY + timedelta(days=2))])  # an import: no usage
    MessageStore(root, "other").append([reply("other", "s9", "gpt-4o", 1000, 100, 0.0035)])
    with open(team.path, "ab") as handle:
        handle.write(b'{"schema": 2, "id": "torn", "role": "ai", "us')


@pytest.fixture
def logs(tmp_path):
    root = tmp_path / "message_history"
    write_logs(root)
    return root


def test_requests_tokens_and_cost_by_model(logs):
    report = usage_report(LocalEngine(local_logs(logs)), "model")
    assert report.rows == [
        {"model": "gpt-4o", "requests": 1, "input_tokens": 1000, "output_tokens": 100, "cost_usd": 0.0035,
         "unpriced_requests": 0},
        {"model": "gpt-4o-mini", "requests": 2, "input_tokens": 300, "output_tokens": 60, "cost_usd": 8.1e-05,
         "unpriced_requests": 0},
        {"model": "(unknown)", "requests": 1, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
         "unpriced_requests": 1},
        {"model": "ollama:llama3.1", "requests": 1, "input_tokens": 50, "output_tokens": 10, "cost_usd": 0.0,
         "unpriced_requests": 1},
    ]  # fmt: skip
    assert report.totals["requests"] == 5 and report.totals["priced_requests"] == 3
    assert report.totals["unpriced_requests"] == 2 and report.totals["cost_usd"] == pytest.approx(0.003581)
    assert report.totals["first_at"] == "2026-11-21T10:00:00.000000Z"
    assert [(row["namespace"], row["session_id"]) for row in report.sessions][:2] == [("other", "s9"), ("team", "s1")]


def test_by_day_is_in_time_order_and_since_filters(logs):
    engine = LocalEngine(local_logs(logs))
    days = usage_report(engine, "day").rows
    assert [(row["day"], row["requests"]) for row in days] == [("2026-11-21", 3), ("2026-11-22", 1), ("2026-11-23", 1)]
    later = usage_report(engine, "day", since=DAY + timedelta(hours=12))
    assert [row["day"] for row in later.rows] == ["2026-11-22", "2026-11-23"] and later.totals["requests"] == 2


@pytest.mark.parametrize("by", BY)
def test_every_grouping_compiles_for_both_engines(by):
    sql = usage_sql((by,), since=True, limit=3)
    assert "COUNT_IF" in compile_sql(sql, "duckdb", since=DAY) and "FROM records" in compile_sql(
        sql, "duckdb", since=DAY
    )
    remote = compile_sql(sql, "bigquery", once_sql("p.d.t", since=True), since=DAY)
    assert "COUNTIF" in remote and "FROM `p.d.t` WHERE created_at >= CAST('2026-11-21 10:00:00" in remote
    assert "QUALIFY ROW_NUMBER() OVER (PARTITION BY id) = 1) AS records" in remote  # each id once
    with pytest.raises(ValueError, match="since"):
        compile_sql(sql, "duckdb")
    with pytest.raises(ValueError, match="dimensions"):
        usage_sql(("colour",))


def test_no_logs_is_an_empty_report(tmp_path):
    report = usage_report(LocalEngine(local_logs(tmp_path / "nothing")), "namespace")
    assert report.rows == [] and report.sessions == []
    assert report.totals["requests"] == 0 and report.totals["first_at"] is None


def test_the_cost_comparison_breaks_even_where_the_api_costs_the_gpus_price(logs):
    report = usage_report(LocalEngine(local_logs(logs)), "model")
    comparison = compare_costs(report, gpu_hourly=4.05)
    assert comparison.hours == pytest.approx(48)  # from the first request to the last (no --since)
    assert comparison.usd_per_request == pytest.approx(0.003581 / 3)
    assert comparison.break_even_requests_per_hour == pytest.approx(4.05 / (0.003581 / 3))
    assert comparison.requests_per_hour == pytest.approx(5 / comparison.hours)


def test_the_cli_prints_json_csv_and_a_table(logs):
    runner = CliRunner()
    as_json = runner.invoke(usage, ["--by", "namespace", "--json", "--gpu-hourly", "4.05"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert [row["namespace"] for row in data["rows"]] == ["other", "team"] and data["engine"] == "duckdb"
    assert data["comparison"]["gpu_usd_per_hour"] == 4.05
    as_csv = runner.invoke(usage, ["--by", "day", "--csv", "--since", "2026-11-22"])
    assert as_csv.output.splitlines() == [
        "day,requests,input_tokens,output_tokens,cost_usd,unpriced_requests",
        "2026-11-22,1,200,40,5.4e-05,0",
        "2026-11-23,1,0,0,0.0,1",
    ]
    table = runner.invoke(usage, ["--gpu-hourly", "4.05"])
    assert table.exit_code == 0 and "break even" in table.output and "2 at unknown prices" in table.output
    assert runner.invoke(usage, ["--since", "soon"]).exit_code == 2
