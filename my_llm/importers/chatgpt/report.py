"""What an import did: the :class:`ImportReport` an import returns (and an :class:`ExportError` carries)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        files: the export files read, in order.
        conversations: conversations read and parsed (those whose messages were all imported before too).
        messages_imported: records appended to the log.
        skipped: reason -> messages left out: ``already imported``, ``null message``, ``empty``, ``hidden``,
            ``system``, ``thoughts``, ``reasoning_recap``, ``user_editable_context``, ``bio`` (memory writes and
            their answers), ``copy of a message in another conversation``, ``unknown type <name>``,
            ``unknown role <name>``.
    """

    files: list[str] = field(default_factory=list)
    conversations: int = 0
    messages_imported: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def count_skipped(self, reasons: Counter[str]) -> None:
        for reason, count in reasons.items():
            if count:
                self.skipped[reason] = self.skipped.get(reason, 0) + count
