"""Every chat model call goes through here, so a dead server, a refused key or a rate limit becomes one
:class:`~my_llm.errors.ModelCallError` that says what to do, never a provider's traceback.

Providers raise their own exception types (``openai.APIConnectionError``, ``httpx.ConnectError``,
llama.cpp's ``ValueError`` ...); they are recognised by name so that no provider package has to be imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, BaseMessageChunk

from my_llm.errors import ModelCallError, MyLLMError
from my_llm.models.factory import chat_model_name

if TYPE_CHECKING:  # the chat-model base classes cost 0.3 s to import; only type hints need them
    from langchain_core.language_models.chat_models import BaseChatModel

_CHANGE_MODEL = "choose another with --model or MY_LLM_MODEL (`local` runs offline)"
# Exception class name -> what to do. Names from openai, anthropic, httpx and google's clients.
_ADVICE = {
    "APIConnectionError": "could not reach the model server: is it running? Check OPENAI_BASE_URL, or " + _CHANGE_MODEL,
    "APITimeoutError": "the model server did not answer in time: try again, or " + _CHANGE_MODEL,
    "ConnectError": "could not reach the model server: is it running? Check its address, or " + _CHANGE_MODEL,
    "ConnectTimeout": "the model server did not answer in time: try again, or " + _CHANGE_MODEL,
    "AuthenticationError": "the provider refused the API key: check OPENAI_API_KEY (or the provider's key)",
    "PermissionDeniedError": "the API key may not use this model: check its permissions, or " + _CHANGE_MODEL,
    "RateLimitError": "the provider is rate limiting or the quota is used up: wait and try again",
    "NotFoundError": "the provider does not know this model: check the name, or " + _CHANGE_MODEL,
    "BadRequestError": "the provider refused the request (too long a prompt?): shorten it, or " + _CHANGE_MODEL,
    "InternalServerError": "the provider failed: try again later",
}


def model_call_error(error: BaseException, chat: BaseChatModel) -> ModelCallError:
    """The project's error for ``error`` raised by ``chat``: names the model, the failure and what to do."""
    name = chat_model_name(chat) or type(chat).__name__
    kinds = [kind.__name__ for kind in type(error).__mro__]
    advice = next((_ADVICE[kind] for kind in kinds if kind in _ADVICE), None)
    detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
    if advice is None:
        advice = f"{type(error).__name__}: {detail}; check the model's settings, or {_CHANGE_MODEL}"
    else:
        advice = f"{advice} ({type(error).__name__}: {detail})"
    return ModelCallError(f"The chat model {name!r} failed: {advice}.")


def invoke_model(chat: BaseChatModel, prompt: Sequence[BaseMessage], **kwargs: Any) -> BaseMessage:
    """``chat.invoke(prompt)``.

    Raises:
        ModelCallError: the model could not answer (the provider's error is chained).
        MyLLMError: the project's own errors pass through unchanged (a model that cannot be loaded, say).
    """
    try:
        return chat.invoke(list(prompt), **kwargs)
    except MyLLMError:
        raise
    except Exception as error:  # providers raise their own types: turned into one the CLIs know
        raise model_call_error(error, chat) from error


def stream_model(chat: BaseChatModel, prompt: Sequence[BaseMessage]) -> Iterator[BaseMessageChunk]:
    """``chat.stream(prompt)``, chunk by chunk. KeyboardInterrupt passes through (a cancelled answer).

    Raises:
        ModelCallError: see :func:`invoke_model`.
    """
    try:
        yield from chat.stream(list(prompt))
    except MyLLMError:
        raise
    except Exception as error:  # see invoke_model
        raise model_call_error(error, chat) from error


def batch_model(chat: BaseChatModel, prompts: Sequence[Sequence[BaseMessage]], max_concurrency: int) -> list:
    """``chat.batch(prompts)`` with at most ``max_concurrency`` requests at once.

    Raises:
        ModelCallError: see :func:`invoke_model`.
    """
    try:
        return chat.batch([list(p) for p in prompts], config={"max_concurrency": max_concurrency})
    except MyLLMError:
        raise
    except Exception as error:  # see invoke_model
        raise model_call_error(error, chat) from error
