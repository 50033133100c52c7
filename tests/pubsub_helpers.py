"""Pulling from the real emulator in tests: the helpers live in :mod:`my_llm.testing` (the benchmarks use
them too); this module keeps the test files' ``from tests.pubsub_helpers import ...`` working."""

from my_llm.testing import ensure_topic, pull_all, subscribe

__all__ = ["ensure_topic", "pull_all", "subscribe"]
