"""The bodies of ``/v1/code`` and its continuations (requests and responses), shared by the REST routes and
the service (:mod:`server.codegen`), so ``/docs`` is the contract."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from code_generation import Attempt, DiagramAttempt, UsageReport

OUTPUT_CHARS = 4000
STREAM_FIELD = Field(
    description="answer as Server-Sent Events (token, attempt, done, error); "
    "default: when the Accept header asks for text/event-stream"
)


class CodeRequest(BaseModel):
    """What to write: a description, optional pytest/unittest file text, the target and the model.

    ``target``: ``python`` (a module, tested in the sandbox when ``tests`` are given) or ``plantuml`` (a diagram
    of the described scenario, rendered to SVG; PlantUML's syntax errors go back to the model like failing
    tests; ``tests`` and ``module`` do not apply). A new target is added here and in
    :data:`server.code_targets.TARGETS`.
    """

    description: Annotated[str, Field(min_length=1, max_length=20_000)]
    tests: Annotated[str | None, Field(max_length=200_000)] = None
    target: Literal["python", "plantuml"] = "python"
    model: Annotated[
        str | None, Field(max_length=200, description="provider:model or local; default from settings")
    ] = None
    module: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,40}$")] = "solution"
    max_retries: Annotated[int, Field(ge=0, le=4)] = 2
    stream: Annotated[bool | None, STREAM_FIELD] = None

    @model_validator(mode="after")
    def _tests_are_for_python(self) -> CodeRequest:
        if self.target != "python" and self.tests is not None:
            raise ValueError(f"tests apply to target python only, not {self.target}")
        return self

    def stored(self) -> dict:
        """The request as it is kept in the log (``stream`` is how it was answered, not what was asked)."""
        return self.model_dump(exclude={"stream"})


class RegenerateRequest(BaseModel):
    """A fresh answer to the conversation's request (the body is optional)."""

    stream: Annotated[bool | None, STREAM_FIELD] = None


class FeedbackRequest(BaseModel):
    """What to change in the last version's code."""

    text: Annotated[str, Field(min_length=1, max_length=20_000, description="the feedback on the last version")]
    stream: Annotated[bool | None, STREAM_FIELD] = None


class UsageOut(BaseModel):
    """Tokens, requests and USD (null when a price is unknown)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    cost_usd: float | None = 0.0

    @classmethod
    def of(cls, report: UsageReport) -> UsageOut:
        """From create-script's :class:`code_generation.UsageReport`."""
        return cls(prompt_tokens=report.prompt_tokens, completion_tokens=report.completion_tokens,
                   requests=report.successful_requests, cost_usd=report.cost_usd)  # fmt: skip

    def __add__(self, other: UsageOut) -> UsageOut:
        cost = None if self.cost_usd is None or other.cost_usd is None else round(self.cost_usd + other.cost_usd, 8)
        return UsageOut(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            requests=self.requests + other.requests,
            cost_usd=cost,
        )


class AttemptOut(BaseModel):
    """One attempt of the loop: its code and its test run (output: the last 4,000 characters, secrets redacted).

    For a diagram: ``code`` is the attempt's PlantUML source, ``ok`` whether it rendered, ``reason`` why not
    (``Syntax Error? at line 3``), ``output`` what the model was told (the refused line and PlantUML's
    message), ``passed`` and ``failed`` 0 (there are no tests).
    """

    number: int
    code: str
    passed: int
    failed: int
    ok: bool
    reason: str | None
    output: str

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        """From one of create-script's attempts."""
        run = attempt.run
        return cls(number=attempt.number, code=attempt.code, passed=run.passed, failed=run.failed, ok=run.ok,
                   reason=run.reason, output=run.output[-OUTPUT_CHARS:])  # fmt: skip

    @classmethod
    def of_diagram(cls, attempt: DiagramAttempt) -> AttemptOut:
        """From one attempt of the diagram loop (:func:`code_generation.generate_diagram`)."""
        return cls(number=attempt.number, code=attempt.source, passed=0, failed=0, ok=attempt.ok,
                   reason=attempt.reason or None, output=attempt.output[-OUTPUT_CHARS:])  # fmt: skip


class CodeOut(BaseModel):
    """One version of a conversation's answer: the best code, whether it passed (null without tests), every
    attempt, this version's usage and the conversation's total over every version so far.

    For target ``plantuml``: ``code`` is the diagram's PlantUML source (a ``.puml`` file), ``ok`` whether it
    rendered, and ``svg`` the rendered SVG document.
    """

    conversation: str
    version: Annotated[int, Field(ge=1, description="1 for the first answer, then 2, 3, ... per regenerate/feedback")]
    code: str
    ok: bool | None
    attempts: list[AttemptOut]
    usage: UsageOut
    total_usage: UsageOut
    target: Literal["python", "plantuml"] = "python"
    svg: Annotated[
        str | None,
        Field(description="target plantuml: the rendered SVG document (null for python, or when no attempt rendered)"),
    ] = None
