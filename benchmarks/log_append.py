"""Benchmark: appending to the message log, against LangChain's FileChatMessageHistory, and through Pub/Sub.

    .venv/bin/python benchmarks/log_append.py [--n 5000] [--repeats 3] [--prefill 100000] [--no-pubsub]

Prints a table, then one line of JSON:
    {"n", "ours_s", "file_history_s", "ratio", "p99_ms_at_1k", "p99_ms_at_100k",
     "pubsub_add_p99_ms", "pubsub_sent", "pubsub_delivered", "pubsub_delivered_per_s", "raw_client_per_s", ...}

- ours_s / file_history_s: adding n messages one at a time, disk only, with PubSubChatMessageHistory and
  with langchain_community's FileChatMessageHistory (which rewrites its whole file on every add). Ours is
  the median of --repeats runs; the peer runs once (it is quadratic). ratio = file_history_s / ours_s.
- p99_ms_at_1k / p99_ms_at_100k: per-add p99 with 1,000 and --prefill records already in the log.
- With the Pub/Sub emulator (started here): add_message p99, distinct ids pulled back, and delivered/s
  (n / time from the first add until every publish is acknowledged), next to the raw google-cloud-pubsub
  client publishing the same n payloads in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from my_llm import MessageStore, PubSubChatMessageHistory, Record, Settings
from my_llm.testing import Emulator, find_emulator, pull_all

TEXT = "What random animal have you said? " * 3  # about 100 characters, a typical short prompt


def _settings(root: Path, **extra) -> Settings:
    return Settings(message_history=root / "logs", chroma_db_path=root / "chroma", **extra)


def time_ours(root: Path, n: int) -> float:
    history = PubSubChatMessageHistory("bench", settings=_settings(root))
    started = time.perf_counter()
    for i in range(n):
        history.add_user_message(f"{i} {TEXT}")
    return time.perf_counter() - started


def time_file_history(root: Path, n: int) -> float:
    from langchain_community.chat_message_histories import FileChatMessageHistory

    history = FileChatMessageHistory(str(root / "file_history.json"))
    started = time.perf_counter()
    for i in range(n):
        history.add_user_message(f"{i} {TEXT}")
    return time.perf_counter() - started


def p99_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] * 1000


def per_add_p99_with_prefill(root: Path, prefill: int, adds: int = 1000) -> float:
    """Fill the log with ``prefill`` records in bulk, then time ``adds`` single adds."""
    store = MessageStore(root / "logs", "prefilled")
    for start in range(0, prefill, 10_000):
        store.append(
            Record.new("prefilled", "s", "human", f"{i} {TEXT}") for i in range(start, min(prefill, start + 10_000))
        )
    history = PubSubChatMessageHistory("prefilled", settings=_settings(root))
    samples = []
    for i in range(adds):
        started = time.perf_counter()
        history.add_user_message(f"{i} {TEXT}")
        samples.append(time.perf_counter() - started)
    return p99_ms(samples)


def pubsub_run(root: Path, n: int) -> dict:
    """Publish n messages through the history and through the raw client, against a fresh emulator."""
    from google.cloud import pubsub_v1

    jar, java = find_emulator()
    with Emulator(jar, java, root / "emulator.log") as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host  # read by the Pub/Sub client itself
        project = "my-llm-bench"
        history = PubSubChatMessageHistory(
            "pubsub-bench", settings=_settings(root, google_cloud_project=project, pubsub_emulator_host=emulator.host)
        )
        history.publisher.ensure_topic()
        subscriber = pubsub_v1.SubscriberClient()
        subscription = subscriber.subscription_path(project, "bench")
        subscriber.create_subscription(request={"name": subscription, "topic": history.publisher.topic_path})

        samples = []
        started = time.perf_counter()
        for i in range(n):
            before = time.perf_counter()
            history.add_user_message(f"{i} {TEXT}")
            samples.append(time.perf_counter() - before)
        left = history.flush(timeout=120)
        delivered_s = time.perf_counter() - started
        history.close()
        ids = pull_all(subscriber, subscription, expected=n, timeout_s=120)

        raw = pubsub_v1.PublisherClient()
        topic = raw.topic_path(project, "raw-bench")
        raw.create_topic(request={"name": topic})
        payload = Record.new("raw", "s", "human", TEXT).to_json().encode()
        started = time.perf_counter()
        futures = [raw.publish(topic, payload) for _ in range(n)]
        for future in futures:
            future.result(timeout=120)
        raw_s = time.perf_counter() - started
        raw.stop()
    return {
        "pubsub_add_p99_ms": round(p99_ms(samples), 3),
        "pubsub_sent": n,
        "pubsub_unacknowledged": left,
        "pubsub_delivered": len(ids),
        "pubsub_delivered_per_s": round(len(ids) / delivered_s),
        "raw_client_per_s": round(n / raw_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="messages per timed run [5000]")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours, median reported [3]")
    parser.add_argument("--prefill", type=int, default=100_000, help="records in the log for the big p99 [100000]")
    parser.add_argument("--no-pubsub", action="store_true", help="skip the emulator part")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        runs = [time_ours(Path(tmp) / f"ours{r}", args.n) for r in range(args.repeats)]
        ours_s = statistics.median(runs)
        file_history_s = time_file_history(Path(tmp), args.n)
        p99_1k = per_add_p99_with_prefill(Path(tmp) / "p1k", 1000)
        p99_big = per_add_p99_with_prefill(Path(tmp) / "pbig", args.prefill)
        result = {
            "n": args.n,
            "ours_s": round(ours_s, 3),
            "ours_runs_s": [round(r, 3) for r in runs],
            "file_history_s": round(file_history_s, 3),
            "ratio": round(file_history_s / ours_s, 1),
            "p99_ms_at_1k": round(p99_1k, 3),
            "p99_ms_at_100k": round(p99_big, 3),
            "p99_growth": round(p99_big / p99_1k, 2),
        }
        if not args.no_pubsub:
            result |= pubsub_run(Path(tmp), args.n)

    table = Table("figure", "value", title=f"log append, n = {args.n}")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
