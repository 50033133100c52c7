"""Memory that answers: summaries of a namespace's log, its embedding into Chroma, questions over it, and
``request_llm`` (one logged turn). Retrieval is hybrid (dense + BM25, fused by reciprocal rank;
:mod:`my_llm.retrieval`), the combination Mem0 and Zep use.

The face of ``my_llm.memory``: import from here, not from its modules. Every function takes the plain
:class:`my_llm.history.ChatHistory`.
"""

from my_llm.memory.answer import EMPTY_ANSWER, ContextAnswer, answer_from_context
from my_llm.memory.question import ANSWER_PROMPT, QUESTION_TASK, MemoryAnswer, question_memory
from my_llm.memory.request import ANSWER_RESERVE_TOKENS, history_that_fits, request_llm, turns_that_fit
from my_llm.memory.summarise import SUMMARY_TASK, apply_summarise_to_memory
from my_llm.memory.transcript import (
    MEMORY_DOCUMENTS,
    DocumentSettings,
    MemoryDocument,
    is_conversation,
    memory_documents,
    speaker_of,
    transcript_line,
)
from my_llm.memory.vectorstore import (
    DOCUMENT_KEY,
    MEMORY_FUSION,
    document_tag,
    memory_retriever,
    save_vectorstore_memory,
    sync_records,
)

__all__ = [
    "ANSWER_PROMPT",
    "DOCUMENT_KEY",
    "MEMORY_DOCUMENTS",
    "DocumentSettings",
    "MemoryDocument",
    "document_tag",
    "is_conversation",
    "memory_documents",
    "speaker_of",
    "ANSWER_RESERVE_TOKENS",
    "EMPTY_ANSWER",
    "MEMORY_FUSION",
    "QUESTION_TASK",
    "SUMMARY_TASK",
    "ContextAnswer",
    "MemoryAnswer",
    "answer_from_context",
    "apply_summarise_to_memory",
    "history_that_fits",
    "memory_retriever",
    "question_memory",
    "request_llm",
    "save_vectorstore_memory",
    "sync_records",
    "transcript_line",
    "turns_that_fit",
]
