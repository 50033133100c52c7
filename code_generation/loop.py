"""The test-driven loop: generate a module, run its tests in the sandbox, feed the failures back, repeat.

Self-Debugging (Chen et al. 2023) and Reflexion (Shinn et al. 2023) show that feeding execution results
back is where the gain is, most of it in the first two rounds; each retry here sends the task, the last
attempt and its trimmed failures (not the whole history), which keeps small context windows enough.
Every prompt and reply goes through :class:`my_llm.PubSubChatMessageHistory`, so the AI records carry the
model, token usage and cost. The test file is never written: its sha256 is checked before and after every
attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, message_chunk_to_message

from code_generation import prompts
from code_generation.errors import ChangedTestFileError, CodeGenerationError, ModelRequestError
from code_generation.extract import extract_code, names_needed_from
from code_generation.folders import file_sha256
from code_generation.isolation import require_bwrap
from code_generation.runners import check_module_name
from code_generation.sandbox import SandboxLimits, SandboxRun, run_tests
from code_generation.usage import UsageReport
from my_llm import ModelCallError, PubSubChatMessageHistory
from my_llm.models import invoke_model, stamp_reply, stream_model, text_of

OnRequest = Callable[[str, UsageReport], None]
OnToken = Callable[[str], None]


@dataclass(frozen=True)
class LoopOptions:
    """How the loop runs.

    Attributes:
        max_retries: retries after the first attempt (0 = single shot); at most ``max_retries + 1`` requests.
        limits: the sandbox's limits for each test run.
        show_tests: put the test file in the first prompt (False: the model sees only failures, as in a
            benchmark with hidden tests).
        feedback_chars: cap on the failure output sent back per retry, in characters.
        plugins: let pytest autoload installed plugins in the sandbox.
        isolate: run tests under bubblewrap (False: ``--unsafe-no-sandbox``, see :mod:`code_generation.sandbox`).
    """

    max_retries: int = 4
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    show_tests: bool = True
    feedback_chars: int = 2000
    plugins: bool = False
    isolate: bool = True


@dataclass(frozen=True)
class Attempt:
    """One round: the model's reply, the code taken from it, its test run, where it was saved, its usage."""

    number: int
    reply: str
    code: str
    run: SandboxRun
    saved_to: Path
    usage: UsageReport


@dataclass(frozen=True)
class Generation:
    """All attempts of one loop, and their summed usage."""

    attempts: tuple[Attempt, ...]
    usage: UsageReport

    @property
    def best(self) -> Attempt:
        """The attempt that passed the most tests (then: fewest failures, then the latest)."""
        return max(self.attempts, key=lambda a: (a.run.ok, a.run.passed, -a.run.failed, a.number))

    @property
    def ok(self) -> bool:
        return self.best.run.ok

    @property
    def rounds(self) -> int:
        return len(self.attempts)


def stream_reply(chat: BaseChatModel, prompt: list[BaseMessage], on_token: OnToken) -> BaseMessage:
    """Stream ``chat``'s reply to ``prompt``, calling ``on_token(text)`` with each non-empty text delta; return
    the whole reply as one message (chunks merged: text, usage and response metadata).

    Raises:
        ModelCallError: the model could not answer, or sent nothing.
    """
    merged = None
    for chunk in stream_model(chat, prompt):
        merged = chunk if merged is None else merged + chunk
        delta = text_of(chunk)
        if delta:
            on_token(delta)
    if merged is None:
        raise ModelCallError("The chat model's stream ended without a reply; try again.")
    return message_chunk_to_message(merged)


