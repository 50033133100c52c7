"""Delivery: one object per namespace that owns append -> publish -> acknowledge -> pending -> replay.

The chat history and ``my-llm replay`` both go through it, so the store, index, outbox and publisher
are wired in one place::

    delivery = Delivery.for_history(store, settings)        # or Delivery.for_replay(store, settings)
    delivery.append(records)    # disk first (one locked write), then a non-blocking publish
    delivery.flush()            # wait for Pub/Sub, write the acknowledgements
    delivery.pending()          # what Pub/Sub has not acknowledged (from the index: cost ~ what is pending)
    delivery.replay()           # send it again to the namespace's recorded topic
    delivery.close()

Records keep their ids, so a record sent twice is a duplicate consumers drop (they de-duplicate on the
``id`` attribute), never a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from my_llm.config import Settings
from my_llm.errors import ConfigError, PublishError
from my_llm.log.destination import (
    Destination,
    record_destination,
    recorded_destination,
    say_gcloud_project,
    warn_other_topic,
)
from my_llm.log.index import LogIndex
from my_llm.log.outbox import Outbox
from my_llm.log.publisher import Publisher
from my_llm.log.store import MessageStore, encode
from my_llm.record import Record, format_time, topic_id_for

log = logging.getLogger(__name__)

REPLAY_CHUNK = 5000


@dataclass(frozen=True)
class ReplayReport:
    """What one namespace's replay did: ``candidates`` were sent, ``acknowledged`` came back."""

    namespace: str
    topic_path: str
    candidates: int
    acknowledged: int

    @property
    def failed(self) -> int:
        return self.candidates - self.acknowledged


