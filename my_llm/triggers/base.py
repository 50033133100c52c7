"""The trigger protocol and what every trigger shares: matches, outcomes, refusals, the common options.

A **trigger** is a named handler with a pattern it looks for in AI records. The runner asks it for its
:class:`Match` es in a record, then (per match) :meth:`Trigger.check` (a decision without effects, which
``--dry-run`` stops at) and :meth:`Trigger.fire` (the effect). Either may raise :class:`Refusal`; what
``fire`` returns is an :class:`Outcome`, logged back into the session as a ``tool`` record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from my_llm.errors import ConfigError, MyLLMError
from my_llm.record import Record, parse_time
from my_llm.triggers.patterns import Pattern

# What the runner records per match (the ledger's and the audit record's `decision`).
FIRED, REFUSED, ERROR, UNKNOWN = "fired", "refused", "error", "unknown"
WOULD_FIRE, WOULD_REFUSE, HANDLED_BEFORE = "would_fire", "would_refuse", "handled_before"
DECISIONS = (FIRED, REFUSED, ERROR, UNKNOWN, WOULD_FIRE, WOULD_REFUSE, HANDLED_BEFORE)


class TriggerError(MyLLMError):
    """A trigger could not do what a match asked (a database that cannot be opened, a mail server down)."""


class TriggerConfigError(TriggerError, ConfigError):
    """A triggers TOML file that cannot be used; the message names the file, line and key."""


class Refusal(TriggerError):
    """A trigger declines a match on purpose (not read-only SQL, a recipient not allowed, a cap reached).

    ``str(refusal)`` is the reason, written to the audit record and shown to the model.
    """


@dataclass(frozen=True)
class Match:
    """One occurrence of a trigger's pattern in an AI record.

    Attributes:
        record: the triggering record.
        trigger: the trigger's name (unique in a config).
        index: 0-based position among this trigger's matches in the record.
        body: the text after the prefix (the SQL, the mail template...).
    """

    record: Record
    trigger: str
    index: int
    body: str

    @property
    def key(self) -> tuple[str, str, int]:
        """``(record id, trigger name, index)``: what the ledger de-duplicates on."""
        return self.record.id, self.trigger, self.index

    @property
    def tool_call_id(self) -> str:
        """A stable id for the ``ToolMessage`` of this match's outcome, derived from the triggering record id."""
        return f"trigger-{self.record.id}-{self.trigger}-{self.index}"


@dataclass(frozen=True)
class Outcome:
    """What a match led to.

    Attributes:
        decision: one of :data:`DECISIONS`.
        why: one line for the audit (``fired``: what was done; ``refused``/``error``: the reason).
        content: what the tool record says, for the conversation (a result table, "refused: ...").
        details: small JSON-able facts for the audit record (rows, elapsed_ms, recipients, file...).
    """

    decision: str
    why: str
    content: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What a trigger may ask the runner while deciding.

    Attributes:
        now: the current time, seconds since the epoch.
        recent_firings: ``recent_firings(trigger_name, seconds)`` is how many matches of that trigger fired
            (or may have: attempted, outcome unknown) in the last ``seconds``, from the ledger.
    """

    now: float
    recent_firings: Callable[[str, float], int]


@runtime_checkable
class Trigger(Protocol):
    """The extension point. Built-ins: ``sql`` and ``email``; plugins through the entry point group
    ``my_llm.triggers`` (see :mod:`my_llm.triggers.registry`). Subclassing :class:`PatternTrigger` gives
    the common options and matching for free.

    Attributes:
        name: unique in a config; part of the ledger key.
        kind: the config's ``kind``.
        namespaces: the namespaces this trigger watches (nothing runs elsewhere).
        idempotent: True when running the effect twice is harmless (a read-only query, a file overwritten
            with the same bytes): after a crash between the effect and its record, the runner fires it
            again instead of reporting the outcome as unknown.
    """

    name: str
    kind: str
    namespaces: frozenset[str]
    idempotent: bool

    def matches(self, record: Record) -> list[Match]:
        """The matches in ``record`` (an empty list for records this trigger does not look at)."""

    def check(self, match: Match, context: Context) -> None:
        """Decide without effects; raise :class:`Refusal` to decline. ``--dry-run`` stops here."""

    def fire(self, match: Match, context: Context) -> Outcome:
        """Do the effect; raise :class:`Refusal` to decline, :class:`TriggerError` when it failed."""

    def describe(self) -> str:
        """One line for ``my-llm triggers list``: what and where (a database, a mail server, a folder)."""


@dataclass(frozen=True)
class Common:
    """The options every :class:`PatternTrigger` takes from its ``[[trigger]]`` table.

    Attributes:
        name: ``name`` (default ``<kind>`` or ``<kind>-<n>`` for the n-th of that kind).
        kind: ``kind``.
        namespaces: ``namespaces`` (required, at least one).
        pattern: from ``prefix`` (default per kind) or ``pattern`` (a regex with a group ``body``).
        sources: record sources that may fire (``sources``, default ``["live"]``: never imports).
        max_age_s: older records are refused (``max_age_s``, default 86,400: a replay of old records
            does not fire what was never handled).
        max_per_message: matches of one record beyond this are refused (default 3).
    """

    name: str
    kind: str
    namespaces: frozenset[str]
    pattern: Pattern
    sources: frozenset[str] = frozenset({"live"})
    max_age_s: float = 86_400.0
    max_per_message: int = 3


class PatternTrigger:
    """Base for triggers found by a :class:`Pattern` in the text of AI records.

    Looks only at records whose role is ``ai``, whose ``source`` is allowed, and that are conversation
    turns (no ``metadata.task`` or ``metadata.event``: memory answers and tombstones never fire).
    Subclasses implement :meth:`check_body`, :meth:`fire` and :meth:`describe`.
    """

    idempotent = True

    def __init__(self, common: Common) -> None:
        self.common = common
        self.name, self.kind, self.namespaces = common.name, common.kind, common.namespaces

    def matches(self, record: Record) -> list[Match]:
        """See :meth:`Trigger.matches`."""
        if (
            record.role != "ai"
            or record.namespace not in self.namespaces
            or record.source not in self.common.sources
            or "task" in record.metadata
            or "event" in record.metadata
        ):
            return []
        return [
            Match(record, self.name, index, body) for index, body in enumerate(self.common.pattern.find(record.content))
        ]

    def check(self, match: Match, context: Context) -> None:
        """Refuse stale records and matches past ``max_per_message``, then :meth:`check_body`.

        Raises:
            Refusal: the reason.
        """
        if match.index >= self.common.max_per_message:
            raise Refusal(f"only the first {self.common.max_per_message} matches of a message fire (max_per_message)")
        try:
            age = context.now - parse_time(match.record.created_at).timestamp()
        except ValueError:
            raise Refusal(f"the record's created_at {match.record.created_at!r} is not a time") from None
        if age > self.common.max_age_s:
            raise Refusal(f"the record is {age / 3600:.1f} h old; max_age_s = {self.common.max_age_s:g}")
        self.check_body(match.body, context)

    def check_body(self, body: str, context: Context) -> None:
        """Kind-specific checks of ``body`` without effects; raise :class:`Refusal` to decline."""
        raise NotImplementedError

    def fire(self, match: Match, context: Context) -> Outcome:
        """See :meth:`Trigger.fire`."""
        raise NotImplementedError

    def describe(self) -> str:
        """See :meth:`Trigger.describe`."""
        raise NotImplementedError
