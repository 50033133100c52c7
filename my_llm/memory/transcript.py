"""How a record reads to a model and to BM25: one transcript line with its time and speaker."""

from __future__ import annotations

from my_llm.record import Record

SPEAKERS = {"human": "user", "ai": "assistant"}


def transcript_line(record: Record) -> str:
    """``[2026-11-21 10:00] user: text``: a record as the models and the BM25 index see it.

    The speaker is ``metadata.speaker`` when the record has one (an import's author name), else
    ``user`` / ``assistant`` for human / AI records, else the role.
    """
    speaker = record.metadata.get("speaker") or SPEAKERS.get(record.role, record.role)
    return f"[{record.created_at[:16].replace('T', ' ')}] {speaker}: {record.content}"
