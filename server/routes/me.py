"""``GET /v1/me``: who the key belongs to (a cheap way for a client to check its key)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from server.deps import User

router = APIRouter(tags=["users"])


class MeOut(BaseModel):
    """The signed-in user."""

    name: str
    is_admin: bool
    namespace: str


@router.get("/me", response_model=MeOut, summary="The owner of this key")
async def me(user: User) -> MeOut:
    """Name, admin flag and message-log namespace of the key's user."""
    return MeOut(name=user.name, is_admin=user.is_admin, namespace=user.namespace)
