"""Benchmark: how fast the trigger runner scans a stream, and what it adds between publish and handled.

    .venv/bin/python benchmarks/triggers.py [--records 10000] [--latency-n 200] [--dir DIR]

Prints a table, then one line of JSON. What is measured (the Pub/Sub emulator is started here; the trigger
is ``sql`` on a real SQLite file, so a match runs a real read-only query, writes the ledger three times,
and logs and publishes a tool record):

- Scan rate from Pub/Sub: --records AI records are published to a namespace's topic (raw client), then
  ``Runner`` over ``PubSubSource`` with ``once=True`` pulls, scans and acknowledges them all: records/s =
  --records / wall time from the first pull to the end (the tool records the matches publish come back on
  the same subscription and are scanned too). Two streams: no record matches, and 1 in 100 matches.
- Scan rate from the log on disk: the same two streams appended to a namespace's log, ``LogSource``.
- Latency: the runner runs continuously on a subscription; --latency-n matching records are published one
  at a time, every 100 ms (so that they do not queue); for each, publish -> handled (the tool record is
  logged and the ledger says ``recorded``; measured in ``on_handled``, before the ack), p50 and p99; and the
  handling alone (check, query, ledger, tool record) p50. For comparison, the raw client's blocking pull on
  the same loop of non-matching records (publish -> pulled): what the transport costs before the runner.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from my_llm import MessageStore, Record, Settings, topic_id_for
from my_llm.testing import Emulator, find_emulator
from my_llm.triggers import HistoryWriter, Ledger, LogSource, PubSubSource, Runner, load_config

PROJECT = "my-llm-bench"
PLAIN = "Here is a summary of the weekly numbers: revenue is up, churn is flat. " * 2
MATCHING = "Let me check the orders.\nSQL: SELECT status, count(*) FROM orders GROUP BY status\n"


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] if len(samples) > 1 else samples[0]


def make_config(folder: Path, namespaces: list[str]) -> Path:
    with sqlite3.connect(folder / "shop.db") as connection:
        connection.execute("CREATE TABLE orders (id INTEGER, status TEXT)")
        connection.executemany("INSERT INTO orders VALUES (?, ?)", [(n, ("paid", "open")[n % 2]) for n in range(1000)])
    connection.close()
    path = folder / "triggers.toml"
    names = ", ".join(f'"{name}"' for name in namespaces)
    path.write_text(
        f'ledger = "ledger.sqlite"\n\n[[trigger]]\nname = "shop"\nkind = "sql"\nnamespaces = [{names}]\n'
        'database = "sqlite:///shop.db"\nmax_rows = 20\n',
        encoding="utf-8",
    )
    return path


def stream(namespace: str, n: int, every: int | None) -> list[Record]:
    """``n`` AI records over 10 sessions; every ``every``-th one matches (none when None)."""
    return [
        Record.new(namespace, f"session-{i % 10}", "ai", MATCHING if every and i % every == every - 1 else PLAIN)
        for i in range(n)
    ]


def publish(records: list[Record]) -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(PROJECT, topic_id_for(records[0].namespace))
    futures = [publisher.publish(topic, r.to_json().encode(), **r.pubsub_attributes()) for r in records]
    for future in futures:
        future.result(60)


def scan_pubsub(settings: Settings, config_path: Path, namespace: str, records: list[Record]) -> dict:
    config = load_config(config_path)
    source = PubSubSource(PROJECT, [namespace], config.subscription)
    source.start()  # creates topic and subscription before anything is published
    publish(records)
    ledger, writer = Ledger(config.ledger_path(settings.message_history)), HistoryWriter(settings)
    started = time.perf_counter()
    report = Runner(config.triggers, ledger, writer).run(source.batches(threading.Event(), once=True))
    seconds = time.perf_counter() - started
    writer.close()
    ledger.close()
    source.close()
    return {"records_per_s": round(len(records) / seconds), "seconds": round(seconds, 2), "scanned": report.scanned}


def scan_log(settings: Settings, config_path: Path, namespace: str, records: list[Record]) -> dict:
    config = load_config(config_path)
    ledger = Ledger(config.ledger_path(settings.message_history))
    source = LogSource(settings.message_history, [namespace], ledger, read_only=False)
    source.start()  # the cursor at the (empty) log's end
    MessageStore(settings.message_history, namespace).append(records)
    writer = HistoryWriter(settings)
    started = time.perf_counter()
    report = Runner(config.triggers, ledger, writer).run(source.batches(threading.Event(), once=True))
    seconds = time.perf_counter() - started
    writer.close()
    ledger.close()
    return {"records_per_s": round(len(records) / seconds), "seconds": round(seconds, 2), "scanned": report.scanned}


def latency(settings: Settings, config_path: Path, namespace: str, n: int) -> dict:
    config = load_config(config_path)
    source = PubSubSource(PROJECT, [namespace], config.subscription)
    source.start()
    published: dict[str, float] = {}
    arrived: dict[str, float] = {}
    handling: list[float] = []
    stop = threading.Event()
    ledger, writer = Ledger(config.ledger_path(settings.message_history)), HistoryWriter(settings)
    runner = Runner(
        config.triggers, ledger, writer, on_handled=lambda h: arrived.setdefault(h.match.record.id, time.time())
    )
    timed = runner.handle_match

    def handle_match(trigger, match):
        started = time.perf_counter()
        result = timed(trigger, match)
        handling.append(time.perf_counter() - started)
        return result

    runner.handle_match = handle_match
    thread = threading.Thread(target=lambda: runner.run(source.batches(stop, once=False)))
    thread.start()
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(PROJECT, topic_id_for(namespace))
    time.sleep(1.0)  # the first pull is waiting
    for record in stream(namespace, n, 1):
        published[record.id] = time.time()
        publisher.publish(topic, record.to_json().encode(), **record.pubsub_attributes()).result(30)
        time.sleep(0.1)
    deadline = time.time() + 60
    while len(arrived) < n and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(30)
    writer.close()
    ledger.close()
    source.close()
    samples = [arrived[key] - published[key] for key in published if key in arrived]
    return {
        "handled": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1000, 1),
        "p99_ms": round(percentile(samples, 99) * 1000, 1),
        "handling_p50_ms": round(percentile(handling, 50) * 1000, 2),
    }


def raw_latency(namespace: str, n: int) -> dict:
    """The same publish loop read by the raw client's blocking pull (acknowledged at once): the transport's
    own publish -> pulled latency, to subtract from the runner's."""
    from google.api_core.exceptions import DeadlineExceeded
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, topic_id_for(namespace))
    publisher.create_topic(request={"name": topic})
    subscription = subscriber.subscription_path(PROJECT, f"{namespace}-raw")
    subscriber.create_subscription(request={"name": subscription, "topic": topic})
    published, arrived, stop = {}, {}, threading.Event()

    def pull() -> None:
        while not stop.is_set():
            try:
                response = subscriber.pull(request={"subscription": subscription, "max_messages": 100}, timeout=2)
            except DeadlineExceeded:  # nothing arrived in 2 s
                continue
            now = time.time()
            for received in response.received_messages:
                arrived.setdefault(received.message.attributes["id"], now)
            if response.received_messages:
                ack_ids = [received.ack_id for received in response.received_messages]
                subscriber.acknowledge(request={"subscription": subscription, "ack_ids": ack_ids})

    thread = threading.Thread(target=pull)
    thread.start()
    time.sleep(1.0)
    for record in stream(namespace, n, None):
        published[record.id] = time.time()
        publisher.publish(topic, record.to_json().encode(), **record.pubsub_attributes()).result(30)
        time.sleep(0.1)
    deadline = time.time() + 30
    while len(arrived) < n and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(30)
    samples = [arrived[key] - published[key] for key in published if key in arrived]
    return {
        "pulled": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1000, 1),
        "p99_ms": round(percentile(samples, 99) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--latency-n", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="triggers-bench-"))
    jar, java = find_emulator()
    with Emulator(jar, java, root / "emulator.log") as emulator:
        os.environ.update(
            {
                "PUBSUB_EMULATOR_HOST": emulator.host,
                "GOOGLE_CLOUD_PROJECT": PROJECT,
                "MESSAGE_HISTORY": str(root / "mh"),
            }
        )
        settings = Settings.from_env()
        names = ["ps-none", "ps-one", "log-none", "log-one", "latency"]
        config = make_config(root, names)
        result = {
            "pubsub_no_match": scan_pubsub(settings, config, "ps-none", stream("ps-none", args.records, None)),
            "pubsub_1_in_100": scan_pubsub(settings, config, "ps-one", stream("ps-one", args.records, 100)),
            "log_no_match": scan_log(settings, config, "log-none", stream("log-none", args.records, None)),
            "log_1_in_100": scan_log(settings, config, "log-one", stream("log-one", args.records, 100)),
            "latency": latency(settings, config, "latency", args.latency_n),
            "raw_client_latency": raw_latency("raw", args.latency_n),
        }
    table = Table("measure", "value")
    for name in ("pubsub_no_match", "pubsub_1_in_100", "log_no_match", "log_1_in_100"):
        run = result[name]
        table.add_row(f"{name}: records/s", f"{run['records_per_s']:,} ({args.records:,} in {run['seconds']} s)")
    lat = result["latency"]
    table.add_row("publish -> handled p50 / p99", f"{lat['p50_ms']} / {lat['p99_ms']} ms ({lat['handled']} records)")
    table.add_row("handling alone p50 (check, query, ledger, tool record)", f"{lat['handling_p50_ms']} ms")
    raw = result["raw_client_latency"]
    table.add_row("raw client publish -> pulled p50 / p99 (the transport)", f"{raw['p50_ms']} / {raw['p99_ms']} ms")
    Console().print(table)
    print(json.dumps({"benchmark": "triggers", "records": args.records, **result}))


if __name__ == "__main__":
    main()
