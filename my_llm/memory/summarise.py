"""Summaries of a namespace's log: map-reduce past the model's context window, logged as ``summary`` records.

Map-reduce summarisation as in LangChain's ``load_summarize_chain(chain_type="map_reduce")``: texts longer
than the context are summarised in parts, then the partial summaries are combined.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from my_llm.errors import MyLLMError
from my_llm.history import ChatHistory
from my_llm.memory.transcript import transcript_line
from my_llm.models import context_tokens, cost_usd, count_tokens, invoke_model, model_of, stamp_reply, text_of

SUMMARY_PROMPT = (
    "Summarise the conversation below in one short paragraph. Keep names, numbers, decisions and anything "
    "the user asked to remember."
)
REDUCE_PROMPT = "These are summaries of consecutive parts of one conversation. Combine them into one short paragraph."
SUMMARY_TASK = "summary"
PROMPT_RESERVE_TOKENS = 700  # instructions + the model's reply


def _pack(lines: Sequence[str], budget_tokens: int) -> list[str]:
    """Group lines into texts of at most ``budget_tokens`` each; a longer line is cut to fit."""
    groups: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        tokens = count_tokens(line) + 1
        if tokens > budget_tokens:
            line, tokens = line[: budget_tokens * 3], budget_tokens  # ~3+ characters a token
        if current and size + tokens > budget_tokens:
            groups.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += tokens
    if current:
        groups.append("\n".join(current))
    return groups


class _Summariser:
    """Map-reduce summarisation that keeps the replies, for their token usage."""

    def __init__(self, chat: BaseChatModel) -> None:
        self.chat = chat
        self.budget = max(context_tokens(chat) - PROMPT_RESERVE_TOKENS, 200)
        self.replies = []

    def _ask(self, instruction: str, text: str) -> str:
        prompt = [SystemMessage(instruction), HumanMessage(text)]
        reply = stamp_reply(invoke_model(self.chat, prompt), prompt, self.chat)
        self.replies.append(reply)
        return text_of(reply).strip()

    def summarise(self, lines: Sequence[str], instruction: str = SUMMARY_PROMPT) -> str:
        groups = _pack(lines, self.budget)
        if len(groups) == 1:
            return self._ask(instruction, groups[0])
        partials = [self._ask(instruction, group) for group in groups]  # map
        return self.summarise(partials, REDUCE_PROMPT)  # reduce, again map-reduced if still too long

    def usage(self, model: str | None) -> dict | None:
        if not self.replies:
            return None
        tokens_in = sum(r.usage_metadata["input_tokens"] for r in self.replies)
        tokens_out = sum(r.usage_metadata["output_tokens"] for r in self.replies)
        return {
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cost_usd": cost_usd(model, tokens_in, tokens_out),
        }


def apply_summarise_to_memory(history: ChatHistory, chat: BaseChatModel, n: int | None = None) -> str:
    """Summarise the last ``n`` human/AI messages (all when None) and log the summary as a ``summary`` record.

    Text longer than the model's context is summarised in parts, then the parts are combined
    (map-reduce). The record's usage adds up every call; metadata holds the message count and the
    first and last record ids covered.

    Raises:
        MyLLMError: there is no human or AI message to summarise.
        ModelCallError: the model could not answer (nothing is logged).
    """
    records = [r for r in history.records() if r.role in ("human", "ai")]
    records = records[-n:] if n else records
    if not records:
        raise MyLLMError(f"Nothing to summarise: namespace {history.namespace!r} has no messages yet.")
    summariser = _Summariser(chat)
    text = summariser.summarise([transcript_line(r) for r in records])
    model = model_of(summariser.replies[-1])
    summary = history.new_record(
        "summary",
        text,
        model=model,
        usage=summariser.usage(model),
        metadata={
            "task": SUMMARY_TASK,
            "messages": len(records),
            "first_id": records[0].id,
            "last_id": records[-1].id,
            "calls": len(summariser.replies),
        },
    )
    history.add_records([summary])
    return text