def ask(
    chat: BaseChatModel,
    history: PubSubChatMessageHistory,
    sent: list[BaseMessage],
    unlogged: list[BaseMessage],
    metadata: dict[str, Any],
    on_token: OnToken | None = None,
) -> tuple[str, UsageReport]:
    """Send ``sent``; log the ``unlogged`` part of it and the reply (with ``metadata``); return the reply's
    text and usage. With ``on_token``, the reply is streamed and each text delta passed to it.

    Raises:
        ModelRequestError: the model call failed (its error is chained).
        StoreError: the log could not be written.
    """
    try:
        reply = stream_reply(chat, sent, on_token) if on_token else invoke_model(chat, sent)
    except ModelCallError as error:
        raise ModelRequestError(str(error)) from error
    reply = stamp_reply(reply, sent, chat)
    records = [replace(history.to_record(message), metadata=dict(metadata)) for message in [*unlogged, reply]]
    history.add_records(records)
    return text_of(reply), UsageReport.of_reply(reply)


def generate_tests(
    task: str,
    output_file: Path,
    test_file: Path,
    chat: BaseChatModel,
    history: PubSubChatMessageHistory,
    on_request: OnRequest | None = None,
) -> tuple[str, UsageReport]:
    """Ask for a pytest file for ``task``, write it to ``test_file``, return its source and the usage.

    Raises:
        CodeGenerationError: ``test_file`` exists (tests are never overwritten), or the reply held no code.
        ModelRequestError: see :func:`ask`.
    """
    test_file = Path(test_file)
    if test_file.exists():
        raise CodeGenerationError(f"{test_file} exists: create-script never overwrites a test file.")
    messages = [SystemMessage(prompts.TESTS_SYSTEM), HumanMessage(prompts.tests_request(task, output_file, test_file))]
    metadata = {"task": "create_script", "step": "tests", "test_file": test_file.name}
    text, usage = ask(chat, history, messages, messages, metadata)
    if on_request:
        on_request("tests", usage)
    source = extract_code(text)
    if not source:
        raise CodeGenerationError("The model's reply held no Python test file; run again, or write the tests yourself.")
    test_file.parent.mkdir(parents=True, exist_ok=True)
    test_file.write_text(source, encoding="utf-8")
    return source, usage


def _check_unchanged(test_file: Path, expected: str) -> None:
    if file_sha256(test_file) != expected:
        raise ChangedTestFileError(
            f"{test_file} changed while create-script ran (sha256 differs): the results cannot be trusted. "
            "Run again once the test file is final."
        )


def _attempt(
    number: int,
    reply: str,
    paths: tuple[Path, Path, str],
    names: tuple[str, ...],
    options: LoopOptions,
    prepare: Callable[[str], str] | None,
    usage: UsageReport,
) -> Attempt:
    output_file, test_file, test_hash = paths
    code = extract_code(reply, names)
    if code and prepare:
        code = prepare(code)
    saved = output_file.parent / f"generation_{number}.txt"
    saved.write_text(code or reply, encoding="utf-8")
    if not code.strip():
        return Attempt(number, reply, "", SandboxRun.not_run("the reply held no Python code"), saved, usage)
    _check_unchanged(test_file, test_hash)
    output_file.write_text(code, encoding="utf-8")
    run = run_tests(output_file, test_file, options.limits, plugins=options.plugins, isolate=options.isolate)
    _check_unchanged(test_file, test_hash)
    return Attempt(number, reply, code, run, saved, usage)


def _check_before_asking(output_file: Path, test_file: Path, options: LoopOptions) -> None:
    """What would make the loop fail after its first request, checked before it (see :func:`generate_script`)."""
    if not test_file.is_file():
        raise CodeGenerationError(f"The test file {test_file} does not exist.")
    if output_file.resolve() == test_file.resolve():
        raise CodeGenerationError("OUTPUT_FILE and the test file are the same file; the tests are never overwritten.")
    check_module_name(output_file.stem)
    if options.isolate:
        require_bwrap()


