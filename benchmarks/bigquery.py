"""Benchmark: BigQuery landing against the emulators, and `my-llm usage` on DuckDB over the local logs.

    .venv/bin/python benchmarks/bigquery.py [--records 1000000] [--sink-records 20000] [--sessions 1000]

Starts bqemulator (from .bqemu-venv, as .ci/run makes it) and the Pub/Sub emulator, writes --records records
(a human turn and a priced or unpriced AI reply, with their LangChain messages, about 500 bytes a line) to one
namespace's log, then measures, each in a child process so its peak RSS is its own:

- sync: `my-llm bigquery sync` of the whole log into an empty table (rows/s, peak RSS; target <= 500 MB),
  then again (nothing new: the cursor);
- usage: `usage_report` by model on DuckDB over the log (target <= 2 s), and the whole `my-llm usage` command
  (interpreter start and imports included); the BigQuery emulator's totals are checked against DuckDB's;
- sink: --sink-records published through a history over --sessions sessions (the Pub/Sub emulator delivers
  one message per session at a time until it is acknowledged), then drained by the sink into an empty table
  (rows/s from its start until the last row is in the table); then as many published without ordering keys.

Prints a table, then one line of JSON: {"records", "log_mb", "sync_s", "sync_rows_per_s", "sync_peak_rss_mb",
"sync_again_s", "usage_s", "usage_cli_s", "usage_bigquery_s", "usage_same_totals", "sink_records",
"sink_sessions", "sink_s", "sink_rows_per_s", "sink_batches", "sink_unordered_rows_per_s", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from my_llm import MessageStore, PubSubChatMessageHistory, Record
from my_llm.log import encode
from my_llm.record import utc_now
from my_llm.testing import Emulator, ServerProcess, find_emulator, free_port

ROOT = Path(__file__).resolve().parent.parent
BQEMULATOR = ROOT / ".bqemu-venv" / "bin" / "bqemulator"
PROJECT = "bench-proj"
DATASET = "bench"
MODELS = [("openai:gpt-4o-mini", 7.2e-06), ("openai:gpt-4o", 1.1e-04), ("ollama:llama3.1", None)]

SYNC = """
import json, resource, sys, time
from my_llm import MessageStore, Settings
from my_llm.bigquery import Target, bigquery_client, sync_namespace
settings = Settings.from_env()
target = Target.from_settings(settings)
started = time.perf_counter()
report = sync_namespace(bigquery_client(target), target, MessageStore(settings.message_history, sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - started, "read": report.read, "inserted": report.inserted,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
USAGE = """
import json, time
from my_llm import Settings
from my_llm.bigquery import LocalEngine, local_logs, usage_report
started = time.perf_counter()
with LocalEngine(local_logs(Settings.from_env().message_history)) as engine:
    report = usage_report(engine, "model")
print(json.dumps({"seconds": time.perf_counter() - started, "totals": report.totals}))
"""
USAGE_CLI = "from my_llm.cli_bigquery import usage; usage(['--by', 'model', '--json'])"


def write_log(root: Path, records: int) -> float:
    """``records`` records (half human turns, half AI replies) over 40 days into ``root/bench``; returns MB."""
    store, lines, start = MessageStore(root, "bench", fsync="never"), [], utc_now() - timedelta(days=40)
    for n in range(records):
        when, session = start + timedelta(seconds=n * 3), f"s{n // 40}"
        if n % 2 == 0:
            message = {"type": "human", "data": {"content": f"question {n}", "type": "human"}}
            text = f"question {n} " + "about the code " * 8
            record = Record.new("bench", session, "human", text, created_at=when, message=message)
        else:
            model, price = MODELS[n % len(MODELS)]
            usage = {"input_tokens": 200 + n % 97, "output_tokens": 50 + n % 31, "cost_usd": price}
            message = {"type": "ai", "data": {"content": f"answer {n}", "type": "ai", "tool_calls": []}}
            text = f"answer {n} " + "it works like this " * 8
            record = Record.new(
                "bench", session, "ai", text, model=model, usage=usage, created_at=when, message=message
            )
        lines.append(encode(record))
        if len(lines) == 10_000:
            store.append_encoded(lines)
            lines = []
    store.append_encoded(lines)
    return store.path.stat().st_size / 1e6


def child(code: str, env: dict, *args: str) -> tuple[dict, float]:
    """Run ``code`` in a fresh interpreter; returns (its JSON output, wall seconds)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def sink_run(env: dict, records: int, sessions: int) -> dict:
    """The sink draining ``records`` into an empty table of its own, twice: published through a history over
    ``sessions`` sessions (ordering keys), then published by the raw client without ordering keys."""
    from google.cloud import pubsub_v1

    from my_llm import Settings
    from my_llm.bigquery import (
        Target,
        bigquery_client,
        namespace_topics,
        pubsub_clients,
        setup_subscriptions,
        setup_tables,
        subscription_id,
    )

    target = Target.from_settings(Settings.from_env(), dataset="bench_sink")
    client = bigquery_client(target)
    setup_tables(client, target)
    publisher, subscriber = pubsub_clients(target)
    # A namespace (topic and subscription) per run: the Pub/Sub emulator keeps sending part of a subscription's
    # messages to a stream closed a moment ago, to be redelivered when their deadline passes.
    topics = namespace_topics(publisher, target, Path(env["MESSAGE_HISTORY"]), ["sinkbench", "sinkraw"])
    setup_subscriptions(publisher, subscriber, target, topics, "sink")
    paths = [subscriber.subscription_path(target.project, subscription_id(t.rsplit("/", 1)[-1], target, "sink"))
             for t in topics]  # fmt: skip

    history = PubSubChatMessageHistory("sinkbench")
    for first in range(0, records, 1000):
        batch = range(first, min(first + 1000, records))
        history.add_records([Record.new("sinkbench", f"s{n % sessions}", "human", f"message {n}") for n in batch])
    history.close()
    ordered = drain(client, target, subscriber, paths[0], records)

    raw = pubsub_v1.PublisherClient()
    futures = [
        raw.publish(topics[1], encode(Record.new("sinkraw", "raw", "human", f"raw {n}"))) for n in range(records)
    ]
    for future in futures:
        future.result()
    unordered = drain(client, target, subscriber, paths[1], records)
    return {
        "sink_records": records,
        "sink_sessions": sessions,
        "sink_s": round(ordered.seconds, 2),
        "sink_rows_per_s": round(ordered.inserted / ordered.seconds),
        "sink_batches": ordered.batches,
        "sink_unordered_s": round(unordered.seconds, 2),
        "sink_unordered_rows_per_s": round(unordered.inserted / unordered.seconds),
        "sink_unordered_batches": unordered.batches,
    }


def drain(client, target, subscriber, path: str, records: int):
    """Run a sink until ``records`` rows were inserted; returns its SinkReport (seconds from its start)."""
    import threading

    from my_llm.bigquery import Sink

    sink, stop = Sink(client, target, subscriber, [path], batch_rows=5000, batch_seconds=0.5), threading.Event()
    return sink.run(stop, on_batch=lambda done: stop.set() if done.inserted >= records else None)


def run(records: int, sink_records: int, sessions: int, tmp: Path) -> dict:
    history = tmp / "message_history"
    started = time.perf_counter()
    log_mb = write_log(history, records)
    result = {"records": records, "log_mb": round(log_mb, 1), "write_log_s": round(time.perf_counter() - started, 1)}
    jar, java = find_emulator()
    rest, grpc = free_port(), free_port()
    bq_argv = [BQEMULATOR, "start", "--rest-port", rest, "--grpc-port", grpc, "--project", PROJECT]
    bq = ServerProcess(bq_argv, rest, tmp / "bq.log", name="bqemulator", ready_path="/healthz", timeout_s=90)
    with bq, Emulator(jar, java, tmp / "pubsub.log") as pubsub:
        env = dict(os.environ, MESSAGE_HISTORY=str(history), BIGQUERY_EMULATOR_HOST=bq.url)
        env |= {"GOOGLE_CLOUD_PROJECT": PROJECT, "MY_LLM_BIGQUERY_DATASET": DATASET}
        env |= {"PUBSUB_EMULATOR_HOST": pubsub.host, "CLOUDSDK_CONFIG": str(tmp / "gcloud")}
        os.environ.update(env)  # for the clients of this process
        from my_llm import Settings
        from my_llm.bigquery import Target, bigquery_client, setup_tables

        target = Target.from_settings(Settings.from_env())
        setup_tables(bigquery_client(target), target)
        synced, _ = child(SYNC, env, "bench")
        again, _ = child(SYNC, env, "bench")
        result |= {
            "sync_s": round(synced["seconds"], 1),
            "sync_rows_per_s": round(synced["read"] / synced["seconds"]),
            "sync_peak_rss_mb": round(synced["peak_rss_mb"]),
            "sync_inserted": synced["inserted"],
            "sync_again_s": round(again["seconds"], 2),
            "sync_again_read": again["read"],
        }
        local, _ = child(USAGE, env)
        _, cli_s = child(USAGE_CLI, env)
        result |= {"usage_s": round(local["seconds"], 2), "usage_cli_s": round(cli_s, 2)}
        result |= bigquery_totals(env, local["totals"])
        if sink_records:
            result |= sink_run(env, sink_records, sessions)
    return result


def bigquery_totals(env: dict, local_totals: dict) -> dict:
    """The same report from the emulator's table: its time, and whether its totals equal DuckDB's."""
    from my_llm import Settings
    from my_llm.bigquery import BigQueryEngine, Target, bigquery_client, usage_report

    target = Target.from_settings(Settings.from_env())
    started = time.perf_counter()
    report = usage_report(BigQueryEngine(bigquery_client(target), target), "model")
    return {
        "usage_bigquery_s": round(time.perf_counter() - started, 2),
        "usage_same_totals": report.totals == local_totals,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the log [1000000]")
    parser.add_argument("--sink-records", type=int, default=20_000, help="records through the sink, 0: none [20000]")
    parser.add_argument("--sessions", type=int, default=1000, help="sessions (ordering keys) of those [1000]")
    args = parser.parse_args()
    if not BQEMULATOR.is_file():
        raise SystemExit(f"{BQEMULATOR} is missing: make .bqemu-venv as .ci/run does.")
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.records, args.sink_records, args.sessions, Path(tmp))
    table = Table("figure", "value", title=f"BigQuery landing, {args.records:,} records")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
