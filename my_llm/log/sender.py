"""Sending queued messages to one topic: one daemon thread, one publish request at a time, in order.

Why not ``google.cloud.pubsub_v1.PublisherClient.publish``: with message ordering its per-message work (a
protobuf wrapper, a future, a retry copy, flow control, a sequencer per ordering key) costs about as much as
the whole disk append before it, and a delivery that does both reached 20-50% of the raw client's rate.
Here a message is a raw protobuf queued in a deque; the thread sends whatever is queued (up to 1,000
messages or 9 MB, the server's limit being 10 MB) in one ``Publish`` call of the generated (GAPIC) client,
waits for the answer, then sends the next. One request at a time keeps every ordering key in order across
requests, as the client's ordered sequencer does; batches form by themselves while a request is in flight,
so a lone chat message leaves at once.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from typing import Any

MAX_MESSAGES = 1000
MAX_BYTES = 9_000_000
_OVERHEAD_BYTES = 100  # per message: attributes, ordering key and framing, roughly


class BatchSender:
    """Sends queued ``(message, item)`` pairs in order, in requests of up to 1,000 messages / 9 MB.

    Args:
        send: ``send(messages)`` publishes one request of raw ``PubsubMessage`` protobufs; it raises once
            its own retries are exhausted (any exception it raises is handed to ``on_settled``).
        on_settled: ``on_settled(items, error)``, called from the sending thread after each request:
            ``error`` is None when Pub/Sub acknowledged every message of it.
        errors: the exception types ``send`` raises for a failed request (others end the thread: a bug).
    """

    def __init__(
        self,
        send: Callable[[list], Any],
        on_settled: Callable[[list, BaseException | None], None],
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self._send = send
        self._on_settled = on_settled
        self._errors = errors
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def put(self, pairs: Sequence[tuple[Any, Any]]) -> None:
        """Queue ``(message, item)`` pairs (message: a raw ``PubsubMessage``; item: what ``on_settled`` gets
        back) and wake the sending thread, starting it on first use."""
        self._queue.extend(pairs)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="my-llm-pubsub-sender", daemon=True)
                self._thread.start()
        self._wake.set()

    def __len__(self) -> int:
        return len(self._queue)

    def abandon(self) -> list:
        """Stop sending: return the items still queued (never sent); a request in flight still settles."""
        with self._lock:  # not while _take() is moving messages out
            self._stopped = True
            abandoned = [item for _, item in self._queue]
            self._queue.clear()
        self._wake.set()
        return abandoned

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait()
            self._wake.clear()  # before draining: a put() after this sets it again
            while self._queue and not self._stopped:
                messages, items = self._take()
                if not messages:
                    break
                try:
                    self._send(messages)
                except self._errors as error:
                    self._on_settled(items, error)
                else:
                    self._on_settled(items, None)

    def _take(self) -> tuple[list, list]:
        messages, items, size = [], [], 0
        with self._lock:
            while self._queue and len(messages) < MAX_MESSAGES and not self._stopped:
                message, item = self._queue[0]
                weight = len(message.data) + _OVERHEAD_BYTES
                if messages and size + weight > MAX_BYTES:
                    break
                self._queue.popleft()
                messages.append(message)
                items.append(item)
                size += weight
        return messages, items
