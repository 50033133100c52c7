"""Pub/Sub publishing: one long-lived client per topic, non-blocking, flushed on demand.

Follows the googleapis/python-pubsub samples: ``publish`` returns futures at once (batching does
the rest), ``flush``/``close`` wait on them, an ordering key per session keeps a conversation in
order, and a failed key is resumed with ``resume_publish``. The client switches to the emulator by
itself when ``PUBSUB_EMULATOR_HOST`` is set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent import futures

from my_llm.errors import PublishError
from my_llm.messages import Record

log = logging.getLogger(__name__)

# Calls that set up the topic must fail fast when the server is down: the caller's records are
# already on disk, and a chat must not hang on analytics.
ADMIN_TIMEOUT_S = 5.0
# After a failed topic set-up, later adds skip Pub/Sub (disk only) for this long instead of each
# waiting ADMIN_TIMEOUT_S again.
RETRY_AFTER_S = 60.0


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
        self._pending: set[futures.Future] = set()
        self._lock = threading.Lock()

    @property
    def topic_path(self) -> str:
        return f"projects/{self.project_id}/topics/{self.topic_id}"

    @property
    def client(self):
        if self._client is None:
            from google.cloud import pubsub_v1

            batch = pubsub_v1.types.BatchSettings(max_messages=500, max_bytes=1_000_000, max_latency=0.05)
            options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
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

    def publish(self, records: Iterable[Record]) -> list[futures.Future]:
        """Queue records for publishing and return their futures without waiting.

        Data is the record's JSON; attributes are ``namespace``, ``role``, ``id``, ``schema``; the
        ordering key is the record's ``session_id``.

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
                **record.pubsub_attributes(),
            )
            with self._lock:
                self._pending.add(future)
            future.add_done_callback(lambda done, key=record.session_id: self._on_done(done, key))
            queued.append(future)
        return queued

    def _on_done(self, future: futures.Future, ordering_key: str) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if error is not None:
            log.warning("Publishing to %s failed (%s); the record stays on disk.", self.topic_path, error)
            # An ordering key stops after a failure until it is resumed.
            self.client.resume_publish(self.topic_path, ordering_key)

    def flush(self, timeout: float | None = 30.0) -> int:
        """Wait up to ``timeout`` seconds for pending publishes; returns how many are still pending."""
        with self._lock:
            pending = list(self._pending)
        if pending:
            futures.wait(pending, timeout=timeout)
        with self._lock:
            return len(self._pending)

    def close(self, timeout: float | None = 30.0) -> int:
        """Flush, then stop the client's background threads; returns how many never finished."""
        left = self.flush(timeout)
        if self._client is not None and not left:
            self._client.stop()
            self._client = None
            self._topic_ready = False
        return left
