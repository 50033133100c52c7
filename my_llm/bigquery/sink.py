"""``my-llm bigquery sink``: a streaming subscriber that writes records into the table, exactly once.

For where a Pub/Sub BigQuery subscription is not available (the emulator, or a team that prefers to run it):
messages are pulled with the client's streaming pull (which keeps their leases alive while they wait),
gathered into batches (up to ``batch_rows`` or ``batch_seconds`` after the first), written through a
staging table and a MERGE on ``id`` (:mod:`my_llm.bigquery.merge`), and acknowledged only after the MERGE.
A record delivered twice (Pub/Sub is at least once; a sink killed after a write and before its acks) is
inserted once.

Memory is bounded by the client's flow control (at most ``2 * batch_rows`` messages outstanding per
subscription). A batch that is not full is written ``batch_seconds`` after its first message: BigQuery
allows 1,500 load jobs per table per day, and the default (60 s) keeps a trickle of messages within that.

:meth:`Sink.run` returns when ``stop`` is set (the CLI sets it on SIGTERM and Ctrl-C): the batch being
written is finished and acknowledged, messages not yet written are nacked (redelivered at once), the
streams are closed. A killed sink's unacknowledged messages come back after ``lease_s``.

The Pub/Sub emulator delivers one message per ordering key (a session) at a time until it is acknowledged,
even to a subscription without message ordering: there a sink's rate is about one batch per round trip per
session, so tests use many sessions and short ``batch_seconds``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass

from my_llm.bigquery.merge import Batch, Writer
from my_llm.bigquery.schema import to_row
from my_llm.bigquery.target import BigQueryError, Target

log = logging.getLogger(__name__)

BATCH_ROWS = 10_000
# At most one load job a minute into the sink's staging table: BigQuery allows 1,500 load jobs per table per day.
BATCH_SECONDS = 60.0
LEASE_S = 10  # also how long a killed sink's messages wait before they are redelivered
FLOW_BYTES = 64 * 1024 * 1024
WRITE_ATTEMPTS = 5  # consecutive failed writes (each batch nacked, then a pause) before run() raises
_POLL_S = 0.2


@dataclass
class SinkReport:
    """What a sink did: messages ``received``, rows ``inserted`` (the rest were in the table already or
    ``rejected`` as invalid records: acknowledged and logged, they are still in the sender's log), ``batches``
    written, and the ``seconds`` it ran."""

    received: int = 0
    inserted: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: float = 0.0


class Sink:
    """Pulls records from Pub/Sub subscriptions into ``target``'s table.

    Args:
        client: a ``google.cloud.bigquery.Client`` for ``target``.
        target: the table (made by ``setup``).
        subscriber: a ``pubsub_v1.SubscriberClient`` (see :func:`my_llm.bigquery.pubsub_clients`).
        subscriptions: paths ``projects/P/subscriptions/S``, one or more (their topics carry records).
        batch_rows / batch_seconds: a batch is written when it has ``batch_rows`` messages, or
            ``batch_seconds`` after its first message.
        lease_s: the longest ack deadline the client asks for at a time (it renews leases while the
            process lives; a killed sink's messages are redelivered after at most this).
    """

    def __init__(
        self,
        client,
        target: Target,
        subscriber,
        subscriptions: Sequence[str],
        *,
        batch_rows: int = BATCH_ROWS,
        batch_seconds: float = BATCH_SECONDS,
        lease_s: int = LEASE_S,
    ) -> None:
        if not subscriptions:
            raise ValueError("a sink needs at least one subscription")
        self.client, self.target, self.subscriber = client, target, subscriber
        self.subscriptions = list(subscriptions)
        self.batch_rows, self.batch_seconds, self.lease_s = batch_rows, batch_seconds, lease_s

    def run(self, stop: threading.Event, on_batch: Callable[[SinkReport], None] | None = None) -> SinkReport:
        """Pull, write and acknowledge until ``stop`` is set; returns what was done.

        Raises:
            BigQueryError: a subscription's stream failed (missing subscription, no permission), or
                WRITE_ATTEMPTS writes in a row failed (their messages were nacked: nothing is lost).
        """
        from google.cloud import pubsub_v1

        report, started = SinkReport(), time.monotonic()
        inbox: queue.Queue = queue.Queue()
        flow = pubsub_v1.types.FlowControl(
            max_messages=2 * self.batch_rows, max_bytes=FLOW_BYTES, max_duration_per_lease_extension=self.lease_s
        )
        streams = {
            path: self.subscriber.subscribe(path, _into(inbox, path), flow_control=flow) for path in self.subscriptions
        }
        writer, failures = Writer(self.client, self.target, "sink"), 0
        try:
            while not stop.is_set():
                _raise_if_failed(streams)
                messages = self._collect(inbox, stop)
                if not messages:
                    continue
                try:
                    self._write(messages, writer, report)
                    failures = 0
                except BigQueryError:
                    _settle(self.subscriber, messages, ack=False)
                    failures += 1
                    if failures >= WRITE_ATTEMPTS:
                        raise
                    log.warning("A batch of %d could not be written (nacked); retrying.", len(messages), exc_info=True)
                    stop.wait(min(2**failures, 30))
                    continue
                report.seconds = time.monotonic() - started
                if on_batch:
                    on_batch(report)
        finally:
            _close(self.subscriber, streams, inbox)
            writer.close()
            report.seconds = time.monotonic() - started
        return report

    def _collect(self, inbox: queue.Queue, stop: threading.Event) -> list:
        """The next batch: waits for a first message (checking ``stop``), then up to ``batch_seconds`` more."""
        try:
            first = inbox.get(timeout=_POLL_S)
        except queue.Empty:
            return []
        messages, deadline = [first], time.monotonic() + self.batch_seconds
        while len(messages) < self.batch_rows and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                messages.append(inbox.get(timeout=min(remaining, _POLL_S)))
            except queue.Empty:
                continue
        return messages

    def _write(self, messages: list, writer: Writer, report: SinkReport) -> None:
        """Validate, write (staging + MERGE), then acknowledge every message of the batch."""
        with Batch() as batch:
            for _path, message in messages:
                try:
                    batch.add(to_row(json.loads(message.data)))
                except ValueError as error:  # not JSON, or not a valid record (RowError)
                    report.rejected += 1
                    log.warning("Dropping message %s, not a valid record: %s", message.message_id, error)
            report.inserted += writer.write(batch)
        _settle(self.subscriber, messages, ack=True)
        report.received += len(messages)
        report.batches += 1


def _raise_if_failed(streams: dict) -> None:
    for path, future in streams.items():
        if future.done():
            try:
                error = future.exception(timeout=0)
            except CancelledError:
                error = None
            raise BigQueryError(f"The streaming pull from {path} stopped: {error or 'cancelled'}.") from error


def _into(inbox: queue.Queue, path: str) -> Callable:
    """The streaming pull's callback: ``(subscription path, message)`` into ``inbox``."""

    def put(message) -> None:
        inbox.put((path, message))

    return put


def _settle(subscriber, messages: list, ack: bool) -> None:
    """Acknowledge (or nack: deadline 0, redelivered at once) ``(path, message)`` pairs with one unary call per
    subscription and 1,000 ids, so it is done when this returns (the streaming client's own ``ack()`` is sent
    later, by a thread, and may never be when the process stops); then release them from lease management.
    Should the call fail, the client's own ``ack()``/``nack()`` is the fallback (a message acknowledged neither
    way is redelivered, and the MERGE drops it)."""
    from google.api_core.exceptions import GoogleAPIError

    by_path: dict[str, list] = {}
    for path, message in messages:
        by_path.setdefault(path, []).append(message)
    for path, group in by_path.items():
        for first in range(0, len(group), 1000):
            chunk = group[first : first + 1000]
            ack_ids = [message.ack_id for message in chunk]
            try:
                if ack:
                    subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
                else:
                    subscriber.modify_ack_deadline(
                        request={"subscription": path, "ack_ids": ack_ids, "ack_deadline_seconds": 0}
                    )
            except GoogleAPIError as error:
                log.warning(
                    "Could not %s %d messages of %s (%s): left to the client.",
                    "ack" if ack else "nack",
                    len(chunk),
                    path,
                    error,
                )
                for message in chunk:
                    message.ack() if ack else message.nack()
                continue
            for message in chunk:
                message.drop()


def _close(subscriber, streams: dict, inbox: queue.Queue) -> None:
    """Nack what was pulled and not written (Pub/Sub redelivers it at once), then stop the streams; a message
    that arrives meanwhile is redelivered when its lease runs out."""
    _nack_all(subscriber, inbox)
    for future in streams.values():
        future.cancel()
    futures_wait(list(streams.values()), timeout=10)
    _nack_all(subscriber, inbox)


def _nack_all(subscriber, inbox: queue.Queue) -> None:
    pending = []
    while True:
        try:
            pending.append(inbox.get_nowait())
        except queue.Empty:
            break
    if pending:
        _settle(subscriber, pending, ack=False)
