"""What the memory stores per record: one function (memory_documents) that save_vectorstore_memory,
question_memory and benchmarks/locomo.py share, and what follows from its being final when written."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from my_llm import PubSubChatMessageHistory, Record
from my_llm.memory import (
    CONTEXT_KEY,
    DOCUMENT_KEY,
    MEMORY_DOCUMENTS,
    MEMORY_FUSION,
    QUESTION_TASK,
    SPEAKER_KEY,
    DocumentSettings,
    document_tag,
    memory_documents,
    memory_retriever,
    sync_records,
)
from my_llm.retrieval import HybridRetriever

WHEN = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def release_chroma():
    """Chroma keeps every client's database open for the process's life (about 10 file descriptors each):
    release them after each test, so a long test session does not run out."""
    yield
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


class HashEmbeddings(Embeddings):
    """Deterministic 16-float vectors from sha256: fast, and equal texts get equal vectors."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _vector(self, text: str) -> list[float]:
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        return [byte / 255 - 0.5 for byte in digest[:16]]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.seen.extend(texts)
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def turn(session: str, speaker: str, text: str, **metadata) -> Record:
    return Record.new("docs", session, "human", text, metadata={"speaker": speaker, **metadata}, created_at=WHEN)


def conversation() -> list[Record]:
    """Two sessions, interleaved in the log, and a question_memory turn in the first."""
    return [
        turn("a", "Caroline", "I went to a support group yesterday."),
        turn("b", "Bob", "Trains are late again."),
        turn("a", "Melanie", "How was it?"),
        turn("a", "Caroline", "Powerful. I felt accepted."),
        turn("a", "user", "What did Caroline feel?", task=QUESTION_TASK),
        turn("b", "Bob", "   "),
        turn("a", "Melanie", "I am glad."),
    ]


def test_the_shipped_document_is_the_turn_and_date_three_times_then_two_turns_before_it_in_its_session():
    records = conversation()
    documents = {d.id: d for d in memory_documents(records)}
    glad = documents[records[6].id]
    assert glad.text.split("\n") == [
        "Melanie: I am glad. (8 May 2023)",
        "Melanie: I am glad. (8 May 2023)",
        "Melanie: I am glad. (8 May 2023)",
        "Melanie: How was it?",  # session a only; the question_memory turn is nobody's neighbour
        "Caroline: Powerful. I felt accepted.",
    ]
    assert glad.embed_text == "Melanie: I am glad.\nMelanie: How was it?\nCaroline: Powerful. I felt accepted."
    assert documents[records[1].id].text.count("\n") == 2  # Bob's first turn: no neighbours in session b
    question = documents[records[4].id]
    assert question.embed_text == "user: What did Caroline feel?" and question.metadata["task"] == QUESTION_TASK
    assert records[5].id not in documents  # blank content has no document
    assert MEMORY_DOCUMENTS.bm25_after == 0  # what makes a document final when written (next test)


def test_saving_after_every_turn_stores_what_saving_once_stores(settings):
    """A document depends only on its turn and earlier ones, so incremental saves equal one batch save."""
    records = conversation()
    embeddings = HashEmbeddings()
    incremental = PubSubChatMessageHistory("incremental", settings=settings, embeddings=embeddings)
    once = PubSubChatMessageHistory("once", settings=settings, embeddings=embeddings)
    for record in records:
        incremental.add_records([record])
        incremental.save_vectorstore_memory()
    once.add_records(records)
    once.save_vectorstore_memory()

    def stored(history):
        collection = memory_retriever(history, embeddings)._open(create=False)
        got = collection.get(include=["documents", "embeddings"])
        return sorted(zip(got["ids"], got["documents"], [tuple(v) for v in got["embeddings"]], strict=True))

    assert stored(incremental) == stored(once)
    assert len(stored(once)) == 6


def test_question_memory_stores_the_same_documents(settings):
    embeddings = HashEmbeddings()
    chat = FakeListChatModel(responses=["Accepted."])
    memory = PubSubChatMessageHistory("asked", settings=settings, chat=chat, embeddings=embeddings)
    memory.add_records(conversation())
    memory.question_memory("What did Caroline feel?", k=3)
    collection = memory_retriever(memory, embeddings)._open(create=False)
    got = collection.get(include=["documents"])
    stored = dict(zip(got["ids"], got["documents"], strict=True))
    expected = {d.id: d.text for d in memory_documents(memory.records()[:-2])}  # before the logged Q&A
    assert {i: stored[i] for i in expected} == expected


def test_documents_built_with_other_settings_are_rebuilt(settings):
    embeddings = HashEmbeddings()
    memory = PubSubChatMessageHistory("rebuilt", settings=settings, embeddings=embeddings)
    memory.add_records(conversation())
    retriever = memory_retriever(memory, embeddings)
    plain = DocumentSettings()  # one line per turn, as stored before issue 18
    assert sync_records(retriever, memory.records(), settings=plain) == 6
    assert sync_records(retriever, memory.records(), settings=plain) == 0
    assert memory.save_vectorstore_memory() == 6  # every document of the old kind is rebuilt once
    assert retriever.ids(where={DOCUMENT_KEY: document_tag(MEMORY_DOCUMENTS)}) == retriever.ids()
    assert memory.save_vectorstore_memory() == 0


