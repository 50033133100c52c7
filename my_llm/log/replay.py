"""Re-publish what Pub/Sub has not acknowledged, or a time range, so consumers that de-duplicate on
the ``id`` attribute end up with every record exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from my_llm.config import Settings
from my_llm.errors import ConfigError
from my_llm.log.outbox import Outbox
from my_llm.log.publisher import Publisher
from my_llm.log.store import MessageStore
from my_llm.record import topic_id_for


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


def replay_namespace(
    namespace: str,
    settings: Settings,
    since: datetime | None = None,
    timeout: float = 120.0,
    publisher: Publisher | None = None,
) -> ReplayReport:
    """Publish the namespace's unacknowledged records (or, with ``since``, every record created at or
    after that aware datetime) and wait up to ``timeout`` seconds for acknowledgements.

    Records keep their ids, so a replayed record is a duplicate that consumers drop, never a new one.

    Raises:
        ConfigError: no Google Cloud project is configured.
        PublishError: the topic could not be reached or created.
    """
    if publisher is None:
        if not settings.google_cloud_project:
            raise ConfigError(
                "No Google Cloud project is configured, so there is nowhere to replay to. "
                "Set GOOGLE_CLOUD_PROJECT (or PUBSUB_EMULATOR_HOST for the emulator)."
            )
        publisher = Publisher(settings.google_cloud_project, topic_id_for(namespace))
    outbox = Outbox(MessageStore(settings.message_history, namespace, settings.fsync))
    records = outbox.since(since) if since is not None else outbox.pending()
    acknowledged: list[str] = []

    def on_acked(ids: list[str]) -> None:
        acknowledged.extend(ids)  # atomic under the GIL: client threads may call this concurrently
        outbox.mark_acked(ids)

    try:
        if records:
            publisher.publish(records, on_acked=on_acked)
            publisher.flush(timeout)
    finally:
        publisher.close(timeout=0)
        outbox.close()
    return ReplayReport(namespace, publisher.topic_path, len(records), len(set(acknowledged)))
