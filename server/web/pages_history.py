"""History pages: ``/history`` (my conversations over all my namespaces, newest first, with a search box and
pages of ``PAGE_SIZE``), ``/conversation?ns=&id=`` (its turns with model, tokens and USD), and its deletion
after a confirmation page (``GET`` then ``POST /conversation/delete``, CSRF-checked). Reads and deletes go
through :class:`server.logbook.Logbook`, as ``/v1/conversations`` does; a conversation in a namespace that is
not the user's is a 404 page, like an unknown one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from my_llm import Record
from server.deps import CurrentUser, ServerState, State
from server.logbook import ConversationSummary, summarise
from server.users import owns_namespace
from server.web.auth import CsrfChecked, PageError, PageUser, user_namespaces
from server.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
Text = Annotated[str, Query(max_length=200)]


@dataclass(frozen=True)
class Listed:
    """A conversation in the list: its namespace and its summary."""

    namespace: str
    summary: ConversationSummary


def list_conversations(state: ServerState, user: CurrentUser, query: str | None) -> list[Listed]:
    """Every conversation of the user's namespaces containing ``query`` (all when empty), newest first."""
    found = [
        Listed(namespace, summary)
        for namespace in user_namespaces(state, user)
        for summary in state.logbook.conversations(namespace, query or None)
    ]
    return sorted(found, key=lambda item: item.summary.updated_at, reverse=True)


def _own_turns(state: ServerState, user: CurrentUser, namespace: str, conversation: str) -> list[Record]:
    if not owns_namespace(user.name, namespace):
        return []
    return state.logbook.conversation(namespace, conversation)


async def _turns_or_404(state: ServerState, user: CurrentUser, namespace: str, conversation: str) -> list[Record]:
    turns = await anyio.to_thread.run_sync(_own_turns, state, user, namespace, conversation)
    if not turns:
        raise PageError(404, f"No conversation {conversation!r} in your history (it may have been deleted).")
    return turns


@router.get("/history")
async def history(
    request: Request, user: PageUser, state: State, q: Text = "", page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> Response:
    """My conversations, newest first; ``q`` keeps those with a turn containing it (case-insensitive)."""
    found = await anyio.to_thread.run_sync(list_conversations, state, user, q.strip())
    shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    more = len(found) > page * PAGE_SIZE
    return render(
        request, "history.html", user, q=q, page=page, more=more, total=len(found), conversations=shown,
        main_namespace=user.namespace, deleted=request.query_params.get("deleted") == "1",
    )  # fmt: skip


@router.get("/conversation")
async def conversation(request: Request, user: PageUser, state: State, id: Text, ns: Text = "") -> Response:
    """One conversation's turns, oldest first, with each reply's model, tokens and USD, and the totals."""
    namespace = ns or user.namespace
    turns = await _turns_or_404(state, user, namespace, id)
    summary = summarise(id, turns)
    return render(request, "conversation.html", user, namespace=namespace, turns=turns, summary=summary)


@router.get("/conversation/delete")
async def confirm_delete(request: Request, user: PageUser, state: State, id: Text, ns: Text = "") -> Response:
    """The confirmation page: what will be deleted, a Delete button (a CSRF-checked form) and Cancel."""
    namespace = ns or user.namespace
    turns = await _turns_or_404(state, user, namespace, id)
    return render(request, "confirm_delete.html", user, namespace=namespace, summary=summarise(id, turns))


@router.post("/conversation/delete", dependencies=[CsrfChecked])
async def delete(request: Request, user: PageUser, state: State) -> Response:
    """Delete the conversation (a tombstone in its log, as ``DELETE /v1/conversations/{id}``), back to the
    history; a 404 page when it is not the user's or already gone."""
    form = await request.form()
    conversation_id, namespace = form.get("id"), form.get("ns") or user.namespace
    if not isinstance(conversation_id, str) or not isinstance(namespace, str) or not conversation_id:
        raise PageError(400, "The form names no conversation to delete.")
    if not owns_namespace(user.name, namespace) or not await anyio.to_thread.run_sync(
        state.logbook.delete, namespace, conversation_id
    ):
        raise PageError(404, f"No conversation {conversation_id!r} in your history (it may have been deleted).")
    return RedirectResponse("/history?deleted=1", status_code=303)
