"""How records read to a model, to BM25 and to the embedder.

:func:`transcript_line` is a record as the models see it (one line with its time and speaker).
:func:`memory_documents` is what the memory's vector store holds per record: the one function that
``save_vectorstore_memory``, ``question_memory`` (through :func:`my_llm.memory.sync_records`) and
``benchmarks/locomo.py`` use, so the benchmark measures what users get.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from my_llm.record import Record

SPEAKERS = {"human": "user", "ai": "assistant"}
CONTEXT_KEY = "context"  # metadata: the ids of the turns a document's BM25 text carries before its own
SPEAKER_KEY = "speaker"  # metadata: the turn's speaker (speaker_of), for HybridRetriever's speaker prior


def transcript_line(record: Record) -> str:
    """``[2026-11-21 10:00] user: text``: a record as the models and the BM25 index see it.

    The speaker is ``metadata.speaker`` when the record has one (an import's author name), else
    ``user`` / ``assistant`` for human / AI records, else the role.
    """
    return f"[{record.created_at[:16].replace('T', ' ')}] {speaker_of(record)}: {record.content}"


def speaker_of(record: Record) -> str:
    """``metadata.speaker``, else ``user`` / ``assistant`` for human / AI records, else the role."""
    return str(record.metadata.get("speaker") or SPEAKERS.get(record.role, record.role))


def _speaker_name(record: Record) -> str:
    """The record's own ``metadata.speaker`` (a person's name, as LoCoMo or a meeting import gives it), "" when
    it has none. The role's defaults ``user`` / ``assistant`` are not names: they are common words in questions
    ("how do I add a user?"), so a speaker prior on them would reward the wrong turns."""
    return str(record.metadata.get("speaker") or "").strip()


@dataclass(frozen=True)
class DocumentSettings:
    """What a memory document holds besides its own turn (a turn is ``speaker: content``).

    Attributes:
        turn_repeat: times the turn (and its date) is written in the BM25 text: a cheap field weight, so
            the turn's own words outweigh its neighbours'.
        bm25_before / bm25_after: turns of the same session before / after it added to the BM25 text
            (they often hold the question a turn answers, or the answer to a question it asks).
        embed_before: turns of the same session before it added to the embedded text, after the turn
            (the embedder reads at most 256 word pieces, so the turn comes first).
        date: whether the BM25 text carries the record's date (``8 May 2023``).
        context_ids: whether the metadata ``context`` names the turns the BM25 text carries before the
            turn: their record ids, nearest first, space-separated ("" when none), so that a search can
            credit a turn with its neighbours' matches (``HybridRetriever``'s ``context_weights``).
        speaker: whether the metadata ``speaker`` holds the turn's speaker when the record names one
            (``metadata.speaker``; not the defaults ``user`` / ``assistant``), so that a search can favour the
            turns of a speaker the question names (``HybridRetriever``'s ``speaker_key``).

    A document depends on the turns after it only through ``bm25_after``; with ``bm25_after = 0`` it is
    final when written, so saving after every turn stores exactly what saving once at the end would.
    """

    turn_repeat: int = 1
    bm25_before: int = 0
    bm25_after: int = 0
    embed_before: int = 0
    date: bool = False
    context_ids: bool = False
    speaker: bool = False

    def __post_init__(self) -> None:
        if self.turn_repeat < 1 or min(self.bm25_before, self.bm25_after, self.embed_before) < 0:
            raise ValueError(f"{self}: turn_repeat must be >= 1 and the neighbour counts >= 0.")


# Chosen on LoCoMo conversations 0-4 only (benchmarks/locomo.py has the tuning table): with MEMORY_FUSION,
# hybrid evidence recall@5 / @10 there 75.3 / 83.6, 73.5 / 80.1 on conversations 5-9 (held out), 74.4 / 81.9 on
# all ten (third round, with the speaker prior; before it 74.7 / 82.1, 70.5 / 78.5, 72.6 / 80.3).
MEMORY_DOCUMENTS = DocumentSettings(
    turn_repeat=3, bm25_before=2, bm25_after=0, embed_before=2, context_ids=True, date=True, speaker=True
)


@dataclass(frozen=True)
class MemoryDocument:
    """One record as the memory's vector store holds it.

    ``text`` is stored, returned by searches and BM25-indexed; ``embed_text`` is embedded; ``metadata``
    (str values) is what searches filter on: ``role``, ``session_id``, ``created_at``, ``task``.
    """

    id: str
    text: str
    embed_text: str
    metadata: dict[str, str]


def is_conversation(record: Record) -> bool:
    """True for a turn of a conversation: not a memory task (question_memory, summary) nor an event."""
    return not record.metadata.get("task") and not record.metadata.get("event")


def _day(record: Record) -> str:
    """``8 May 2023`` from the record's ``created_at``."""
    when = datetime.fromisoformat(record.created_at[:10])
    return f"{when.day} {when:%B %Y}"


def memory_documents(records: Sequence[Record], settings: DocumentSettings = MEMORY_DOCUMENTS) -> list[MemoryDocument]:
    """The memory documents of ``records`` (a namespace's log, in logged order), one per record with content.

    Neighbours are the conversation turns of the same session (:func:`is_conversation`), in logged
    order; a memory task's record (a question_memory turn, a summary) has a document of its own turn
    alone and is nobody's neighbour. Records whose content is blank have no document.
    """
    kept = [r for r in records if r.content.strip()]
    sessions: dict[str, list[int]] = defaultdict(list)  # session id -> positions in kept, in order
    for i, record in enumerate(kept):
        if is_conversation(record):
            sessions[record.session_id].append(i)
    place = {i: (session, n) for session, members in sessions.items() for n, i in enumerate(members)}
    documents = []
    for i, record in enumerate(kept):
        turn = f"{speaker_of(record)}: {record.content}"
        before = after = embed_before = []
        context: list[str] = []
        if i in place:
            session, n = place[i]
            members = sessions[session]

            def turns(positions: list[int]) -> list[str]:
                return [f"{speaker_of(kept[j])}: {kept[j].content}" for j in positions]

            before = turns(members[max(0, n - settings.bm25_before) : n])
            context = [kept[j].id for j in reversed(members[max(0, n - settings.bm25_before) : n])]
            after = turns(members[n + 1 : n + 1 + settings.bm25_after])
            embed_before = turns(members[max(0, n - settings.embed_before) : n])
        own = f"{turn} ({_day(record)})" if settings.date else turn
        documents.append(
            MemoryDocument(
                id=record.id,
                text="\n".join([own] * settings.turn_repeat + before + after),
                embed_text="\n".join([turn, *embed_before]),
                metadata={
                    "role": record.role,
                    "session_id": record.session_id,
                    "created_at": record.created_at,
                    "task": str(record.metadata.get("task", "")),
                    **({CONTEXT_KEY: " ".join(context)} if settings.context_ids else {}),
                    **({SPEAKER_KEY: name} if settings.speaker and (name := _speaker_name(record)) else {}),
                },
            )
        )
    return documents
