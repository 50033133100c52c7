"""Memory that answers: summaries of a namespace's log, its embedding into Chroma, questions over it, and
``request_llm`` (one logged turn). Retrieval is hybrid (dense + BM25, fused by reciprocal rank;
:mod:`my_llm.retrieval`), the combination Mem0 and Zep use.

The face of ``my_llm.memory``: import from here, not from its modules. Every function takes the plain
:class:`my_llm.history.ChatHistory`.
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
    from my_llm.memory.answer import EMPTY_ANSWER, ContextAnswer, answer_from_context
    from my_llm.memory.question import ANSWER_PROMPT, QUESTION_TASK, MemoryAnswer, question_memory, shared_record
    from my_llm.memory.request import ANSWER_RESERVE_TOKENS, history_that_fits, request_llm, turns_that_fit
    from my_llm.memory.summarise import SUMMARY_TASK, apply_summarise_to_memory
    from my_llm.memory.transcript import (
        CONTEXT_KEY,
        MEMORY_DOCUMENTS,
        SPEAKER_KEY,
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

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "ANSWER_PROMPT": "my_llm.memory.question",
    "ANSWER_RESERVE_TOKENS": "my_llm.memory.request",
    "CONTEXT_KEY": "my_llm.memory.transcript",
    "ContextAnswer": "my_llm.memory.answer",
    "DOCUMENT_KEY": "my_llm.memory.vectorstore",
    "DocumentSettings": "my_llm.memory.transcript",
    "EMPTY_ANSWER": "my_llm.memory.answer",
    "MEMORY_DOCUMENTS": "my_llm.memory.transcript",
    "MEMORY_FUSION": "my_llm.memory.vectorstore",
    "MemoryAnswer": "my_llm.memory.question",
    "MemoryDocument": "my_llm.memory.transcript",
    "QUESTION_TASK": "my_llm.memory.question",
    "SPEAKER_KEY": "my_llm.memory.transcript",
    "SUMMARY_TASK": "my_llm.memory.summarise",
    "answer_from_context": "my_llm.memory.answer",
    "apply_summarise_to_memory": "my_llm.memory.summarise",
    "document_tag": "my_llm.memory.vectorstore",
    "history_that_fits": "my_llm.memory.request",
    "is_conversation": "my_llm.memory.transcript",
    "memory_documents": "my_llm.memory.transcript",
    "memory_retriever": "my_llm.memory.vectorstore",
    "question_memory": "my_llm.memory.question",
    "shared_record": "my_llm.memory.question",
    "request_llm": "my_llm.memory.request",
    "save_vectorstore_memory": "my_llm.memory.vectorstore",
    "speaker_of": "my_llm.memory.transcript",
    "sync_records": "my_llm.memory.vectorstore",
    "transcript_line": "my_llm.memory.transcript",
    "turns_that_fit": "my_llm.memory.request",
}

__all__ = [
    "ANSWER_PROMPT",
    "CONTEXT_KEY",
    "DOCUMENT_KEY",
    "MEMORY_DOCUMENTS",
    "SPEAKER_KEY",
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
    "shared_record",
    "sync_records",
    "transcript_line",
    "turns_that_fit",
]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