def test_settings_are_checked():
    with pytest.raises(ValueError, match="turn_repeat"):
        DocumentSettings(turn_repeat=0)
    with pytest.raises(ValueError):
        DocumentSettings(bm25_before=-1)


def test_shipped_documents_name_the_turns_they_carry_before_them_nearest_first():
    records = conversation()
    documents = {d.id: d for d in memory_documents(records)}
    assert documents[records[6].id].metadata[CONTEXT_KEY] == f"{records[3].id} {records[2].id}"
    assert documents[records[2].id].metadata[CONTEXT_KEY] == records[0].id
    assert documents[records[0].id].metadata[CONTEXT_KEY] == ""
    assert documents[records[4].id].metadata[CONTEXT_KEY] == ""  # a question_memory turn carries no neighbours
    assert all(CONTEXT_KEY not in d.metadata for d in memory_documents(records, DocumentSettings(bm25_before=2)))
    assert MEMORY_FUSION["context_key"] == CONTEXT_KEY and len(MEMORY_FUSION["context_weights"]) <= 2


def test_shipped_documents_carry_their_speaker_for_the_speaker_prior():
    records = conversation()
    documents = {d.id: d for d in memory_documents(records)}
    assert documents[records[0].id].metadata[SPEAKER_KEY] == "Caroline"
    assert documents[records[2].id].metadata[SPEAKER_KEY] == "Melanie"
    assert documents[records[4].id].metadata[SPEAKER_KEY] == "user"  # named so by the record itself
    unnamed = [Record.new("docs", "c", "human", "How do I add a user?"), Record.new("docs", "c", "ai", "Use adduser.")]
    assert all(SPEAKER_KEY not in d.metadata for d in memory_documents(unnamed))  # roles are not names
    assert all(SPEAKER_KEY not in d.metadata for d in memory_documents(records, DocumentSettings(bm25_before=2)))
    assert MEMORY_FUSION["speaker_key"] == SPEAKER_KEY and MEMORY_FUSION["speaker_weight"] > 0


def test_a_question_naming_a_speaker_favours_their_turns(settings):
    """With the memory's settings (BM25 alone, so that the dense query's leaving the name out changes nothing),
    "How was Caroline's day?" multiplies the scores of Caroline's turns by 1 + speaker_weight and leaves
    Melanie's (which quote Caroline's) as they are without the prior."""
    embeddings = HashEmbeddings()
    memory = PubSubChatMessageHistory("speaker", settings=settings, embeddings=embeddings)
    memory.add_records(conversation())
    memory.save_vectorstore_memory()
    folder = memory_retriever(memory, embeddings).folder
    where, query = {"task": {"$ne": QUESTION_TASK}}, "How was Caroline's day?"
    retriever = HybridRetriever(folder, embeddings, **{**MEMORY_FUSION, "dense_weight": 0.0})
    hits = retriever.search(query, k=10, where=where)
    plain = HybridRetriever(folder, embeddings, **{**MEMORY_FUSION, "dense_weight": 0.0, "speaker_weight": 0.0})
    plain_scores = {h.id: h.score for h in plain.search(query, k=10, where=where)}
    assert {"Caroline", "Melanie"} <= {hit.metadata[SPEAKER_KEY] for hit in hits if hit.score > 0}
    for hit in hits:
        factor = 1 + MEMORY_FUSION["speaker_weight"] if hit.metadata[SPEAKER_KEY] == "Caroline" else 1.0
        assert hit.score == pytest.approx(factor * plain_scores[hit.id])


def test_a_turn_is_found_through_the_turn_after_it_that_quotes_it(settings):
    """The question "what did Melanie ask" matches the reply's document (it carries the question as its
    neighbour); with the memory's settings the question's own turn is credited through the reply."""
    embeddings = HashEmbeddings()
    memory = PubSubChatMessageHistory("credit", settings=settings, embeddings=embeddings)
    memory.add_records(conversation())
    memory.save_vectorstore_memory()
    retriever = memory_retriever(memory, embeddings)
    records = memory.records()
    hits = retriever.search("powerful accepted", k=10)
    scores = {hit.id: hit.score for hit in hits}
    # "Powerful. I felt accepted." quotes "How was it?" first; "I am glad." quotes both, "How was it?" second
    reply, asked, glad = records[3].id, records[2].id, records[6].id
    plain = HybridRetriever(retriever.folder, embeddings, **{**MEMORY_FUSION, "context_weights": ()})
    plain_scores = {hit.id: hit.score for hit in plain.search("powerful accepted", k=10)}
    credit = 0.3 * plain_scores[reply] + 0.1 * plain_scores[glad]
    assert credit > 0 and scores[asked] == pytest.approx(plain_scores.get(asked, 0.0) + credit)
