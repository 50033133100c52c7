"""Calls to the providers and the judge, with retries on rate limits, through the response cache.

A provider is built once per (spec, base URL) with :func:`my_llm.get_chat_model` and shared by the workers
(HTTP chat models are safe to call from several threads; the in-process ``local`` model answers one call at a
time, so ``--concurrency`` does not speed it up). A reply is a plain dict, the cache's and
the record's shape: ``{"output", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "model"}``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import HumanMessage

from evaluation.cache import ResponseCache, cache_key
from my_llm import ModelCallError, Settings, default_chat_spec, get_chat_model, get_embeddings, model_label
from my_llm.models import LOCAL, invoke_model, text_of, usage_for, with_counted_usage

RATE_LIMIT_MARKS = ("RateLimitError", "429", "rate limit", "Rate limit")


def is_rate_limit(error: BaseException) -> bool:
    """True when ``error`` (or what it was raised from) says the provider is rate limiting us."""
    while error is not None:
        if getattr(error, "status_code", None) == 429 or any(mark in str(error) for mark in RATE_LIMIT_MARKS):
            return True
        if type(error).__name__ == "RateLimitError":
            return True
        error = error.__cause__
    return False


def with_retries(call: Callable[[], Any], retries: int = 5, base_delay_s: float = 1.0, sleep=time.sleep) -> Any:
    """``call()``, retried up to ``retries`` times on a rate limit with exponential backoff and jitter
    (1 s, 2 s, 4 s... each times 0.5-1.5). Other errors, and the last rate limit, are raised."""
    for attempt in range(retries + 1):
        try:
            return call()
        except ModelCallError as error:
            if attempt == retries or not is_rate_limit(error):
                raise
            sleep(base_delay_s * (2**attempt) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


class Models:
    """The providers, the judge and the embedder of one run, with its cache.

    Args:
        settings: the environment's settings (``OPENAI_BASE_URL``, keys, default model).
        cache: where replies are kept (a disabled one always calls).
        judge: the default judge spec for ``llm-rubric`` (None: the settings' default chat model).
        embeddings: the embeddings spec for ``similar`` (None: the settings' default, ``local``).
    """

    def __init__(self, settings: Settings, cache: ResponseCache, judge: str | None = None, embeddings=None) -> None:
        self.settings, self.cache, self.default_judge, self.embeddings_spec = settings, cache, judge, embeddings
        self._chats: dict[tuple[str, str | None], Any] = {}
        self._embedder = None
        self._lock = threading.Lock()
        self._local_lock = threading.Lock()  # llama.cpp in-process is not thread-safe: one call at a time
        self.requests = 0  # requests actually sent (cache misses), for tests and the summary

    def chat(self, spec: str, base_url: str | None = None):
        """The chat model for ``spec`` (at ``base_url`` when given), built once."""
        with self._lock:
            key = (spec, base_url)
            if key not in self._chats:
                settings = dataclasses.replace(self.settings, openai_base_url=base_url) if base_url else self.settings
                self._chats[key] = get_chat_model(spec, settings)
            return self._chats[key]

    def complete(self, spec: str, prompt: str, variables: dict[str, Any], base_url: str | None = None) -> dict:
        """The reply of ``spec`` to ``prompt`` (from the cache when there), with ``"cached"`` set.

        Raises:
            ModelCallError: the provider failed (after retries on rate limits).
            ModelUnavailableError: the spec names a model that cannot be built.
        """
        key = cache_key(f"{spec}@{base_url or ''}", prompt, variables)
        stored = self.cache.get(key)
        if stored is not None:
            return {**stored, "cached": True}
        chat = self.chat(spec, base_url)
        messages = [HumanMessage(prompt)]

        def call():
            with self._lock:
                self.requests += 1
            with self._local_lock if spec == LOCAL else contextlib.nullcontext():
                started = time.perf_counter()
                reply = invoke_model(chat, messages)
                return reply, (time.perf_counter() - started) * 1000

        reply, latency_ms = with_retries(call)
        label = model_label(spec)
        usage = usage_for(with_counted_usage(reply, messages), label) or {}
        response = {
            "output": text_of(reply),
            "input_tokens": usage.get("input_tokens"),
            "output_tokens": usage.get("output_tokens"),
            "cost_usd": usage.get("cost_usd"),
            "latency_ms": round(latency_ms, 2),
            "model": label,
        }
        self.cache.put(key, response)
        return {**response, "cached": False}

    def judge(self, spec: str | None, prompt: str) -> str:
        """The judge's reply to a grading prompt (cached like any reply)."""
        spec = spec or self.default_judge or default_chat_spec(self.settings)
        return self.complete(spec, prompt, {"__judge__": True})["output"]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings of ``texts`` with the run's embedder (loaded at first use)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = get_embeddings(self.embeddings_spec, self.settings)
        return self._embedder.embed_documents(list(texts))
