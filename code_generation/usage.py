"""Token usage and cost of create-script's requests, printed the way the seed printed them.

The seed used LangChain's ``get_openai_callback``, whose report read ``Tokens Used``, ``Prompt Tokens``,
``Completion Tokens``, ``Successful Requests`` and ``Total Cost (USD)``; :meth:`UsageReport.format` keeps
that layout. Token counts and prices come from :mod:`my_llm.models`; an unknown price stays unknown
(None, printed as "unknown"), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.messages import BaseMessage

from my_llm.models import model_of, usage_for


@dataclass(frozen=True)
class UsageReport:
    """Tokens, requests and USD cost of one or more requests; add reports with ``+``.

    ``cost_usd`` is None as soon as one request's cost is unknown (a model missing from the price table).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    successful_requests: int = 0
    cost_usd: float | None = 0.0

    @classmethod
    def of_reply(cls, reply: BaseMessage) -> UsageReport:
        """The usage of one stamped reply (see :func:`my_llm.standards.stamp_reply`)."""
        usage = usage_for(reply, model_of(reply)) or {}
        return cls(
            prompt_tokens=usage.get("input_tokens") or 0,
            completion_tokens=usage.get("output_tokens") or 0,
            successful_requests=1,
            cost_usd=usage.get("cost_usd"),
        )

    def __add__(self, other: UsageReport) -> UsageReport:
        cost = None if self.cost_usd is None or other.cost_usd is None else round(self.cost_usd + other.cost_usd, 8)
        return UsageReport(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.successful_requests + other.successful_requests,
            cost,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def format(self) -> str:
        """The seed's five-line report; the cost as ``$0.000123`` or ``unknown``."""
        cost = "unknown" if self.cost_usd is None else f"${self.cost_usd:.6f}"
        return (
            f"Tokens Used: {self.total_tokens}\n"
            f"\tPrompt Tokens: {self.prompt_tokens}\n"
            f"\tCompletion Tokens: {self.completion_tokens}\n"
            f"Successful Requests: {self.successful_requests}\n"
            f"Total Cost (USD): {cost}"
        )
