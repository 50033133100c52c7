"""Diagrams from a scenario: ask the chat model for PlantUML, render it locally, feed PlantUML's errors back.

    from code_generation import DiagramOptions, generate_diagram
    diagram = generate_diagram("A customer orders a book; the shop checks stock and ships it", chat, history)
    diagram.ok, diagram.svg, diagram.source, diagram.usage.cost_usd

The loop of :func:`code_generation.generate_script` with a renderer in place of the tests: each attempt's
source is rendered by :func:`code_generation.plantuml.render_svg` (the PlantUML jar, sandboxed, no network);
when PlantUML refuses it, the next request carries the task, the last diagram and the refused line with
PlantUML's message (Self-Debugging, Chen et al. 2023). Every prompt and reply is logged to the history with
``metadata={"task": "diagram", "step": "diagram", "attempt": N}``, as create-script logs its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from code_generation import diagram_prompts as prompts
from code_generation.diagram_prompts import extract_diagram
from code_generation.errors import CodeGenerationError
from code_generation.loop import ask
from code_generation.plantuml import (
    DiagramSyntaxError,
    RenderLimitError,
    RenderOptions,
    render_svg,
    require_plantuml,
)
from code_generation.usage import UsageReport
from my_llm import PubSubChatMessageHistory

NO_DIAGRAM = "the reply held no PlantUML diagram (@startuml ... @enduml)"


@dataclass(frozen=True)
class DiagramOptions:
    """How the diagram loop runs.

    Attributes:
        max_retries: retries after the first attempt (0 = single shot); at most ``max_retries + 1`` requests.
        render: the limits and isolation of each render (see :class:`code_generation.plantuml.RenderOptions`).
        feedback_chars: cap on the error text sent back per retry, in characters.
    """

    max_retries: int = 2
    render: RenderOptions = field(default_factory=RenderOptions)
    feedback_chars: int = 1000


@dataclass(frozen=True)
class DiagramAttempt:
    """One round.

    Attributes:
        number: 1 for the first request.
        reply: the model's whole reply.
        source: the PlantUML taken from it ("" when it held none).
        ok: the source rendered.
        reason: why not, in a few words ("" when ok): ``syntax error at line 3``, ``no diagram in the reply``,
            ``render stopped: ...``.
        output: what the model was told about this attempt (PlantUML's message with the refused line; "" when ok).
        svg: the rendered SVG document ("" unless ok).
        usage: the request's tokens and USD.
        seconds: wall-clock seconds of the render (0 when nothing was rendered).
    """

    number: int
    reply: str
    source: str
    ok: bool
    reason: str
    output: str
    svg: str
    usage: UsageReport
    seconds: float = 0.0


@dataclass(frozen=True)
class DiagramGeneration:
    """All attempts of one loop, and their summed usage."""

    attempts: tuple[DiagramAttempt, ...]
    usage: UsageReport

    @property
    def best(self) -> DiagramAttempt:
        """The attempt that rendered (the loop stops at the first); else the latest that held a diagram; else
        the latest."""
        return max(self.attempts, key=lambda a: (a.ok, bool(a.source), a.number))

    @property
    def ok(self) -> bool:
        return self.best.ok

    @property
    def first_try(self) -> bool:
        """The first request's diagram rendered."""
        return self.attempts[0].ok

    @property
    def rounds(self) -> int:
        return len(self.attempts)

    @property
    def source(self) -> str:
        """The best attempt's PlantUML source ("" when no reply held one)."""
        return self.best.source

    @property
    def svg(self) -> str:
        """The rendered SVG ("" when no attempt rendered)."""
        return self.best.svg


def render_attempt(number: int, reply: str, usage: UsageReport, options: DiagramOptions) -> DiagramAttempt:
    """Extract and render one reply's diagram; a refusal or a stopped render is a failed attempt, not an error.

    Raises:
        PlantUMLUnavailableError: Java, the jar or bubblewrap went missing.
    """
    source = extract_diagram(reply)
    if not source:
        return DiagramAttempt(number, reply, "", False, "no diagram in the reply", NO_DIAGRAM, "", usage)
    started = time.monotonic()
    try:
        svg = render_svg(source, options.render)
    except DiagramSyntaxError as error:
        where = f"at line {error.line}" if error.line else "in the source"
        reason, output = f"{error.detail} {where}", error.feedback()
    except RenderLimitError as error:
        reason, output = f"render stopped: {error}", str(error)
    else:
        return DiagramAttempt(number, reply, source, True, "", "", svg, usage, time.monotonic() - started)
    output = output[: options.feedback_chars]
    return DiagramAttempt(number, reply, source, False, reason, output, "", usage, time.monotonic() - started)


def _retry(attempt: DiagramAttempt) -> tuple[AIMessage, HumanMessage]:
    """The last attempt as the model's turn (its diagram, fenced) and the request to fix it."""
    if not attempt.source:
        return AIMessage(attempt.reply), HumanMessage(prompts.no_diagram_request())
    return AIMessage(prompts.fenced(attempt.source)), HumanMessage(prompts.feedback_request(attempt.output))


def generate_diagram(
    description: str,
    chat: BaseChatModel,
    history: PubSubChatMessageHistory,
    options: DiagramOptions | None = None,
    *,
    on_request: Callable[[str, UsageReport], None] | None = None,
    on_attempt: Callable[[DiagramAttempt], None] | None = None,
    on_token: Callable[[str], None] | None = None,
) -> DiagramGeneration:
    """Ask ``chat`` for a PlantUML diagram of ``description`` until it renders or the retries run out.

    ``on_request(label, usage)`` and ``on_attempt(attempt)`` report progress (labels ``attempt N``); with
    ``on_token``, each reply is streamed and its text deltas passed to it.

    Raises:
        CodeGenerationError: ``description`` is empty.
        PlantUMLUnavailableError: Java, the PlantUML jar or (when isolated) bubblewrap is missing (checked
            before any request).
        ModelRequestError, StoreError: the model call failed, or the log could not be written (see
            :func:`code_generation.loop.ask`).
    """
    if not description.strip():
        raise CodeGenerationError("The description is empty: say what the diagram should show.")
    options = options or DiagramOptions()
    require_plantuml(options.render)
    opening: list[BaseMessage] = [SystemMessage(prompts.SYSTEM), HumanMessage(prompts.diagram_request(description))]
    sent, unlogged = list(opening), list(opening)
    attempts: list[DiagramAttempt] = []
    for number in range(1, options.max_retries + 2):
        metadata = {"task": "diagram", "step": "diagram", "attempt": number}
        text, usage = ask(chat, history, sent, unlogged, metadata, on_token)
        if on_request:
            on_request(f"attempt {number}", usage)
        attempts.append(render_attempt(number, text, usage, options))
        if on_attempt:
            on_attempt(attempts[-1])
        if attempts[-1].ok:
            break
        previous, retry = _retry(attempts[-1])
        sent, unlogged = [*opening, previous, retry], [retry]  # the previous reply is logged already
    return DiagramGeneration(tuple(attempts), sum((a.usage for a in attempts), UsageReport()))
