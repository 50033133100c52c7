"""What ``/v1/code`` can write, one :class:`Target` per ``target``: the one dispatch point of :mod:`server.codegen`.

A writer takes a :class:`Brief` (the task text, the request, the chat model), the conversation's history (every
prompt and reply goes through it, so records carry model, tokens and USD) and an optional ``emit(event, data)``
for streaming (``token`` with ``{"text"}``, ``attempt`` with an :class:`AttemptOut`'s fields), and returns a
:class:`Written`. Targets: ``python`` (a module; create-script's loop when tests are given) and ``plantuml``
(a diagram: :func:`code_generation.generate_diagram`, rendered locally to SVG). To add one: write its
:class:`Target`, add it to :data:`TARGETS` and its name to :class:`server.code_schemas.CodeRequest`'s ``target``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage

from code_generation import (
    DiagramOptions,
    LoopOptions,
    ModelRequestError,
    UsageReport,
    extract_code,
    generate_diagram,
    generate_script,
    require_bwrap,
    require_plantuml,
    stream_reply,
)
from code_generation.diagram_prompts import fenced as fenced_diagram
from code_generation.prompts import fenced
from code_generation.runners import check_module_name
from my_llm import ModelCallError, PubSubChatMessageHistory
from my_llm.models import invoke_model, stamp_reply, text_of
from server.code_schemas import AttemptOut, CodeRequest

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

Emit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Brief:
    """What a writer is asked: ``task`` (the description; for feedback, with the previous code and the
    feedback), the original ``request`` (tests, module, retries) and the ``chat`` model."""

    task: str
    request: CodeRequest
    chat: BaseChatModel


@dataclass(frozen=True)
class Written:
    """A writer's answer: the best code, whether its tests passed (None without tests), the attempts, usage."""

    code: str
    ok: bool | None
    attempts: list[AttemptOut]
    usage: UsageReport
    svg: str | None = None  # the rendered diagram (plantuml)


Writer = Callable[[Brief, PubSubChatMessageHistory, "Emit | None"], Written]


def write_python(brief: Brief, history: PubSubChatMessageHistory, emit: Emit | None) -> Written:
    """A Python module: one request without tests; with tests, create-script's loop in its sandbox.

    Raises:
        ModelRequestError: the model failed.
        CodeGenerationError, SandboxError, SandboxUnavailableError: see :func:`code_generation.generate_script`.
        StoreError: the log could not be written.
    """
    on_token = None if emit is None else (lambda text: emit("token", {"text": text}))
    request = brief.request
    if request.tests is None:
        prompt = [HumanMessage(f"Write a Python module `{request.module}.py` that does this:\n\n{brief.task}")]
        try:
            reply = stream_reply(brief.chat, prompt, on_token) if on_token else invoke_model(brief.chat, prompt)
        except ModelCallError as error:
            raise ModelRequestError(str(error)) from error
        reply = stamp_reply(reply, prompt, brief.chat)
        history.add_messages([*prompt, reply])
        return Written(extract_code(text_of(reply)), None, [], UsageReport.of_reply(reply))
    on_attempt = None if emit is None else (lambda attempt: emit("attempt", AttemptOut.of(attempt).model_dump()))
    with tempfile.TemporaryDirectory(prefix="my-llm-code-") as folder:
        output, tests = Path(folder) / f"{request.module}.py", Path(folder) / f"test_{request.module}.py"
        tests.write_text(request.tests, encoding="utf-8")
        options = LoopOptions(max_retries=request.max_retries)
        generation = generate_script(
            brief.task, output, tests, brief.chat, history, options, on_attempt=on_attempt, on_token=on_token
        )
    attempts = [AttemptOut.of(attempt) for attempt in generation.attempts]
    return Written(generation.best.code, generation.ok, attempts, generation.usage)


def write_plantuml(brief: Brief, history: PubSubChatMessageHistory, emit: Emit | None) -> Written:
    """A PlantUML diagram of the scenario: :func:`code_generation.generate_diagram`'s loop (each reply rendered
    to SVG in its sandbox, PlantUML's errors fed back, at most ``max_retries`` retries). ``code`` is the best
    attempt's source, ``ok`` whether it rendered, ``svg`` the picture (None when no attempt rendered).

    Raises:
        ModelRequestError: the model failed. PlantUMLUnavailableError: Java, the jar or bubblewrap is missing.
        PlantUMLError: PlantUML failed otherwise. StoreError: the log could not be written.
    """
    on_token = None if emit is None else (lambda text: emit("token", {"text": text}))
    on_attempt = None if emit is None else (lambda a: emit("attempt", AttemptOut.of_diagram(a).model_dump()))
    options = DiagramOptions(max_retries=brief.request.max_retries)
    diagram = generate_diagram(brief.task, brief.chat, history, options, on_attempt=on_attempt, on_token=on_token)
    attempts = [AttemptOut.of_diagram(attempt) for attempt in diagram.attempts]
    return Written(diagram.source, diagram.ok, attempts, diagram.usage, diagram.svg or None)


def check_python(request: CodeRequest) -> None:
    """With tests: the module name must not shadow Python's, and the sandbox must run here.

    Raises:
        SandboxError: the module name is one of Python's. SandboxUnavailableError: no bubblewrap.
    """
    if request.tests is not None:
        check_module_name(request.module)
        require_bwrap()


def check_plantuml(_request: CodeRequest) -> None:
    """PlantUML must be able to render here.

    Raises:
        PlantUMLUnavailableError: Java, the PlantUML jar or bubblewrap is missing.
    """
    require_plantuml()


def refine_python(request: CodeRequest, last_code: str, feedback: str) -> str:
    """The task of a feedback version: the description, the last module and what to change."""
    return (
        f"{request.description.strip()}\n\nThe previous version of `{request.module}.py`:\n"
        f"{fenced(last_code)}\n\nChange it as this feedback asks: {feedback.strip()}"
    )


def refine_plantuml(request: CodeRequest, last_code: str, feedback: str) -> str:
    """The scenario of a feedback version: the description, the last diagram and what to change."""
    return (
        f"{request.description.strip()}\n\nThe previous diagram:\n{fenced_diagram(last_code)}\n\n"
        f"Change it as this feedback asks: {feedback.strip()}"
    )


@dataclass(frozen=True)
class Target:
    """One ``target`` of ``/v1/code``.

    Attributes:
        write: writes a version (see the module's docstring).
        check: raises before any work when the request cannot run here (sandbox, renderer).
        refine: ``(request, last code, feedback) -> task`` of a feedback version.
        coding_guard: the prompt guard judges whether the description is a coding task (python); False: the
            injection rules only (a diagram's scenario is not a coding task, and need not be).
    """

    write: Writer
    check: Callable[[CodeRequest], None]
    refine: Callable[[CodeRequest, str, str], str]
    coding_guard: bool = True


TARGETS: dict[str, Target] = {
    "python": Target(write_python, check_python, refine_python),
    "plantuml": Target(write_plantuml, check_plantuml, refine_plantuml, coding_guard=False),
}
