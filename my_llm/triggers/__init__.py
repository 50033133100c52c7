"""Triggers on what the model says: ``SQL:`` runs a read-only query, ``EMAIL:`` sends a mail, once per
message, off unless configured. The face of ``my_llm.triggers``: import from here, not from its modules.

Pieces, lowest first: ``patterns`` (where a trigger's text is) -> ``base`` (the :class:`Trigger` protocol,
:class:`Match`, :class:`Outcome`, :class:`Refusal`) -> ``config`` (the TOML file, errors with file, line,
key) -> ``sql_check`` + ``databases`` + ``sql``, ``mail`` (the built-in kinds) -> ``registry`` (kinds,
entry point group ``my_llm.triggers``) -> ``ledger`` (handled matches, log cursors) -> ``audit`` (the tool
record of an outcome) -> ``runner`` (exactly-once handling) -> ``writer``, ``sources`` (logs on disk,
Pub/Sub).
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
    from my_llm.triggers.audit import tool_record
    from my_llm.triggers.base import (
        DECISIONS,
        ERROR,
        FIRED,
        REFUSED,
        UNKNOWN,
        Common,
        Context,
        Match,
        Outcome,
        PatternTrigger,
        Refusal,
        Trigger,
        TriggerConfigError,
        TriggerError,
    )
    from my_llm.triggers.config import TriggerConfig, TriggerTable
    from my_llm.triggers.databases import QueryResult, open_database
    from my_llm.triggers.ledger import Entry, Ledger
    from my_llm.triggers.mail import AllowList, EmailTrigger, Mail, parse_mail
    from my_llm.triggers.patterns import Pattern
    from my_llm.triggers.registry import ENTRY_POINT_GROUP, Registry, builtin_kinds, load_config
    from my_llm.triggers.runner import Batch, Handled, RecordWriter, Runner, RunReport
    from my_llm.triggers.sources import LogSource, PubSubSource, source_kind
    from my_llm.triggers.sql import SqlTrigger
    from my_llm.triggers.sql_check import check_statement
    from my_llm.triggers.writer import HistoryWriter

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "AllowList": "my_llm.triggers.mail",
    "Batch": "my_llm.triggers.runner",
    "Common": "my_llm.triggers.base",
    "Context": "my_llm.triggers.base",
    "DECISIONS": "my_llm.triggers.base",
    "ENTRY_POINT_GROUP": "my_llm.triggers.registry",
    "ERROR": "my_llm.triggers.base",
    "EmailTrigger": "my_llm.triggers.mail",
    "Entry": "my_llm.triggers.ledger",
    "FIRED": "my_llm.triggers.base",
    "Handled": "my_llm.triggers.runner",
    "HistoryWriter": "my_llm.triggers.writer",
    "Ledger": "my_llm.triggers.ledger",
    "LogSource": "my_llm.triggers.sources",
    "Mail": "my_llm.triggers.mail",
    "Match": "my_llm.triggers.base",
    "Outcome": "my_llm.triggers.base",
    "Pattern": "my_llm.triggers.patterns",
    "PatternTrigger": "my_llm.triggers.base",
    "PubSubSource": "my_llm.triggers.sources",
    "QueryResult": "my_llm.triggers.databases",
    "REFUSED": "my_llm.triggers.base",
    "RecordWriter": "my_llm.triggers.runner",
    "Refusal": "my_llm.triggers.base",
    "Registry": "my_llm.triggers.registry",
    "RunReport": "my_llm.triggers.runner",
    "Runner": "my_llm.triggers.runner",
    "SqlTrigger": "my_llm.triggers.sql",
    "Trigger": "my_llm.triggers.base",
    "TriggerConfig": "my_llm.triggers.config",
    "TriggerConfigError": "my_llm.triggers.base",
    "TriggerError": "my_llm.triggers.base",
    "TriggerTable": "my_llm.triggers.config",
    "UNKNOWN": "my_llm.triggers.base",
    "builtin_kinds": "my_llm.triggers.registry",
    "check_statement": "my_llm.triggers.sql_check",
    "load_config": "my_llm.triggers.registry",
    "open_database": "my_llm.triggers.databases",
    "parse_mail": "my_llm.triggers.mail",
    "source_kind": "my_llm.triggers.sources",
    "tool_record": "my_llm.triggers.audit",
}

__all__ = [
    "DECISIONS",
    "ENTRY_POINT_GROUP",
    "ERROR",
    "FIRED",
    "REFUSED",
    "UNKNOWN",
    "AllowList",
    "Batch",
    "Common",
    "Context",
    "EmailTrigger",
    "Entry",
    "Handled",
    "HistoryWriter",
    "Ledger",
    "LogSource",
    "Mail",
    "Match",
    "Outcome",
    "Pattern",
    "PatternTrigger",
    "PubSubSource",
    "QueryResult",
    "RecordWriter",
    "Refusal",
    "Registry",
    "RunReport",
    "Runner",
    "SqlTrigger",
    "Trigger",
    "TriggerConfig",
    "TriggerConfigError",
    "TriggerError",
    "TriggerTable",
    "builtin_kinds",
    "check_statement",
    "load_config",
    "open_database",
    "parse_mail",
    "source_kind",
    "tool_record",
]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