def _retry(attempt: Attempt, output_file: Path, options: LoopOptions) -> tuple[AIMessage, HumanMessage]:
    """The last attempt as the model's turn (its code, fenced) and the request to fix it."""
    if not attempt.code:
        return AIMessage(attempt.reply), HumanMessage(prompts.no_code_request(output_file))
    feedback = attempt.run.feedback(options.feedback_chars)
    return AIMessage(prompts.fenced(attempt.code)), HumanMessage(prompts.feedback_request(feedback, output_file))


def generate_script(
    task: str,
    output_file: Path,
    test_file: Path,
    chat: BaseChatModel,
    history: PubSubChatMessageHistory,
    options: LoopOptions | None = None,
    *,
    prepare: Callable[[str], str] | None = None,
    on_request: OnRequest | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    on_token: OnToken | None = None,
) -> Generation:
    """Generate ``output_file`` until ``test_file`` passes or the retries run out.

    Each attempt's code is saved as ``generation_N.txt`` beside ``output_file``, written to
    ``output_file`` and tested in the sandbox; at the end ``output_file`` holds the best attempt.
    ``prepare`` may rewrite extracted code before it is tested (a benchmark adds its imports);
    ``on_request(label, usage)`` and ``on_attempt(attempt)`` report progress; with ``on_token(text)``, each
    reply is streamed and its text deltas passed on as they come (an exception it raises stops the loop).

    Raises:
        CodeGenerationError: the test file is missing or is ``output_file`` itself.
        SandboxError: ``output_file``'s name is a module of Python's or the test runner's (``json.py``).
        SandboxUnavailableError: ``options.isolate`` and bubblewrap cannot run here (checked before any request).
        ChangedTestFileError: the test file changed during an attempt.
        ModelRequestError, SandboxError, StoreError: see :func:`ask` and :func:`run_tests`.
    """
    options = options or LoopOptions()
    output_file, test_file = Path(output_file), Path(test_file)
    _check_before_asking(output_file, test_file, options)
    test_source = test_file.read_text(encoding="utf-8")
    names = names_needed_from(test_source, output_file.stem)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    shown = test_source if options.show_tests else None
    opening = [
        SystemMessage(prompts.SYSTEM),
        HumanMessage(prompts.code_request(task, output_file, test_file, shown, names)),
    ]
    sent, unlogged = list(opening), list(opening)
    paths = (output_file, test_file, file_sha256(test_file))
    attempts: list[Attempt] = []
    for number in range(1, options.max_retries + 2):
        metadata = {"task": "create_script", "step": "code", "attempt": number, "output_file": output_file.name}
        text, usage = ask(chat, history, sent, unlogged, metadata, on_token)
        if on_request:
            on_request(f"attempt {number}", usage)
        attempts.append(_attempt(number, text, paths, names, options, prepare, usage))
        if on_attempt:
            on_attempt(attempts[-1])
        if attempts[-1].run.ok:
            break
        previous, retry = _retry(attempts[-1], output_file, options)
        sent, unlogged = [*opening, previous, retry], [retry]  # the previous reply is logged already
    total = sum((a.usage for a in attempts), UsageReport())
    generation = Generation(tuple(attempts), total)
    if generation.best.code:
        output_file.write_text(generation.best.code, encoding="utf-8")
    return generation


def limit_reply_tokens(chat: BaseChatModel, max_tokens: int | None) -> BaseChatModel:
    """A copy of ``chat`` whose replies stop after ``max_tokens`` tokens (``chat`` itself when None or when
    the model has no such setting).

    langchain-openai sends ``max_completion_tokens``, which llama.cpp's OpenAI-compatible server ignores;
    with a custom base URL ``max_tokens`` is sent as well, in ``extra_body``.
    """
    fields = type(chat).model_fields
    if max_tokens is None or "max_tokens" not in fields:
        return chat
    update: dict[str, Any] = {"max_tokens": max_tokens}
    if "extra_body" in fields and getattr(chat, "openai_api_base", None):
        update["extra_body"] = {**(getattr(chat, "extra_body", None) or {}), "max_tokens": max_tokens}
    return chat.model_copy(update=update)
