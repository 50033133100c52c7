"""History: ``GET /v1/conversations`` (mine, newest first, paginated, searchable), ``GET`` and ``DELETE
/v1/conversations/{id}``. A conversation is a session of the user's namespaces (``user-<name>`` and the
``user-<name>.key-<label>`` of their labelled keys); another user's is a 404."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel

from server.deps import CurrentUser, ServerState, State, User, readable_namespaces
from server.users import UserError, check_name

router = APIRouter(prefix="/conversations", tags=["history"])
ConversationId = Annotated[str, Path(min_length=1, max_length=200)]
AsUser = Annotated[str | None, Query(max_length=63, description="admins only: another user's conversations")]


def namespaces_for(state: ServerState, user: CurrentUser, as_user: str | None) -> list[str]:
    """The namespaces a request reads: the user's own (all of them), or (admins only) ``as_user``'s; 403
    for a non-admin naming another user, 400 for an invalid name."""
    if as_user is None or as_user == user.name:
        return readable_namespaces(state, user.name)
    if not user.is_admin:
        raise HTTPException(403, "Only an admin can read another user's conversations.")
    try:
        return readable_namespaces(state, check_name(as_user))
    except UserError as error:
        raise HTTPException(400, str(error)) from error


class ConversationOut(BaseModel):
    """One conversation in a list."""

    id: str
    started_at: str
    updated_at: str
    turns: int
    title: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class ConversationPage(BaseModel):
    """A page of conversations: ``data``, the ``total`` matching, and the page asked for."""

    data: list[ConversationOut]
    total: int
    limit: int
    offset: int


class TurnOut(BaseModel):
    """One turn: role, text, time, model, usage (tokens and USD)."""

    id: str
    role: str
    content: str
    created_at: str
    model: str | None
    usage: dict[str, Any] | None


class ConversationDetail(BaseModel):
    """A conversation with its turns, oldest first."""

    id: str
    turns: list[TurnOut]


@router.get("", response_model=ConversationPage, summary="My conversations, newest first")
async def list_conversations(
    user: User,
    state: State,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    q: Annotated[str | None, Query(max_length=200, description="only those with a turn containing q")] = None,
    as_user: AsUser = None,
) -> ConversationPage:
    """The signed-in user's conversations by last activity, newest first (an admin may name ``as_user``)."""
    namespaces = await anyio.to_thread.run_sync(namespaces_for, state, user, as_user)
    found = await anyio.to_thread.run_sync(state.logbook.conversations, namespaces, q)
    page = [ConversationOut(**vars(summary)) for summary in found[offset : offset + limit]]
    return ConversationPage(data=page, total=len(found), limit=limit, offset=offset)


@router.get("/{conversation_id}", response_model=ConversationDetail, summary="One of my conversations")
async def get_conversation(
    conversation_id: ConversationId, user: User, state: State, as_user: AsUser = None
) -> ConversationDetail:
    """The turns of one of the user's conversations; 404 when it is not theirs, unknown or deleted."""
    namespaces = await anyio.to_thread.run_sync(namespaces_for, state, user, as_user)
    turns = await anyio.to_thread.run_sync(state.logbook.conversation, namespaces, conversation_id)
    if not turns:
        raise HTTPException(404, f"No conversation {conversation_id!r}.")
    return ConversationDetail(
        id=conversation_id,
        turns=[
            TurnOut(id=t.id, role=t.role, content=t.content, created_at=t.created_at, model=t.model, usage=t.usage)
            for t in turns
        ],  # fmt: skip
    )


@router.delete("/{conversation_id}", status_code=204, summary="Delete one of my conversations")
async def delete_conversation(conversation_id: ConversationId, user: User, state: State) -> Response:
    """Publish a tombstone for the conversation: it is gone from every read of this user (the log keeps
    it until an admin purges it); 404 when it is not theirs, unknown or already deleted."""
    namespaces = await anyio.to_thread.run_sync(readable_namespaces, state, user.name)
    if not await anyio.to_thread.run_sync(state.logbook.delete, namespaces, conversation_id):
        raise HTTPException(404, f"No conversation {conversation_id!r}.")
    return Response(status_code=204)
