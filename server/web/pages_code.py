"""The "New code" page and a code conversation's page, over :class:`server.codegen.CodeService` (what
``/v1/code`` uses):

- ``GET /code``: a description box, an optional test-file box, the target (Python, PlantUML diagram), the
  module name and a model picker (:mod:`server.web.code_models`). ``static/code.js`` posts the form and reads
  the answer as it streams in.
- ``POST /code/stream``, ``POST /code/{id}/regenerate/stream``, ``POST /code/{id}/feedback/stream``: the
  page's streams. JSON bodies (``/v1/code``'s :class:`CodeRequest` without ``stream``; ``{"text"}`` for
  feedback), authenticated by the session cookie and CSRF-checked by the ``X-CSRF-Token`` header (the
  session's token: a page of another site can neither read it nor send a custom header without CORS);
  rate-limited like an API key. The answer is ``/v1/code``'s Server-Sent Events (``token``, ``attempt``, then
  ``done`` or ``error``), with ``done`` carrying, besides the :class:`CodeOut`, ``html`` (the code highlighted
  by Pygments), ``usage_text`` and ``total_text``. Refusals answer JSON ``{"error": {"message", "type"}}``
  with their status before any stream starts (403 CSRF, 404, 409, 422 guard, 429, 503), as ``/v1/code`` does.
- ``GET /code/{id}``: every version of the conversation (code highlighted, pass/fail, tokens and USD, the
  picture beside its source for diagrams), with Regenerate and a Feedback box.
- ``GET /code/{id}/v{n}.svg`` and ``.puml``: a diagram version's picture (rendered again from its logged
  source, sandboxed; kept in a small in-process cache) and source, as downloads with ``?download=1``.
  The SVG is shown in ``<img>`` (a picture run as an image runs no script), and served with a
  ``Content-Security-Policy`` that forbids scripts should someone open it directly.

A conversation in a namespace that is not the user's (``ns``) is a 404, like an unknown or deleted one.
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Iterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer, TextLexer
from sse_starlette import EventSourceResponse

from code_generation import PlantUMLError, render_svg
from server.code_schemas import CodeRequest, FeedbackRequest, UsageOut
from server.code_versions import CodeConversation, read_code_conversation
from server.codegen import CodeService, Event, Job, UnknownConversationError
from server.deps import CurrentUser, ServerState, State
from server.routes.code import prepare_job, service_of
from server.users import owns_namespace
from server.web.auth import CSRF_FIELD, PageError, PageUser
from server.web.code_models import model_choices
from server.web.templating import format_usd, render

router = APIRouter(include_in_schema=False)
CSRF_HEADER = "x-csrf-token"
Conversation = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]
Namespace = Annotated[str, Query(max_length=200)]
Version = Annotated[int, Path(ge=1, le=10_000)]
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)
PYGMENTS_CSS = FORMATTER.get_style_defs(".highlight")


def highlighted(code: str, target: str) -> Markup:
    """``code`` as Pygments' HTML (``<div class="highlight"><pre>...``; every character of the code escaped):
    Python's lexer for ``python``, plain text for PlantUML (Pygments has no PlantUML lexer)."""
    lexer = PythonLexer() if target == "python" else TextLexer()
    return Markup(highlight(code, lexer, FORMATTER))  # Pygments escapes the code it formats


def usage_text(usage: UsageOut) -> str:
    """``1,234 in / 56 out tokens · 2 requests · $0.000123`` (``unknown`` USD when a price is unknown)."""
    requests = f"{usage.requests} request{'' if usage.requests == 1 else 's'}"
    tokens = f"{usage.prompt_tokens:,} in / {usage.completion_tokens:,} out tokens"
    return f"{tokens} · {requests} · {format_usd(usage.cost_usd)}"


# -- the pages ---------------------------------------------------------------------------------------------


@router.get("/code")
async def new_code(request: Request, user: PageUser, state: State) -> Response:
    """The "New code" form; the answer streams in below it (``static/code.js``)."""
    choices = await model_choices(state)
    return render(request, "code.html", user, models=choices, pygments_css=PYGMENTS_CSS)


@router.get("/code/{conversation}")
async def conversation_page(
    request: Request, conversation: Conversation, user: PageUser, state: State, ns: Namespace = ""
) -> Response:
    """Every version of a code conversation, oldest first, with Regenerate and a Feedback box."""
    namespace = ns or user.namespace
    found = await _conversation_or_404(state, user, namespace, conversation)
    codes = {v.version: highlighted(v.code, found.request.target) for v in found.versions}
    texts = {v.version: usage_text(v.usage) for v in found.versions}
    return render(
        request, "code_conversation.html", user, found=found, namespace=namespace, highlighted=codes,
        usage_texts=texts, total_text=usage_text(found.total_usage), pygments_css=PYGMENTS_CSS,
        ns_query="" if namespace == user.namespace else f"?ns={namespace}",
    )  # fmt: skip