class Delivery:
    """Append, publish, acknowledge and replay the records of one namespace.

    Args:
        store: the namespace's log.
        publisher: where to publish; None means disk only (everything stays pending).
        index: the namespace's log index (built from ``store`` when None).

    Build one with :meth:`for_history` or :meth:`for_replay`, which pick the publisher from settings and
    the namespace's recorded destination (:mod:`my_llm.log.destination`).
    """

    def __init__(self, store: MessageStore, publisher: Publisher | None = None, index: LogIndex | None = None) -> None:
        self.store = store
        self.index = index or LogIndex(store)
        self.outbox = Outbox(self.index)
        self.publisher = publisher
        self._in_outage = False  # warn once per Pub/Sub outage, not once per message
        self._recorded = False

    @classmethod
    def for_history(
        cls,
        store: MessageStore,
        settings: Settings,
        project_id: str | None = None,
        topic_id: str | None = None,
        publisher: Publisher | None = None,
    ) -> Delivery:
        """The delivery of a live history: to ``publisher``, else to ``topic_id`` (default
        ``my-llm-<namespace>``) in ``project_id`` (default: the settings' project); disk only when there is
        no project or ``settings.publish`` is off.

        Says once when the namespace's recorded topic is another one (replay goes there), and once when
        the project comes from gcloud's configuration rather than an explicit setting.
        """
        project = project_id or settings.google_cloud_project
        if publisher is None and project and settings.publish:
            topic = topic_id or topic_id_for(store.namespace)
            publisher = Publisher(project, topic, emulator_host=settings.pubsub_emulator_host)
            if not project_id and settings.project_source == "gcloud":
                say_gcloud_project(store.namespace, publisher.topic_path)
        if publisher is not None:
            recorded = recorded_destination(store.folder)
            if recorded is not None and recorded.topic_path != publisher.topic_path:
                warn_other_topic(store.namespace, recorded.topic_path, publisher.topic_path)
        return cls(store, publisher)

    @classmethod
    def for_replay(
        cls, store: MessageStore, settings: Settings, topic: str | None = None, publisher: Publisher | None = None
    ) -> Delivery:
        """The delivery ``my-llm replay`` uses: to ``topic`` when given (a topic id in the recorded or
        configured project, or ``projects/P/topics/T``), else to the namespace's recorded destination, else
        to ``my-llm-<namespace>`` in the settings' project.

        Raises:
            ConfigError: publishing is turned off, or there is no project to send to.
        """
        if publisher is None:
            if not settings.publish:
                raise ConfigError("Publishing is turned off (MY_LLM_PUBLISH=off): unset it to replay.")
            recorded = recorded_destination(store.folder)
            project = recorded.project_id if recorded else settings.google_cloud_project
            if topic:
                destination = Destination.parse(topic, project)
            elif recorded:
                destination = recorded
            elif project:
                destination = Destination(project, topic_id_for(store.namespace))
            else:
                raise ConfigError(
                    "No Google Cloud project is configured, so there is nowhere to replay to. "
                    "Set GOOGLE_CLOUD_PROJECT (or PUBSUB_EMULATOR_HOST for the emulator)."
                )
            publisher = Publisher(
                destination.project_id, destination.topic_id, emulator_host=settings.pubsub_emulator_host
            )
        return cls(store, publisher)

    @property
    def namespace(self) -> str:
        return self.store.namespace

    # -- the hot path ----------------------------------------------------------------------------

    def append(self, records: Sequence[Record]) -> None:
        """Write records to disk (one locked append), then queue them for Pub/Sub without waiting.

        Raises:
            StoreError: the disk write failed (nothing was published).
        """
        lines = [encode(record) for record in records]
        self.store.append_encoded(lines)
        if self.publisher is not None:
            self.publish(records, lines)

    def publish(self, records: Sequence[Record], payloads: Sequence[bytes] | None = None) -> int:
        """Queue records already on disk for Pub/Sub; returns how many were queued (0 during an outage:
        logged once per outage, never raised; the records stay pending)."""
        if self.publisher is None or not records:
            return 0
        try:
            self._record_destination()
            queued = self.publisher.publish(records, on_acked=self.outbox.mark_acked, payloads=payloads)
        except PublishError as error:
            if not self._in_outage:
                log.warning("%s Records stay safe in %s.", error, self.store.path)
            self._in_outage = True
            return 0
        self._in_outage = False
        return queued

    def _record_destination(self) -> None:
        """Record the publisher's topic as the namespace's destination unless one is (the first use wins)."""
        if not self._recorded:
            destination = Destination(self.publisher.project_id, self.publisher.topic_id)
            record_destination(self.store.folder, destination)
            self._recorded = True

    def archive(self, tombstone: Record | None = None) -> Path | None:
        """Move the live log to ``archive/`` with ``tombstone`` as its last line, then publish the
        tombstone; returns the archive's path (None when there was no log)."""
        archived = self.store.archive(tombstone)
        if archived is not None and tombstone is not None:
            self.publish([tombstone])
        return archived

    def flush(self, timeout: float | None = 30.0) -> int:
        """Wait up to ``timeout`` seconds for pending publishes and write their acknowledgements; returns
        how many publishes are still unsettled (0 without Pub/Sub)."""
        left = self.publisher.flush(timeout) if self.publisher is not None else 0
        self.outbox.write_acks()
        return left

    def close(self, timeout: float | None = 30.0) -> int:
        """Flush, stop the Pub/Sub client, write the acknowledgements and close the index; returns how many
        publishes never finished (their records stay pending for ``my-llm replay``)."""
        left = self.publisher.close(timeout) if self.publisher is not None else 0
        self.outbox.close()
        self.index.close()
        return left

    # -- what is pending, and replay ----------------------------------------------------------------

    def pending(self) -> list[Record]:
        """Records Pub/Sub has not acknowledged, archives first, in log order."""
        self.outbox.write_acks()
        return self.outbox.pending()

    def counts(self) -> dict[str, int]:
        """``{"live", "archived", "total", "pending"}`` record counts, from the index (no log is read)."""
        self.outbox.write_acks()
        return self.index.counts() | {"pending": self.outbox.pending_count()}

    def replay(self, since: datetime | None = None, timeout: float = 120.0) -> ReplayReport:
        """Publish what Pub/Sub has not acknowledged (or, with ``since``, every record created at or after
        that aware datetime) and wait up to ``timeout`` seconds per 5,000 records for acknowledgements.

        Raises:
            ConfigError: this delivery has no publisher.
            PublishError: the topic could not be reached or created.
        """
        if self.publisher is None:
            raise ConfigError("This namespace has no Pub/Sub destination configured: nothing to replay to.")
        entries = self.index.created_since(format_time(since)) if since else self.outbox.pending_entries()
        acknowledged: set[str] = set()

        def on_acked(ids: list[str]) -> None:
            acknowledged.update(ids)  # atomic under the GIL: client threads may call this concurrently
            self.outbox.mark_acked(ids)

        try:
            for start in range(0, len(entries), REPLAY_CHUNK):
                lines = [line for _, line in self.index.read(entries[start : start + REPLAY_CHUNK])]
                records = [Record.from_json(line) for line in lines]
                self._record_destination()
                self.publisher.publish(records, on_acked=on_acked, payloads=lines)
                self.publisher.flush(timeout)  # bounded memory and flow control: one chunk in flight
        finally:
            self.publisher.close(timeout=0)
            self.outbox.write_acks()
        return ReplayReport(self.namespace, self.publisher.topic_path, len(entries), len(acknowledged))
