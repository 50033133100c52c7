"""``POST /v1/code``: code from a description (the seeds' main page, as an API), and its continuations
``POST /v1/code/{conversation}/regenerate`` and ``POST /v1/code/{conversation}/feedback``. The work is
:class:`server.codegen.CodeService`'s; these routes only check, dispatch and answer.

Every call answers JSON (:class:`CodeOut`), or Server-Sent Events when the body says ``"stream": true`` (or,
without ``stream``, when ``Accept`` asks for ``text/event-stream``): ``token`` events (``{"text"}``, the
model's reply as it comes), ``attempt`` events (each test run when tests are given), then ``done`` (the
:class:`CodeOut`) or ``error`` (``{"message", "type"}``). Refusals and bad input (422 guard, 400 model or
module, 404 conversation, 409, 503 sandbox) answer JSON before any stream starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Path, Request
from sse_starlette import EventSourceResponse

from server.code_schemas import CodeOut, CodeRequest, FeedbackRequest, RegenerateRequest
from server.codegen import CodeService, Event, Job, failure_of
from server.deps import ServerState, State, User

router = APIRouter(prefix="/code", tags=["code"])
Conversation = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]
STREAMS = {
    200: {
        "description": "The version as JSON, or as Server-Sent Events (token, attempt, done, error) when asked",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def service_of(state: ServerState) -> CodeService:
    """The code service over the server's settings, logbook and guard mode."""
    return CodeService(state.config.settings, state.logbook, state.config.prompt_guard)


@router.post("", response_model=CodeOut, responses=STREAMS, summary="Code from a description (and tests)")
async def code(body: CodeRequest, request: Request, user: User, state: State) -> Any:
    """Write code (version 1 of a new conversation); with tests, the create-script loop in its sandbox. With
    ``target: "plantuml"``, a diagram of the described scenario: ``code`` is its PlantUML source, ``svg`` the
    picture rendered locally, each attempt the render's result (PlantUML's syntax errors are fed back and
    retried, like failing tests). 400 for a bad model spec or module name, 422 with the reason when the
    prompt guard refuses the description (not a coding task, or a prompt-injection attempt; a diagram's
    scenario is checked for injections only) or when ``tests`` are given for ``plantuml``, 502 when the model
    fails, 503 when the sandbox or PlantUML cannot run here."""
    service = service_of(state)
    job = await prepare_job(service.prepare_new, user.namespace, body)
    return await _answer(service, job, _wants_stream(body.stream, request))


@router.post(
    "/{conversation}/regenerate", response_model=CodeOut, responses=STREAMS, summary="A fresh answer, same request"
)
async def regenerate(
    conversation: Conversation, request: Request, user: User, state: State, body: RegenerateRequest | None = None
) -> Any:
    """A fresh answer to the conversation's original request, as its next version (same session). 404 when
    the conversation is not the user's, unknown or deleted; other errors as ``POST /v1/code``."""
    service = service_of(state)
    job = await prepare_job(service.prepare_regenerate, user.namespace, conversation)
    return await _answer(service, job, _wants_stream(body.stream if body else None, request))


@router.post("/{conversation}/feedback", response_model=CodeOut, responses=STREAMS, summary="Refine the last code")
async def feedback(
    conversation: Conversation, body: FeedbackRequest, request: Request, user: User, state: State
) -> Any:
    """The last version's code and ``text`` go to the model, which writes the next version (with tests, the
    loop runs again). 422 when the feedback looks like a prompt injection, 409 when no version gave code yet,
    404 and the rest as ``regenerate``."""
    service = service_of(state)
    job = await prepare_job(service.prepare_feedback, user.namespace, conversation, body.text)
    return await _answer(service, job, _wants_stream(body.stream, request))


def _wants_stream(stream: bool | None, request: Request) -> bool:
    if stream is not None:
        return stream
    return "text/event-stream" in request.headers.get("accept", "")


async def prepare_job(prepare: Callable[..., Job], *args: Any) -> Job:
    """``prepare(*args)`` (one of :class:`CodeService`'s ``prepare_*``) in a worker thread; a refusal becomes
    its HTTPException (JSON, before any stream starts). Also used by the "New code" page's streams."""
    try:
        return await anyio.to_thread.run_sync(prepare, *args)
    except Exception as error:
        _raise_http(error)
        raise


async def _answer(service: CodeService, job: Job, stream: bool) -> Any:
    if stream:
        return EventSourceResponse(_sse(service.stream(job)))
    try:
        return await anyio.to_thread.run_sync(service.run, job)
    except Exception as error:
        _raise_http(error)
        raise


def _raise_http(error: Exception) -> None:
    """Raise the HTTPException for a service error; return for an unexpected one (the caller re-raises: a 500)."""
    failure = failure_of(error)
    if failure is not None:
        raise HTTPException(failure.status, failure.message) from error


def _sse(events: Iterator[Event]) -> Iterator[dict[str, str]]:
    for name, data in events:
        yield {"event": name, "data": json.dumps(data)}
