"""``POST /v1/users``: open registration, off by default (``MY_LLM_OPEN_REGISTRATION=on`` turns it on).
When it is off, users are made by an admin with ``my-llm-server users add``."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from my_llm import MyLLMError
from server.deps import State
from server.users import add_user, create_key

router = APIRouter(tags=["users"])


class Registration(BaseModel):
    """A new user's name and password."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    password: Annotated[str, Field(min_length=8, max_length=1024)]


class Registered(BaseModel):
    """The new user and their first API key (shown once)."""

    name: str
    api_key: str


@router.post("/users", status_code=201, response_model=Registered, summary="Register (when open registration is on)")
async def register(body: Registration, state: State) -> Registered:
    """Create a user and their first key; 403 when open registration is off, 409 when the name is taken."""
    if not state.config.open_registration:
        raise HTTPException(403, "Open registration is off: ask an admin (my-llm-server users add NAME).")

    def make() -> str:
        with state.sessions() as session:
            add_user(session, body.name, password=body.password)
            return create_key(session, body.name)

    try:
        key = await anyio.to_thread.run_sync(make)
    except MyLLMError as error:
        status = 409 if "exists" in str(error) else 400
        raise HTTPException(status, str(error)) from error
    return Registered(name=body.name, api_key=key)
