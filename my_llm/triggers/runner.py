"""The runner: records in, matches handled once each, outcomes logged, then the delivery acknowledged.

Exactly-once effects on top of at-least-once delivery. For each match, in order (each step durable before
the next; see :mod:`my_llm.triggers.ledger`):

1. the ledger row of ``(record id, trigger, index)``: ``recorded`` -> skip; ``decided`` -> log the stored
   tool record if the log does not hold it yet, mark it ``recorded``, skip the effect;
2. ``check`` (no effects; a refusal is claimed and recorded like an outcome);
3. claim (``attempting``), 4. ``fire`` (the effect), 5. ``decided`` with the prepared tool record,
6. the tool record appended to the session's log, 7. ``recorded``, 8. ``on_handled``, then the ack.

What a runner killed at each point leaves, and what the next run does:

- before 3: nothing happened; the message comes back and is handled.
- between 3 and 5 (the effect may or may not have happened): an **idempotent** trigger (``sql``, ``email``
  writing ``.eml`` files) fires again: a read-only query twice, or the same file rewritten with the same
  bytes. A **non-idempotent** one (``email`` through SMTP) is *not* repeated: its outcome is recorded as
  ``unknown`` ("a runner stopped after starting this effect ..."), so a mail is sent at most once and a
  mail whose send was interrupted is reported, not resent. This is the one window that remains: a mail
  the server took just before the kill is reported ``unknown`` rather than ``fired``.
- between 5 and 7: the stored tool record is appended if the log does not hold it (found by id), so it is
  logged exactly once.
- between 7 and the ack: the message comes back, the ledger says ``recorded``: acknowledged, nothing fired.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from my_llm.record import Record
from my_llm.triggers.audit import tool_record
from my_llm.triggers.base import (
    ERROR,
    HANDLED_BEFORE,
    REFUSED,
    UNKNOWN,
    WOULD_FIRE,
    WOULD_REFUSE,
    Context,
    Match,
    Outcome,
    Refusal,
    Trigger,
    TriggerError,
)
from my_llm.triggers.ledger import ATTEMPTING, DECIDED, RECORDED, Entry, Ledger

log = logging.getLogger(__name__)


class RecordWriter(Protocol):
    """Where tool records go: ``write`` appends one to its namespace's log (then publishes it);
    ``contains`` says whether the log holds a record id already (used only after a crash)."""

    def write(self, record: Record) -> None: ...

    def contains(self, record: Record) -> bool: ...


@dataclass(frozen=True)
class Handled:
    """One match as the runner left it: ``decision`` (see :data:`my_llm.triggers.base.DECISIONS`), ``why``,
    and ``tool_record_id`` (None in a dry run and for matches handled before)."""

    match: Match
    kind: str
    decision: str
    why: str
    tool_record_id: str | None = None


@dataclass
class Batch:
    """Records delivered together: ``records`` (None for a message that is not a record), ``ack(positions)``
    (acknowledge those, after their matches are recorded) and ``commit()`` (after the whole batch)."""

    records: list[Record | None]
    ack: Callable[[list[int]], None]
    commit: Callable[[], None]


@dataclass
class RunReport:
    """Totals of a run: records ``scanned``, ``invalid`` messages, ``matched`` (matches seen) and
    ``decisions`` (``Counter`` of decision -> matches)."""

    scanned: int = 0
    invalid: int = 0
    matched: int = 0
    decisions: Counter = field(default_factory=Counter)


class Runner:
    """Handles records with ``triggers`` (see the module docstring for the order and the windows).

    Args:
        triggers: the configured triggers; a record is offered to those that watch its namespace.
        ledger: the durable ledger (:meth:`Ledger.for_dry_run` for a dry run).
        writer: where tool records go; None only in a dry run.
        dry_run: check only; report ``would_fire``/``would_refuse``; write and acknowledge nothing.
        on_handled: called with each :class:`Handled`, after the ledger and before the acknowledgement.
        clock: seconds since the epoch (for ages, caps and the ledger).
    """

    def __init__(
        self,
        triggers: Sequence[Trigger],
        ledger: Ledger,
        writer: RecordWriter | None,
        *,
        dry_run: bool = False,
        on_handled: Callable[[Handled], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if writer is None and not dry_run:
            raise ValueError("a runner that is not a dry run needs a writer for its tool records")
        self.ledger, self.writer, self.dry_run, self.clock = ledger, writer, dry_run, clock
        self.on_handled = on_handled or (lambda handled: None)
        self.by_namespace: dict[str, list[Trigger]] = {}
        for trigger in triggers:
            for namespace in trigger.namespaces:
                self.by_namespace.setdefault(namespace, []).append(trigger)

    def run(self, batches: Iterable[Batch], report: RunReport | None = None) -> RunReport:
        """Handle every batch ``batches`` yields (a source's :meth:`batches`); returns the totals.

        Raises:
            StoreError: the ledger or a log could not be written (the batch is not acknowledged).
        """
        report = report or RunReport()
        for batch in batches:
            self.handle_batch(batch, report)
        return report

    def handle_batch(self, batch: Batch, report: RunReport) -> None:
        """Acknowledge records without matches at once, then handle and acknowledge the others one by one."""
        plain: list[int] = []
        matched: list[tuple[int, list[tuple[Trigger, Match]]]] = []
        for position, record in enumerate(batch.records):
            report.scanned += 1
            if record is None:
                report.invalid += 1
                plain.append(position)
                continue
            triggers = self.by_namespace.get(record.namespace, ())
            found = [(trigger, match) for trigger in triggers for match in trigger.matches(record)]
            if found:
                matched.append((position, found))
            else:
                plain.append(position)
        if not self.dry_run and plain:
            batch.ack(plain)
        for position, found in matched:
            for trigger, match in found:
                handled = self.handle_match(trigger, match)
                report.matched += 1
                report.decisions[handled.decision] += 1
            if not self.dry_run:
                batch.ack([position])
        if not self.dry_run:
            batch.commit()

    def handle_match(self, trigger: Trigger, match: Match) -> Handled:
        """Handle one match exactly once (see the module docstring). Returns what was decided."""
        entry = self.ledger.get(match.key)
        if entry is not None and entry.state == RECORDED:
            return self._report(Handled(match, trigger.kind, HANDLED_BEFORE, f"{entry.decision}: {entry.why}"))
        if self.dry_run:
            return self._dry_run(trigger, match, entry)
        if entry is not None and entry.state == DECIDED:
            return self._finish_decided(trigger, match, entry)
        context = self._context()
        if entry is None:
            refusal = _refusal(trigger, match, context)  # before the claim: the hourly cap must not count it
            if not self.ledger.claim(match, trigger.kind, context.now):
                return self._report(Handled(match, trigger.kind, HANDLED_BEFORE, "claimed by another runner"))
            if refusal is not None:
                return self._finish(trigger, match, Outcome(REFUSED, str(refusal), str(refusal)))
        elif entry.state == ATTEMPTING and not trigger.idempotent:
            why = "a runner stopped after starting this effect and before recording its outcome; not repeated"
            return self._finish(trigger, match, Outcome(UNKNOWN, why, why))
        return self._finish(trigger, match, self._fire(trigger, match, context))

    def _fire(self, trigger: Trigger, match: Match, context: Context) -> Outcome:
        try:
            return trigger.fire(match, context)
        except Refusal as refusal:
            return Outcome(REFUSED, str(refusal), str(refusal))
        except TriggerError as error:
            return Outcome(ERROR, str(error), str(error))
        except Exception as error:  # a plugin's bug: recorded as this match's error outcome (audited), not lost
            log.exception("Trigger %r failed on record %s", trigger.name, match.record.id)
            why = f"{type(error).__name__}: {error}"
            return Outcome(ERROR, why, why)

    def _finish(self, trigger: Trigger, match: Match, outcome: Outcome) -> Handled:
        assert self.writer is not None
        record = tool_record(match, trigger, outcome)
        self.ledger.decide(match.key, outcome.decision, outcome.why, record.to_json(), self.clock())
        self.writer.write(record)
        self.ledger.recorded(match.key)
        return self._report(Handled(match, trigger.kind, outcome.decision, outcome.why, record.id))

    def _finish_decided(self, trigger: Trigger, match: Match, entry: Entry) -> Handled:
        assert self.writer is not None and entry.tool_record is not None
        record = Record.from_json(entry.tool_record)
        if not self.writer.contains(record):
            self.writer.write(record)
        self.ledger.recorded(match.key)
        return self._report(Handled(match, trigger.kind, entry.decision or ERROR, entry.why or "", record.id))

    def _dry_run(self, trigger: Trigger, match: Match, entry: Entry | None) -> Handled:
        if entry is not None:
            return self._report(Handled(match, trigger.kind, HANDLED_BEFORE, f"{entry.state} in the ledger"))
        refusal = _refusal(trigger, match, self._context())
        if refusal is not None:
            return self._report(Handled(match, trigger.kind, WOULD_REFUSE, str(refusal)))
        return self._report(Handled(match, trigger.kind, WOULD_FIRE, trigger.describe()))

    def _context(self) -> Context:
        return Context(self.clock(), lambda name, seconds: self.ledger.recent_firings(name, self.clock() - seconds))

    def _report(self, handled: Handled) -> Handled:
        self.on_handled(handled)
        return handled


def _refusal(trigger: Trigger, match: Match, context: Context) -> Refusal | None:
    """The trigger's refusal of ``match`` (from :meth:`Trigger.check`), or None when it would fire."""
    try:
        trigger.check(match, context)
    except Refusal as refusal:
        return refusal
    return None
