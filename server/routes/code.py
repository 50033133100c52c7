"""``POST /v1/code``: code from a description (the seeds' main page, as an API). With ``tests``, the
create-script loop (:func:`code_generation.generate_script`) writes code until the tests pass in its
bubblewrap sandbox and every attempt's result comes back; without, one request. Every turn is logged in the
user's namespace (session = the returned ``conversation``), with tokens and USD.

The prompt guard (:mod:`server.guard`) refuses what is not a coding task with a 422.
Not done yet: streaming (SSE), ``regenerate`` and ``feedback``, ``plantuml``.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, HTTPException
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from code_generation import (
    CodeGenerationError,
    Generation,
    LoopOptions,
    ModelRequestError,
    SandboxUnavailableError,
    UsageReport,
    extract_code,
    generate_script,
)
from my_llm import ConfigError, ModelCallError, ModelUnavailableError, PubSubChatMessageHistory, get_chat_model
from my_llm.models import invoke_model, stamp_reply
from server.deps import CurrentUser, State, User
from server.guard import check_prompt

router = APIRouter(tags=["code"])
OUTPUT_CHARS = 4000


class CodeRequest(BaseModel):
    """What to write: a description, optional pytest/unittest file text, the target and the model."""

    description: Annotated[str, Field(min_length=1, max_length=20_000)]
    tests: Annotated[str | None, Field(max_length=200_000)] = None
    target: Literal["python"] = "python"
    model: Annotated[
        str | None, Field(max_length=200, description="provider:model or local; default from settings")
    ] = None
    module: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,40}$")] = "solution"
    max_retries: Annotated[int, Field(ge=0, le=4)] = 2


class UsageOut(BaseModel):
    """Tokens, requests and USD (null when a price is unknown)."""

    prompt_tokens: int
    completion_tokens: int
    requests: int
    cost_usd: float | None


class AttemptOut(BaseModel):
    """One attempt of the loop: its code and its test run (output trimmed, secrets redacted)."""

    number: int
    code: str
    passed: int
    failed: int
    ok: bool
    reason: str | None
    output: str


class CodeOut(BaseModel):
    """The best code, whether it passed (null without tests), every attempt, the conversation, usage."""

    conversation: str
    code: str
    ok: bool | None
    attempts: list[AttemptOut]
    usage: UsageOut


def _usage(report: UsageReport) -> UsageOut:
    return UsageOut(prompt_tokens=report.prompt_tokens, completion_tokens=report.completion_tokens,
                    requests=report.successful_requests, cost_usd=report.cost_usd)  # fmt: skip


def _from_generation(conversation: str, generation: Generation) -> CodeOut:
    attempts = [
        AttemptOut(
            number=a.number,
            code=a.code,
            passed=a.run.passed,
            failed=a.run.failed,
            ok=a.run.ok,
            reason=a.run.reason,
            output=a.run.output[-OUTPUT_CHARS:],
        )  # fmt: skip
        for a in generation.attempts
    ]
    best = generation.best
    return CodeOut(conversation=conversation, code=best.code, ok=generation.ok, attempts=attempts,
                   usage=_usage(generation.usage))  # fmt: skip


def write_code(state_settings, user: CurrentUser, body: CodeRequest) -> CodeOut:
    """Run the request (blocking: called in a worker thread)."""
    conversation = uuid.uuid4().hex
    chat = get_chat_model(body.model, state_settings)
    history = PubSubChatMessageHistory(user.namespace, conversation, source="create_script", settings=state_settings)
    try:
        if body.tests is None:
            prompt = [HumanMessage(f"Write a Python module `{body.module}.py` that does this:\n\n{body.description}")]
            reply = stamp_reply(invoke_model(chat, prompt), prompt, chat)
            history.add_messages([*prompt, reply])
            usage = UsageReport.of_reply(reply)
            return CodeOut(conversation=conversation, code=extract_code(str(reply.content)), ok=None, attempts=[],
                           usage=_usage(usage))  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="my-llm-code-") as folder:
            output, tests = Path(folder) / f"{body.module}.py", Path(folder) / f"test_{body.module}.py"
            tests.write_text(body.tests, encoding="utf-8")
            options = LoopOptions(max_retries=body.max_retries)
            return _from_generation(
                conversation, generate_script(body.description, output, tests, chat, history, options)
            )
    finally:
        history.close(timeout=5.0)


@router.post("/code", response_model=CodeOut, summary="Code from a description (and tests)")
async def code(body: CodeRequest, user: User, state: State) -> CodeOut:
    """Write code; with tests, the create-script loop in its sandbox. 400 for a bad model spec or test file,
    502 when the model fails, 503 when the sandbox cannot run here; 422 with the reason when the prompt guard
    refuses the description (not a coding task, or a prompt-injection attempt)."""
    verdict = check_prompt(body.description, state.config.prompt_guard)
    if not verdict.allowed:
        raise HTTPException(422, verdict.reason)
    try:
        return await anyio.to_thread.run_sync(write_code, state.config.settings, user, body)
    except (ConfigError, ModelUnavailableError, CodeGenerationError) as error:
        if isinstance(error, ModelRequestError):
            raise HTTPException(502, str(error)) from error
        if isinstance(error, SandboxUnavailableError):
            raise HTTPException(503, str(error)) from error
        raise HTTPException(400, str(error)) from error
    except ModelCallError as error:
        raise HTTPException(502, str(error)) from error
