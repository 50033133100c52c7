"""A LangChain chat model over ``llama-cpp-python`` running a local GGUF file in-process.

Why our own class: langchain-community's ``ChatLlamaCpp`` is in a package LangChain has sunset, and it
drops the token counts llama.cpp reports, which every AI record must carry. ``create_chat_completion``
already returns OpenAI-shaped replies with usage, so the adapter stays small.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def to_openai_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as ``[{"role": "system|user|assistant", "content": str}]``; other roles become user."""
    converted = []
    for message in messages:
        text = message.text if isinstance(message.text, str) else message.text()
        converted.append({"role": _ROLES.get(message.type, "user"), "content": text})
    return converted


class LlamaCppChatModel(BaseChatModel):
    """Chat with a GGUF model through llama.cpp, loaded on first use.

    Attributes:
        model_path: the ``.gguf`` file.
        model_name: reported in ``response_metadata["model_name"]`` and so in the AI record.
        n_ctx: context window in tokens; max_tokens: reply limit in tokens.
        repeat_penalty: >1 discourages the loops small models fall into.
        stop: strings that end the reply, for every call (``invoke(stop=...)`` adds to them).

    Unknown settings are refused (a misspelt ``max_token=`` raises a ValidationError rather than being
    ignored), and so are unknown keyword arguments to ``invoke``/``stream`` (TypeError).
    """

    model_config = ConfigDict(extra="forbid")

    model_path: str
    model_name: str = "local"
    n_ctx: int = 4096
    max_tokens: int = 384
    temperature: float = 0.2
    repeat_penalty: float = 1.2
    n_threads: int | None = None
    stop: list[str] | None = None
    _llama: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "temperature": self.temperature}

    def _client(self):
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(
                model_path=self.model_path,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads or os.cpu_count() or 1,
                verbose=False,
            )
        return self._llama

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(key for key in kwargs if not key.startswith("ls_"))  # ls_*: LangChain's own tracing hints
        if unknown:
            raise TypeError(f"LlamaCppChatModel does not take {', '.join(unknown)}: set model fields instead")
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "repeat_penalty": self.repeat_penalty,
            "stop": [*(self.stop or []), *(stop or [])],
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        options = self._options(stop, kwargs)
        response = self._client().create_chat_completion(messages=to_openai_messages(messages), **options)
        choice, usage = response["choices"][0], response["usage"]
        message = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata={
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
            },
            response_metadata={"model_name": self.model_name, "finish_reason": choice.get("finish_reason")},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        prompt = to_openai_messages(messages)
        options = self._options(stop, kwargs)
        output_tokens = 0
        for part in self._client().create_chat_completion(messages=prompt, stream=True, **options):
            token = part["choices"][0]["delta"].get("content")
            if token:
                output_tokens += 1  # llama.cpp streams one token per chunk
                if run_manager:
                    run_manager.on_llm_new_token(token)
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        # Streams carry no usage: count the prompt with the model's own tokenizer.
        template = "".join(f"{m['role']}\n{m['content']}\n" for m in prompt)
        input_tokens = len(self._client().tokenize(template.encode("utf-8")))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "total_tokens": input_tokens + output_tokens,
                },
                response_metadata={"model_name": self.model_name},
            )
        )
