"""Pub/Sub publishing: one long-lived client per topic, non-blocking, flushed on demand.

As the googleapis/python-pubsub samples do: ``publish`` returns at once (batching does the rest),
``flush``/``close`` wait for the acknowledgements, and the ordering key of a record is its session, so a
conversation arrives in order. The batching is our own (:mod:`my_llm.log.sender`): one request in flight
per topic, sent by the generated (GAPIC) client's ``Publish`` call, which keeps every ordering key in order
at a fraction of the high-level client's per-message cost.

The emulator is the one named by ``Settings.pubsub_emulator_host`` (handed in as ``emulator_host``): the
client gets an insecure gRPC channel to it, as the client itself does for ``PUBSUB_EMULATOR_HOST``, so the
setting works without the environment variable.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence

from my_llm.errors import MyLLMError, PublishError
from my_llm.log.sender import BatchSender
from my_llm.record import Record

log = logging.getLogger(__name__)

# Calls that set up the topic must fail fast when the server is down: the caller's records are
# already on disk, and a chat must not hang on analytics.
ADMIN_TIMEOUT_S = 5.0
# After a failed topic set-up, later adds skip Pub/Sub (disk only) for this long instead of each
# waiting ADMIN_TIMEOUT_S again.
RETRY_AFTER_S = 60.0
# A publish request that Pub/Sub has not acknowledged within this time (transient errors are retried
# with backoff until then) fails; its records stay in the outbox for `my-llm replay`.
PUBLISH_TIMEOUT_S = 60.0
# Flow control: past this many unsettled messages a publish fails at once (its records stay pending)
# instead of queueing without bound.
FLOW_MESSAGES = 100_000


class Publisher:
    """Publishes records to ``projects/<project_id>/topics/<topic_id>``, creating the topic if missing.

    Args:
        project_id: Google Cloud project (any id works against the emulator).
        topic_id: topic name, e.g. ``my-llm-debugger``.
        client: a generated ``google.pubsub_v1.PublisherClient`` (GAPIC: ``get_topic``, ``create_topic``,
            ``publish(request=...)``); one is built on first use when not given.
        emulator_host: ``host:port`` of a Pub/Sub emulator to use instead of Google Cloud (None: the
            client's own choice, which follows ``PUBSUB_EMULATOR_HOST``).
    """

    def __init__(self, project_id: str, topic_id: str, client=None, emulator_host: str | None = None) -> None:
        self.project_id = project_id
        self.topic_id = topic_id
        self.emulator_host = emulator_host
        self._client = client
        self._topic_ready = False
        self._retry_at = 0.0
        self._failing = False
        # Messages queued or in flight whose acknowledgement has not been handed to on_acked yet.
        self._outstanding = 0
        self._settled = threading.Condition()
        self._sender: BatchSender | None = None

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
            from google.pubsub_v1.services.publisher import PublisherClient

            try:
                self._client = PublisherClient(**self._endpoint())
            except Exception as error:  # google.auth raises several unrelated types here
                raise PublishError(
                    f"Could not create a Pub/Sub client for project {self.project_id!r}: {error}. "
                    "Run `gcloud auth application-default login`, or set PUBSUB_EMULATOR_HOST."
                ) from error
        return self._client

    def _endpoint(self) -> dict:
        """The client's keyword arguments for ``emulator_host``: an insecure channel to it, no credentials."""
        if not self.emulator_host:
            return {}
        import grpc
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        channel = grpc.insecure_channel(self.emulator_host)
        return {
            "transport": PublisherGrpcTransport(channel=channel, host=self.emulator_host),
            "client_options": {"api_endpoint": self.emulator_host},
        }

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
        self,
        records: Sequence[Record],
        on_acked: Callable[[list[str]], None] | None = None,
        payloads: Sequence[bytes] | None = None,
    ) -> int:
        """Queue records for publishing without waiting; returns how many were queued.

        Data is the record's JSON (``payloads[i]`` when given: the bytes already written to the log,
        without the newline); attributes are ``namespace``, ``role``, ``id``, ``schema``; the ordering
        key is the record's ``session_id``. ``on_acked`` is called (from the sending thread) with the ids
        of each request's records once Pub/Sub acknowledged them. A failed request is logged once per
        outage; the caller's outbox still holds its records.

        Raises:
            PublishError: the topic could not be set up.
        """
        self.ensure_topic()
        if payloads is None:
            payloads = [record.to_json().encode("utf-8") for record in records]
        message = self._message_class
        pairs = [
            (
                message(data=data, attributes=record.pubsub_attributes(), ordering_key=record.session_id),
                (record.id, on_acked),
            )
            for record, data in zip(records, payloads, strict=True)
        ]
        with self._settled:
            if self._outstanding + len(pairs) > FLOW_MESSAGES:
                overflow = PublishError(f"More than {FLOW_MESSAGES} messages wait for {self.topic_path}.")
                self._report(overflow)
                return 0
            self._outstanding += len(pairs)
        if self._sender is None:
            self._sender = BatchSender(self._send, self._on_settled, self._send_errors)
        self._sender.put(pairs)
        return len(pairs)

    @functools.cached_property
    def _message_class(self):
        from google.pubsub_v1.types import PubsubMessage

        return PubsubMessage.pb()  # the raw protobuf class: no proto-plus wrapper per message

    @functools.cached_property
    def _send_errors(self) -> tuple[type[BaseException], ...]:
        from google.api_core import exceptions

        return (exceptions.GoogleAPICallError, exceptions.RetryError, PublishError, ValueError)

    def _send(self, messages: list) -> None:
        """Publish one request (from the sending thread), retrying transient errors for up to 60 s."""
        from google.pubsub_v1.types import PublishRequest

        request = PublishRequest.wrap(PublishRequest.pb()(topic=self.topic_path, messages=messages))
        self.client.publish(request=request, retry=self._publish_retry, timeout=PUBLISH_TIMEOUT_S)

    def _on_settled(self, items: list, error: BaseException | None) -> None:
        try:
            if error is None:
                self._failing = False
                by_callback: dict = {}
                for record_id, on_acked in items:
                    if on_acked is not None:
                        by_callback.setdefault(on_acked, []).append(record_id)
                for on_acked, ids in by_callback.items():
                    try:
                        on_acked(ids)
                    except (MyLLMError, OSError) as failure:  # not recorded: the records stay pending for replay
                        self._report(failure)
            else:
                self._report(error)
        finally:
            with self._settled:  # last, so flush() returns only after the acknowledgements were handed on
                self._outstanding -= len(items)
                if not self._outstanding:
                    self._settled.notify_all()

    def _report(self, error: BaseException) -> None:
        if not self._failing:
            log.warning(
                "Publishing to %s failed (%s); unacknowledged records stay in the outbox.", self.topic_path, error
            )
        self._failing = True

    def flush(self, timeout: float | None = 30.0) -> int:
        """Wait up to ``timeout`` seconds (None: no limit) until every publish has settled and its
        acknowledgement was handed to ``on_acked``; returns how many are still pending."""
        with self._settled:
            self._settled.wait_for(lambda: not self._outstanding, timeout=timeout)
            return self._outstanding

    def close(self, timeout: float | None = 30.0) -> int:
        """Flush for up to ``timeout`` seconds, then stop; returns how many publishes never finished.

        Messages still queued are abandoned (their records stay in the outbox for ``my-llm replay``); a
        request in flight settles on its own, within PUBLISH_TIMEOUT_S, on a daemon thread. A later
        publish starts a new sender and client.
        """
        left = self.flush(timeout)
        sender, self._sender = self._sender, None
        client = self._client
        if sender is not None:
            abandoned = sender.abandon()
            if abandoned:
                self._on_settled(abandoned, PublishError(f"closed with {len(abandoned)} message(s) unsent"))
        if client is not None and not left:
            client.transport.close()
            self._client, self._topic_ready = None, False
        return left
