"""The FastAPI app: every route under ``/v1``, OpenAPI at ``/docs``, errors in OpenAI's shape, a body-size
limit, the upstream HTTP client and the memory's background sync (:class:`server.memory_answers.MemoryFreshener`,
``MY_LLM_MEMORY_SYNC_S``) started and stopped with the app."""

from __future__ import annotations

from contextlib import asynccontextmanager

import anyio
import httpx
from fastapi import APIRouter, FastAPI

from server.config import ServerSettings
from server.db import make_engine, session_factory
from server.deps import ServerState
from server.errors import ErrorResponse, install_error_handlers
from server.limits_mw import BodySizeLimit
from server.memory_answers import MemoryAnswers, MemoryFreshener
from server.routes import code, conversations, me, memory, proxy, register, repos, usage
from server.web import install_web

ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 413, 422, 429)}


def create_app(config: ServerSettings | None = None) -> FastAPI:
    """The app for ``config`` (default: from the environment); the users database is created if missing."""
    config = config or ServerSettings.from_env()
    engine = make_engine(config.database_url)
    state = ServerState.build(config, session_factory(engine))
    answers = MemoryAnswers(state.logbook, config.settings)  # the questions' and the freshener's (same locks)
    freshener = MemoryFreshener(answers, config.memory_sync_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        timeout = httpx.Timeout(config.upstream_timeout_s, connect=config.upstream_connect_timeout_s)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
            state.http = client
            freshener.start()
            try:
                yield
            finally:
                await anyio.to_thread.run_sync(freshener.stop)
                state.logbook.close()
                engine.dispose()

    app = FastAPI(
        title="my-llm-server",
        summary="Users and keys, an OpenAI-compatible logging proxy, history and usage over my_llm.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.server = state
    app.state.memory_answers = answers  # what server.routes.memory.memory_answers finds
    install_error_handlers(app)
    api = APIRouter(prefix="/v1", responses=ERRORS)
    for module in (me, register, proxy, conversations, usage, code, memory, repos):
        api.include_router(module.router)
    app.include_router(api)
    install_web(app, state)  # the pages (/signin, /history, /usage, ...) and /static
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    return app
