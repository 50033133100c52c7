"""``POST /v1/memory/ask``: a question over the signed-in user's memory (every namespace of theirs), answered
by the server's default chat model from the records it retrieved, which the reply cites (see
:mod:`server.memory_answers`). A user only ever searches their own namespaces; an admin may name ``as_user``."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from my_llm import ModelCallError
from server.deps import State, User
from server.errors import ErrorResponse
from server.memory_answers import MemoryAnswers
from server.users import UserError, check_name

router = APIRouter(prefix="/memory", tags=["memory"])
FAILURES = {status: {"model": ErrorResponse} for status in (400, 502, 503)}


class MemoryQuestion(BaseModel):
    """A question, and how many records to retrieve for it (1-50, default 8)."""

    question: Annotated[str, Field(min_length=1, max_length=4000)]
    k: Annotated[int, Field(ge=1, le=50)] = 8


class CitedRecordOut(BaseModel):
    """A record the answer was given: id, namespace, session (= conversation id), role, time (UTC ISO 8601) and
    the first 300 characters of its text."""

    id: str
    namespace: str
    session: str
    role: str
    created_at: str
    excerpt: str


class MemoryAnswerOut(BaseModel):
    """The answer and its cited records (oldest first; empty when there is nothing to answer from, and then no
    model was called). ``conversation`` is where the question and answer were logged (the asker's namespace),
    ``usage`` the answer's tokens and USD (``cost_usd`` null for an unknown price)."""

    answer: str
    sources: list[CitedRecordOut]
    conversation: str | None
    model: str | None
    usage: dict | None


async def memory_answers(request: Request, state: State) -> MemoryAnswers:
    """The app's :class:`MemoryAnswers`, made at first use (no await inside: atomic on the event loop)."""
    answers = getattr(request.app.state, "memory_answers", None)
    if answers is None:
        answers = request.app.state.memory_answers = MemoryAnswers(state.logbook, state.config.settings)
    return answers


@router.post(
    "/ask", response_model=MemoryAnswerOut, responses=FAILURES, summary="Ask my memory; the answer cites records"
)
async def ask_memory(
    body: MemoryQuestion,
    request: Request,
    user: User,
    state: State,
    as_user: Annotated[str | None, Query(max_length=63, description="admins only: another user's memory")] = None,
) -> MemoryAnswerOut:
    """Answer from the user's records (``user-<name>`` and ``user-<name>.key-<label>``), deleted conversations
    left out. 400 for an invalid ``as_user``, 403 when a non-admin names another user, 502 when the chat model
    fails, 503 when the model or embedder cannot be loaded."""
    owner = user.name
    if as_user is not None and as_user != user.name:
        if not user.is_admin:
            raise HTTPException(403, "Only an admin can ask another user's memory.")
        try:
            owner = check_name(as_user)
        except UserError as error:
            raise HTTPException(400, str(error)) from error
    answers = await memory_answers(request, state)
    try:
        reply = await anyio.to_thread.run_sync(
            lambda: answers.ask(user.namespace, owner, body.question, body.k, as_admin=owner != user.name)
        )
    except ModelCallError as error:
        raise HTTPException(502, str(error)) from error
    return MemoryAnswerOut(
        answer=reply.answer,
        sources=[CitedRecordOut(**vars(cited)) for cited in reply.sources],
        conversation=reply.conversation,
        model=reply.model,
        usage=reply.usage,
    )
