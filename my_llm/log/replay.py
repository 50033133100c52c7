"""Re-publish what Pub/Sub has not acknowledged, or a time range, so consumers that de-duplicate on
the ``id`` attribute end up with every record exactly once. A thin face over :class:`Delivery`."""

from __future__ import annotations

from datetime import datetime

from my_llm.config import Settings
from my_llm.log.delivery import Delivery, ReplayReport
from my_llm.log.publisher import Publisher
from my_llm.log.store import MessageStore


def replay_namespace(
    namespace: str,
    settings: Settings,
    since: datetime | None = None,
    timeout: float = 120.0,
    publisher: Publisher | None = None,
    topic: str | None = None,
) -> ReplayReport:
    """Publish the namespace's unacknowledged records (or, with ``since``, every record created at or
    after that aware datetime) and wait up to ``timeout`` seconds for acknowledgements.

    They go to ``topic`` when given (a topic id, or ``projects/P/topics/T``), else to the topic recorded
    when the namespace was first published, else to ``my-llm-<namespace>`` (see :meth:`Delivery.for_replay`).

    Raises:
        ConfigError: no Google Cloud project is configured, or publishing is turned off.
        PublishError: the topic could not be reached or created.
    """
    store = MessageStore(settings.message_history, namespace, settings.fsync)
    delivery = Delivery.for_replay(store, settings, topic=topic, publisher=publisher)
    try:
        return delivery.replay(since=since, timeout=timeout)
    finally:
        delivery.close(timeout=0)
