"""The evaluation's errors: :class:`my_llm.MyLLMError` subclasses the CLI turns into messages."""

from __future__ import annotations

from my_llm import MyLLMError


class EvalConfigError(MyLLMError):
    """The config cannot be run: a key or assertion type we do not support, a missing file, a bad value.
    The message names the offending key or type and where it is."""
