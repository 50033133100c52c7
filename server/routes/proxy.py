"""The OpenAI-compatible logging proxy: ``POST /v1/chat/completions`` (streaming or not) and
``GET /v1/models``, forwarded to the upstream named by ``OPENAI_BASE_URL`` with the server's
``OPENAI_API_KEY`` (the client's key is ours and never forwarded; the upstream's never leaves the server).

The request's last user turn is logged before it is forwarded (so a dead upstream loses nothing), the
reply after it came back, both in the user's namespace, session from ``X-Session-Id`` or the body's ``user``
(else a new one, returned in the ``X-Session-Id`` response header).

A request is checked against the shape of OpenAI's (:class:`ChatRequest`: a model, a non-empty list of
messages with OpenAI's roles, a boolean ``stream``, the common sampling numbers in OpenAI's ranges) before
anything is logged or forwarded: a malformed one is a 400 from us, as OpenAI's own API answers it, and is never
forwarded (llama.cpp's server answers such requests with a 500, which would reach the client as if the upstream
were broken, and which the ``openai`` client retries). Every field goes to the upstream as sent, fields we do not
check included. The upstream's own errors pass through with their status and body (a proxy is transparent;
a client sees what it would calling the upstream directly); an unreachable upstream is 502, a silent one 504.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Body, Header, HTTPException
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from my_llm.models import cost_usd, count_tokens
from server.deps import ServerState, State, User
from server.errors import ErrorResponse, error_response
from server.routes.sse import StreamTap

router = APIRouter(tags=["proxy"])
MAX_SESSION_ID = 200


class ChatMessage(BaseModel):
    """One message of a chat request: OpenAI's role, and content as text, a list of parts, or null (other
    fields, such as ``name`` or ``tool_calls``, are passed on as sent)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[dict[str, Any]] | None = None


Number = StrictFloat | StrictInt