@router.get("/code/{conversation}/v{version}.svg")
async def diagram_svg(
    conversation: Conversation,
    version: Version,
    user: PageUser,
    state: State,
    ns: Namespace = "",
    download: bool = False,
) -> Response:
    """A diagram version's picture (``image/svg+xml``); 404 when the version did not render."""
    source = await _diagram_source(state, user, ns or user.namespace, conversation, version)
    try:
        svg = await anyio.to_thread.run_sync(_render, source)
    except PlantUMLError as error:
        raise PageError(503, f"The diagram could not be rendered again: {error}") from error
    headers = {"Content-Security-Policy": SVG_POLICY, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="diagram-v{version}.svg"'
    return Response(svg, media_type="image/svg+xml", headers=headers)


@router.get("/code/{conversation}/v{version}.puml")
async def diagram_source(
    conversation: Conversation,
    version: Version,
    user: PageUser,
    state: State,
    ns: Namespace = "",
    download: bool = False,
) -> Response:
    """A diagram version's PlantUML source (``text/plain``)."""
    source = await _diagram_source(state, user, ns or user.namespace, conversation, version, rendered=False)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="diagram-v{version}.puml"'
    return Response(source, media_type="text/plain; charset=utf-8", headers=headers)


# -- the streams -------------------------------------------------------------------------------------------


async def stream_user(request: Request, user: PageUser, state: State) -> CurrentUser:
    """The signed-in user of a page stream: 403 unless ``X-CSRF-Token`` is the session's token, 429 past the
    rate limit (per user, as per API key). Runs before the body is read or validated."""
    sent, expected = request.headers.get(CSRF_HEADER, ""), request.session.get(CSRF_FIELD)
    if not expected or not hmac.compare_digest(sent.encode(), str(expected).encode()):
        raise HTTPException(403, "The CSRF check failed (no X-CSRF-Token header, or not this session's): reload "
                                 "the page and try again.")  # fmt: skip
    if not state.limiter.hit(state.rate, user.key_id):
        raise HTTPException(429, f"Rate limit exceeded ({state.config.rate_limit}); retry later.")
    return user


StreamUser = Annotated[CurrentUser, Depends(stream_user)]


@router.post("/code/stream")
async def stream_new(user: StreamUser, state: State, body: CodeRequest) -> Response:
    """Version 1 of a new conversation, streamed (see the module's docstring; ``body.stream`` is ignored)."""
    service = service_of(state)
    return _stream(service, await prepare_job(service.prepare_new, user.namespace, body))


@router.post("/code/{conversation}/regenerate/stream")
async def stream_regenerate(conversation: Conversation, user: StreamUser, state: State, ns: Namespace = "") -> Response:
    """A fresh answer to the conversation's request, as its next version, streamed."""
    service = service_of(state)
    return _stream(service, await prepare_job(service.prepare_regenerate, _own(user, ns), conversation))


@router.post("/code/{conversation}/feedback/stream")
async def stream_feedback(
    conversation: Conversation, user: StreamUser, state: State, body: FeedbackRequest, ns: Namespace = ""
) -> Response:
    """The last version changed as the feedback asks, as the next version, streamed."""
    service = service_of(state)
    return _stream(service, await prepare_job(service.prepare_feedback, _own(user, ns), conversation, body.text))


def _own(user: CurrentUser, ns: str) -> str:
    namespace = ns or user.namespace
    if not owns_namespace(user.name, namespace):
        raise HTTPException(404, "No code conversation of that id.")
    return namespace


def _stream(service: CodeService, job: Job) -> EventSourceResponse:
    return EventSourceResponse(_page_events(service.stream(job)))


def _page_events(events: Iterator[Event]) -> Iterator[dict[str, str]]:
    """``/v1/code``'s events, with ``done`` given the highlighted code and the usage as text."""
    for name, data in events:
        if name == "done":
            data = {**data, "html": str(highlighted(data["code"], data.get("target", "python"))),
                    "usage_text": usage_text(UsageOut(**data["usage"])),
                    "total_text": usage_text(UsageOut(**data["total_usage"]))}  # fmt: skip
        yield {"event": name, "data": json.dumps(data)}


# -- reading a conversation --------------------------------------------------------------------------------


def _read_own(state: ServerState, user: CurrentUser, namespace: str, conversation: str) -> CodeConversation | None:
    if not owns_namespace(user.name, namespace):
        return None
    try:
        return read_code_conversation(state.logbook, namespace, conversation)
    except UnknownConversationError:
        return None


async def _conversation_or_404(
    state: ServerState, user: CurrentUser, namespace: str, conversation: str
) -> CodeConversation:
    found = await anyio.to_thread.run_sync(_read_own, state, user, namespace, conversation)
    if found is None:
        raise PageError(404, f"No code conversation {conversation!r} in your history (it may have been deleted).")
    return found


async def _diagram_source(
    state: ServerState, user: CurrentUser, namespace: str, conversation: str, version: int, rendered: bool = True
) -> str:
    found = await _conversation_or_404(state, user, namespace, conversation)
    match = next((v for v in found.versions if v.version == version), None)
    if found.request.target != "plantuml" or match is None or not match.code:
        raise PageError(404, f"Conversation {conversation!r} has no diagram version {version}.")
    if rendered and not match.ok:
        raise PageError(404, f"Version {version} of the diagram did not render: see its source.")
    return match.code


@functools.lru_cache(maxsize=64)
def _render(source: str) -> str:
    """:func:`code_generation.render_svg`, remembered per source (a render is a JVM start, about 1-2 s)."""
    return render_svg(source)
