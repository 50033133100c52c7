"""``GET /v1/me``: who the key belongs to (a cheap way for a client to check its key)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from pydantic import BaseModel

from server.deps import State, User, readable_namespaces

router = APIRouter(tags=["users"])


class MeOut(BaseModel):
    """The signed-in user: ``namespace`` is where this key's requests are logged, ``namespaces`` what reads
    cover (the user's main namespace first, then their labelled keys' on disk)."""

    name: str
    is_admin: bool
    namespace: str
    namespaces: list[str]


@router.get("/me", response_model=MeOut, summary="The owner of this key")
async def me(user: User, state: State) -> MeOut:
    """Name, admin flag, this key's message-log namespace and the namespaces the user's reads cover."""
    namespaces = await anyio.to_thread.run_sync(readable_namespaces, state, user.name)
    return MeOut(name=user.name, is_admin=user.is_admin, namespace=user.namespace, namespaces=namespaces)
