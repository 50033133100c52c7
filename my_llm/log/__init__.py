"""The log and its delivery: the append-only JSONL store per namespace, the outbox of what Pub/Sub has not
acknowledged, the publisher, and replay.

The face of ``my_llm.log``: import from here, not from its modules. Data flows one way:
record -> store (disk first) -> publisher (Pub/Sub) -> outbox (acknowledgements) -> replay.
"""

from my_llm.log.outbox import Outbox
from my_llm.log.publisher import Publisher
from my_llm.log.replay import ReplayReport, replay_namespace
from my_llm.log.store import LOG_NAME, MessageStore, list_namespaces, read_records

__all__ = [
    "LOG_NAME",
    "MessageStore",
    "Outbox",
    "Publisher",
    "ReplayReport",
    "list_namespaces",
    "read_records",
    "replay_namespace",
]