class ChatRequest(BaseModel):
    """What the proxy checks of an OpenAI chat completion request before it forwards it unchanged: types are
    strict (``"5"`` is not a number), ranges are OpenAI's; other fields (``tools``, ``response_format``, ...)
    are the upstream's to judge."""

    model_config = ConfigDict(extra="allow")

    model: StrictStr = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool | None = None
    user: StrictStr | None = Field(default=None, max_length=MAX_SESSION_ID)
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    n: StrictInt | None = Field(default=None, ge=1, le=128)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    presence_penalty: Number | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: Number | None = Field(default=None, ge=-2, le=2)
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    stream_options: dict[str, Any] | None = None


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` references replaced by the definitions (an OpenAPI ``openapi_extra``
    body cannot point into a model's own ``$defs``)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def check_request(payload: Any) -> ChatRequest:
    """``payload`` as a :class:`ChatRequest`; raises HTTPException 400 naming every problem."""
    try:
        return ChatRequest.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}" for item in error.errors()
        )
        raise HTTPException(400, f"Not an OpenAI chat completion request: {problems}.") from error


CHAT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline(ChatRequest.model_json_schema())}},
    }
}
CHAT_RESPONSES = {
    200: {
        "description": "The upstream's chat completion (JSON), or its stream of Server-Sent Events",
        "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {"schema": {}}},
    },
    400: {"model": ErrorResponse, "description": "Not an OpenAI chat completion request, or the upstream's 400"},
    502: {"model": ErrorResponse, "description": "Upstream unreachable, or its answer is not a chat completion"},
    504: {"model": ErrorResponse, "description": "Upstream timed out"},
}


def _upstream_headers(state: ServerState) -> dict[str, str]:
    key = state.config.settings.openai_api_key
    return {"Authorization": f"Bearer {key}"} if key else {}


def _dead_upstream(state: ServerState, error: httpx.HTTPError, logged: str = "; your turn was logged") -> JSONResponse:
    base = state.config.upstream_base_url
    if isinstance(error, httpx.TimeoutException):
        return error_response(504, f"The upstream {base} did not answer in time ({type(error).__name__}){logged}.")
    return error_response(502, f"The upstream {base} is unreachable ({type(error).__name__}: {error}){logged}.")


def _passthrough(response: httpx.Response, content: bytes) -> Response:
    media = response.headers.get("content-type", "application/json")
    return Response(content=content, status_code=response.status_code, media_type=media)


@router.get(
    "/models",
    summary="The upstream's models (OpenAI's shape)",
    responses={
        200: {"description": "The upstream's list of models", "content": {"application/json": {"schema": {}}}},
        502: {"model": ErrorResponse, "description": "Upstream unreachable"},
        504: {"model": ErrorResponse, "description": "Upstream timed out"},
    },
)
async def list_models(user: User, state: State) -> Response:
    """Forward ``GET /models`` to the upstream."""
    try:
        response = await state.http.get(f"{state.config.upstream_base_url}/models", headers=_upstream_headers(state))
    except httpx.HTTPError as error:
        return _dead_upstream(state, error, logged="")
    return _passthrough(response, response.content)


def text_of_content(content: Any) -> str:
    """The text of an OpenAI message ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _session_of(payload: dict[str, Any], header: str | None) -> str:
    session = header or payload.get("user") or uuid.uuid4().hex
    if not isinstance(session, str) or not session.strip() or len(session) > MAX_SESSION_ID:
        raise HTTPException(400, f"The session (X-Session-Id or 'user') must be a string of 1-{MAX_SESSION_ID} chars.")
    return session.strip()


def _usage(model: str | None, usage: dict | None, payload: dict, reply: str) -> tuple[dict, dict]:
    """The record's usage and extra metadata: the upstream's counts, else counted offline (cl100k)."""
    extra: dict[str, Any] = {}
    tokens_in = (usage or {}).get("prompt_tokens")
    tokens_out = (usage or {}).get("completion_tokens")
    if tokens_in is None or tokens_out is None:
        texts = [text_of_content(m.get("content")) for m in payload["messages"] if isinstance(m, dict)]
        tokens_in = sum(count_tokens(text) + 3 for text in texts) + 3
        tokens_out = count_tokens(reply)
        extra["usage_counted"] = True
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost_usd": cost_usd(model, tokens_in, tokens_out),
    }, extra


@router.post(
    "/chat/completions",
    summary="OpenAI chat completions, forwarded to the upstream and logged",
    responses=CHAT_RESPONSES,
    openapi_extra=CHAT_BODY,
)
async def chat_completions(
    payload: Annotated[Any, Body(description="An OpenAI chat completion request (see ChatRequest)")],
    user: User,
    state: State,
    x_session_id: Annotated[str | None, Header(max_length=MAX_SESSION_ID)] = None,
) -> Response:
    """Check the request's shape (400 otherwise), log the last user turn, forward the request as sent, log the
    reply, return the upstream's answer as it is (its errors with their status)."""
    check_request(payload)
    messages = payload["messages"]
    session = _session_of(payload, x_session_id)
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    turn = text_of_content(last_user.get("content")) if last_user else ""
    meta = {"proxy": True, "requested_model": str(payload.get("model"))}
    state.logbook.log(user.namespace, session, "human", turn, metadata=meta)  # an append: tens of us
    url, headers = f"{state.config.upstream_base_url}/chat/completions", _upstream_headers(state)
    if payload.get("stream"):
        return await _stream(state, user.namespace, session, payload, url, headers)
    try:
        response = await state.http.post(url, json=payload, headers=headers)
    except httpx.HTTPError as error:
        return _dead_upstream(state, error)
    if response.status_code >= 400:
        return _passthrough(response, response.content)
    try:
        data = response.json()
        reply = text_of_content(data["choices"][0]["message"].get("content")) if data.get("choices") else ""
    except (ValueError, KeyError, TypeError, AttributeError):
        return error_response(502, "The upstream answered with a body that is not an OpenAI chat completion.")
    model = data.get("model") or payload.get("model")
    usage, extra = _usage(model, data.get("usage"), payload, reply)
    state.logbook.log(user.namespace, session, "ai", reply, model=model, usage=usage, metadata={"proxy": True, **extra})
    return JSONResponse(data, headers={"X-Session-Id": session})


async def _stream(state: ServerState, namespace: str, session: str, payload: dict, url: str, headers: dict) -> Response:
    try:
        upstream = await state.http.send(
            state.http.build_request("POST", url, json=payload, headers=headers), stream=True
        )
    except httpx.HTTPError as error:
        return _dead_upstream(state, error)
    if upstream.status_code >= 400:
        content = await upstream.aread()
        await upstream.aclose()
        return _passthrough(upstream, content)
    tap, logged = StreamTap(), False

    def log_reply(complete: bool) -> None:
        nonlocal logged
        if logged:
            return
        logged = True
        model = tap.model or payload.get("model")
        usage, extra = _usage(model, tap.usage, payload, tap.text)
        metadata = {"proxy": True, "stream": True, **extra, **({} if complete else {"incomplete": True})}
        state.logbook.log(namespace, session, "ai", tap.text, model=model, usage=usage, metadata=metadata)

    async def relay():
        # The reply is logged before the client gets [DONE], so a client that has read the whole stream
        # finds it on disk; a stream without [DONE] (or broken) is logged when it ends.
        complete = False
        try:
            async for chunk in upstream.aiter_raw():
                tap.feed(chunk)
                if tap.done:
                    log_reply(True)
                yield chunk
            complete = True
        except httpx.HTTPError as error:
            message = {"error": {"message": f"The upstream stream broke: {error}", "type": "upstream_error"}}
            yield f"data: {json.dumps(message)}\n\n".encode()
        finally:
            await upstream.aclose()
            log_reply(complete)

    return StreamingResponse(relay(), media_type="text/event-stream", headers={"X-Session-Id": session})
