"""The log and its delivery: the append-only JSONL store per namespace, its SQLite index, the outbox of
what Pub/Sub has not acknowledged, the publisher, and the delivery that wires them (and replays).

The face of ``my_llm.log``: import from here, not from its modules. Data flows one way:
record -> store (disk first) -> publisher (Pub/Sub) -> outbox (acknowledgements) -> replay, all owned
by one :class:`Delivery` per namespace; reads that must not cost the whole log go through :class:`LogIndex`.
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
    from my_llm.log.delivery import Delivery, ReplayReport
    from my_llm.log.destination import Destination, recorded_destination
    from my_llm.log.index import Entry, LogIndex
    from my_llm.log.index_build import is_turn
    from my_llm.log.outbox import Outbox
    from my_llm.log.publisher import Publisher
    from my_llm.log.purge import PurgeReport, purge_sessions
    from my_llm.log.replay import replay_namespace
    from my_llm.log.store import LOG_NAME, MessageStore, encode, list_namespaces, read_records

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "Delivery": "my_llm.log.delivery",
    "Destination": "my_llm.log.destination",
    "Entry": "my_llm.log.index",
    "LOG_NAME": "my_llm.log.store",
    "LogIndex": "my_llm.log.index",
    "MessageStore": "my_llm.log.store",
    "Outbox": "my_llm.log.outbox",
    "Publisher": "my_llm.log.publisher",
    "PurgeReport": "my_llm.log.purge",
    "ReplayReport": "my_llm.log.delivery",
    "encode": "my_llm.log.store",
    "is_turn": "my_llm.log.index_build",
    "list_namespaces": "my_llm.log.store",
    "purge_sessions": "my_llm.log.purge",
    "read_records": "my_llm.log.store",
    "recorded_destination": "my_llm.log.destination",
    "replay_namespace": "my_llm.log.replay",
}

__all__ = [
    "LOG_NAME",
    "Delivery",
    "Destination",
    "Entry",
    "LogIndex",
    "MessageStore",
    "Outbox",
    "Publisher",
    "PurgeReport",
    "ReplayReport",
    "encode",
    "is_turn",
    "list_namespaces",
    "purge_sessions",
    "read_records",
    "recorded_destination",
    "replay_namespace",
]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
