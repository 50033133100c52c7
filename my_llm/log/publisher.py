"""Pub/Sub publishing: one long-lived client per topic, non-blocking, flushed on demand.

Follows the googleapis/python-pubsub samples: ``publish`` returns futures at once (batching does
the rest), ``flush``/``close`` wait on them, an ordering key per session keeps a conversation in
order, and a failed key is resumed with ``resume_publish``. The client switches to the emulator by
itself when ``PUBSUB_EMULATOR_HOST`` is set.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures

from my_llm.errors import PublishError
from my_llm.record import Record

log = logging.getLogger(__name__)

# Calls that set up the topic must fail fast when the server is down: the caller's records are
# already on disk, and a chat must not hang on analytics.
ADMIN_TIMEOUT_S = 5.0
# After a failed topic set-up, later adds skip Pub/Sub (disk only) for this long instead of each
# waiting ADMIN_TIMEOUT_S again.
RETRY_AFTER_S = 60.0
# A publish that Pub/Sub has not acknowledged within this time fails; its record stays in the outbox
# for `my-llm replay`, and flush()/close() never wait on a dead server for longer than this.
PUBLISH_TIMEOUT_S = 60.0
# Flow control: past these limits a publish fails at once instead of blocking the caller.
FLOW_MESSAGES = 20_000
FLOW_BYTES = 64 * 1024 * 1024


class Publisher:
    """Publishes records to ``projects/<project_id>/topics/<topic_id>``, creating the topic if missing.

    Args:
        project_id: Google Cloud project (any id works against the emulator).
        topic_id: topic name, e.g. ``my-llm-debugger``.
        client: a ``pubsub_v1.PublisherClient`` created with message ordering enabled; one is built
            on first use when not given.
    """

    def __init__(self, project_id: str, topic_id: str, client=None) -> None:
        self.project_id = project_id
        self.topic_id = topic_id
        self._client = client
        self._topic_ready = False
        self._retry_at = 0.0
        self._failing = False
        # Futures whose done-callback has not finished yet; flush() waits on the condition, not on the
        # futures, because a future is "done" before its callback has recorded the acknowledgement.
        self._pending: set[futures.Future] = set()
        self._settled = threading.Condition()

    @functools.cached_property
    def _publish_retry(self):
        from google.api_core import exceptions
        from google.api_core.retry import Retry, if_exception_type

        # The codes the client's own default publish retry treats as transient.
        transient = if_exception_type(
            exceptions.Aborted,
            exceptions.Cancelled,
            exceptions.DeadlineExceeded,
            exceptions.InternalServerError,
            exceptions.ResourceExhausted,
            exceptions.ServiceUnavailable,
            exceptions.Unknown,
        )
        return Retry(predicate=transient, initial=0.1, maximum=5.0, multiplier=2.0, timeout=PUBLISH_TIMEOUT_S)

    @property
    def topic_path(self) -> str:
        return f"projects/{self.project_id}/topics/{self.topic_id}"

    @property
    def client(self):
        if self._client is None:
            from google.cloud import pubsub_v1

            types = pubsub_v1.types
            batch = types.BatchSettings(max_messages=500, max_bytes=1_000_000, max_latency=0.01)
            flow = types.PublishFlowControl(
                message_limit=FLOW_MESSAGES,
                byte_limit=FLOW_BYTES,
                limit_exceeded_behavior=types.LimitExceededBehavior.ERROR,
            )
            options = types.PublisherOptions(enable_message_ordering=True, flow_control=flow)
            try:
                self._client = pubsub_v1.PublisherClient(batch_settings=batch, publisher_options=options)
            except Exception as error:  # google.auth raises several unrelated types here
                raise PublishError(
                    f"Could not create a Pub/Sub client for project {self.project_id!r}: {error}. "
                    "Run `gcloud auth application-default login`, or set PUBSUB_EMULATOR_HOST."
                ) from error
        return self._client

    def ensure_topic(self) -> None:
        """Create the topic unless it exists.

        Raises:
            PublishError: the server is unreachable or refused (the message says which and why).
        """
        if self._topic_ready:
            return
        if time.monotonic() < self._retry_at:
            raise PublishError(f"Pub/Sub was unreachable for {self.topic_path} moments ago; not retrying yet.")
        from google.api_core import exceptions
        from google.api_core.retry import Retry

        # Without an explicit Retry the client keeps retrying UNAVAILABLE for 600 s.
        bounded = {"retry": Retry(initial=0.1, maximum=1.0, timeout=ADMIN_TIMEOUT_S), "timeout": ADMIN_TIMEOUT_S}
        try:
            try:
                self.client.get_topic(request={"topic": self.topic_path}, **bounded)
            except exceptions.NotFound:
                try:
                    self.client.create_topic(request={"name": self.topic_path}, **bounded)
                except exceptions.AlreadyExists:
                    pass  # another process created it between our two calls
        except (exceptions.GoogleAPICallError, exceptions.RetryError) as error:
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            raise PublishError(f"Could not get or create topic {self.topic_path}: {error}") from error
        self._topic_ready = True

    def publish(
        self, records: Iterable[Record], on_acked: Callable[[list[str]], None] | None = None
    ) -> list[futures.Future]:
        """Queue records for publishing and return their futures without waiting.

        Data is the record's JSON; attributes are ``namespace``, ``role``, ``id``, ``schema``; the
        ordering key is the record's ``session_id``. ``on_acked`` is called (from a client thread) with
        ``[record id]`` for each record Pub/Sub acknowledged. A failed publish is logged once per outage;
        the caller's outbox still holds the record.

        Raises:
            PublishError: the topic could not be set up.
        """
        self.ensure_topic()
        queued = []
        for record in records:
            future = self.client.publish(
                self.topic_path,
                record.to_json().encode("utf-8"),
                ordering_key=record.session_id,
                retry=self._publish_retry,
                timeout=PUBLISH_TIMEOUT_S,
                **record.pubsub_attributes(),
            )
            with self._settled:
                self._pending.add(future)
            future.add_done_callback(functools.partial(self._on_done, record=record, on_acked=on_acked))
            queued.append(future)
        return queued

    def _on_done(self, future: futures.Future, record: Record, on_acked) -> None:
        error = future.exception()
        if error is None:
            if on_acked is not None:
                on_acked([record.id])
            self._failing = False
        else:
            if not self._failing:
                log.warning(
                    "Publishing to %s failed (%s); unacknowledged records stay in the outbox.", self.topic_path, error
                )
            self._failing = True
            client = self._client
            if client is not None:  # an ordering key stops after a failure until it is resumed
                client.resume_publish(self.topic_path, record.session_id)
        with self._settled:  # last, so flush() returns only after the acknowledgement is recorded
            self._pending.discard(future)
            self._settled.notify_all()

    def flush(self, timeout: float | None = 30.0) -> int:
        """Wait up to ``timeout`` seconds (None: no limit) until every publish has settled and its
        acknowledgement is recorded; returns how many are still pending."""
        with self._settled:
            self._settled.wait_for(lambda: not self._pending, timeout=timeout)
            return len(self._pending)

    def close(self, timeout: float | None = 30.0) -> int:
        """Flush, then stop the client's background threads; returns how many never finished."""
        left = self.flush(timeout)
        if self._client is not None and not left:
            self._client.stop()
            self._client = None
            self._topic_ready = False
        return left
