"""The errors my_llm raises. Every message says what was wrong and what to do about it.

Library code raises these; only the CLI modules turn them into exit codes.
"""

from __future__ import annotations


class MyLLMError(Exception):
    """Base class for every error this package raises on purpose."""


class InvalidNamespaceError(MyLLMError, ValueError):
    """A namespace that could escape its folder or make an invalid Pub/Sub topic name."""


class ConfigError(MyLLMError):
    """A setting from the environment that cannot be used as given."""


class StoreError(MyLLMError):
    """The on-disk message log could not be written or read."""


class ModelUnavailableError(MyLLMError):
    """A chat model or embedder could not be loaded (missing extra, missing file, bad spec)."""


class RepoError(MyLLMError):
    """A repository given to read-repo cannot be indexed (missing, empty, nothing to read)."""


class PublishError(MyLLMError):
    """Pub/Sub could not be reached or refused the topic; the records stay on disk."""


class ModelCallError(MyLLMError):
    """A chat model could not answer (server down, key refused, rate limit, unknown model).

    The message says which model, what went wrong and what to do; the provider's own exception is chained.
    """
