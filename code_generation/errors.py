"""The errors create-script raises; all are :class:`my_llm.MyLLMError` so the CLI handles them in one place."""

from __future__ import annotations

from my_llm import ModelCallError, MyLLMError


class CodeGenerationError(MyLLMError):
    """Base class of create-script's own errors."""


class ChangedTestFileError(CodeGenerationError):
    """The test file changed while an attempt ran: its results cannot be trusted, so the loop stops."""


class SandboxError(CodeGenerationError):
    """The sandbox could not be set up (a folder too large to copy, a missing test runner, ...)."""


class ModelRequestError(CodeGenerationError, ModelCallError):
    """The chat model could not answer (server down, bad key, quota): the loop cannot go on."""
