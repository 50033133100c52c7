"""Code generation as a service, for the REST routes (:mod:`server.routes.code`) and the web pages alike:
start a conversation, regenerate its answer, refine it with feedback; each blocking call returns a
:class:`CodeOut`, and :meth:`CodeService.stream` yields the same work as events.

    service = CodeService(settings, logbook, guard_mode="rules")
    first = service.start("user-alice", CodeRequest(description="..."))       # version 1
    again = service.regenerate("user-alice", first.conversation)              # version 2
    better = service.feedback("user-alice", first.conversation, "use a set")  # version 3

Each call is two steps: ``prepare_*`` checks everything that can be refused before any work (the prompt guard,
the model spec, the sandbox, the conversation: :class:`CodeServiceError` or the library's errors), then
:meth:`CodeService.run` or :meth:`CodeService.stream` does it. :func:`failure_of` says what an error means
(HTTP status, type, message).

The log (the user's namespace; session = conversation): each version starts with a ``system`` record,
``metadata = {"event": "code_request", "code": {"version", "action", "request", "feedback"}}`` (the original
request, so regenerate and feedback can rebuild it from the log alone), then the writer's turns (each with
``metadata.code_version``), then a ``system`` record holding the best code, ``{"event": "code_result",
"code": {"version", "ok", "attempts"}}``. Events are not turns: ``GET /v1/conversations/{id}`` shows the
prompts and replies only. A deleted conversation (tombstone) is unknown here, like another user's.

Version numbers are unique across threads and processes sharing the data folder (``uvicorn --workers N``, or
servers behind a load balancer): a regenerate or feedback takes the namespace's lock file
(``<MESSAGE_HISTORY>/<namespace>/code_versions.lock``, :mod:`filelock`), reads the highest version logged, and
logs the next one's ``code_request`` record before letting go; so the record is logged when the request is
accepted (after every check that can refuse it), not when its work starts. Version 1 is a new conversation's
(a fresh id), logged when its work starts.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from filelock import FileLock, Timeout

from code_generation import (
    CodeGenerationError,
    DiagramSyntaxError,
    ModelRequestError,
    PlantUMLError,
    SandboxUnavailableError,
)
from my_llm import (
    ConfigError,
    ModelCallError,
    ModelUnavailableError,
    MyLLMError,
    PubSubChatMessageHistory,
    Record,
    Settings,
    get_chat_model,
)
from server.code_schemas import CodeOut, CodeRequest, UsageOut
from server.code_targets import TARGETS, Brief, Emit, Written
from server.guard import Verdict, check_injection, check_prompt
from server.logbook import Logbook

log = logging.getLogger(__name__)

ISSUE_LOCK = "code_versions.lock"  # in the namespace's folder: held while a version number is handed out
ISSUE_WAIT_S = 30.0
SOURCE = "create_script"  # the records' source
REQUEST_EVENT = "code_request"
RESULT_EVENT = "code_result"
Event = tuple[str, dict[str, Any]]  # (name, data): token, attempt, done, error


class CodeServiceError(Exception):
    """A request the service refuses; ``status`` is its HTTP meaning."""

    status = 400


class PromptRefusedError(CodeServiceError):
    """The prompt guard refused the description or the feedback (the message says why)."""

    status = 422


class UnknownConversationError(CodeServiceError):
    """No code conversation of that id in the namespace (never one, another user's, or deleted)."""

    status = 404


class NothingToRefineError(CodeServiceError):
    """Feedback on a conversation whose versions all failed before giving code."""

    status = 409


class VersionBusyError(CodeServiceError):
    """No version number within :data:`ISSUE_WAIT_S` seconds: another thread or process held the lock."""

    status = 503


@dataclass(frozen=True)
class Failure:
    """What an error means to a client: HTTP status, OpenAI-style error type, message."""

    status: int
    type: str
    message: str


_KINDS = {400: "invalid_request_error", 404: "not_found_error", 409: "conflict_error", 422: "invalid_request_error",
          502: "upstream_error", 503: "service_unavailable"}  # fmt: skip


def failure_of(error: BaseException) -> Failure | None:
    """The meaning of an error raised by the service, or None for an unexpected one (a bug)."""
    if isinstance(error, CodeServiceError):
        status = error.status
    elif isinstance(error, ModelRequestError | ModelCallError):
        status = 502
    elif isinstance(error, SandboxUnavailableError) or (
        isinstance(error, PlantUMLError) and not isinstance(error, DiagramSyntaxError)
    ):  # no sandbox, or no renderer (Java, the PlantUML jar), or a renderer that failed
        status = 503
    elif isinstance(error, ConfigError | ModelUnavailableError | CodeGenerationError):
        status = 400
    elif isinstance(error, MyLLMError):  # a log that cannot be written
        status = 503
    else:
        return None
    return Failure(status, _KINDS[status], str(error))


@dataclass(frozen=True)
class Job:
    """One version to write, checked and ready: where it is logged, what it is, what came before."""

    namespace: str
    conversation: str
    version: int
    action: str  # new, regenerate or feedback
    brief: Brief
    feedback: str | None
    earlier_usage: UsageOut
    logged: bool = False  # its code_request record is in the log already (written as its number was issued)


@dataclass(frozen=True)
class _Conversation:
    """What the log says about a conversation: its request, last code, usage so far."""

    request: CodeRequest
    last_code: str | None
    usage: UsageOut


class _VersionHistory(PubSubChatMessageHistory):
    """The conversation's history for one version: every record it adds carries ``metadata.code_version``."""

    def __init__(self, namespace: str, conversation: str, version: int, settings: Settings) -> None:
        super().__init__(namespace, conversation, source=SOURCE, settings=settings)
        self.version = version

    def add_records(self, records: Sequence[Record]) -> None:
        super().add_records([replace(r, metadata={**r.metadata, "code_version": self.version}) for r in records])


class CodeService:
    """Writes code for a user's namespace (see the module's docstring).

    Args:
        settings: my_llm's settings (models, ``MESSAGE_HISTORY``).
        logbook: reads the logs (conversations, tombstones).
        guard_mode: the prompt guard, ``off``, ``rules`` or ``model`` (see :mod:`server.guard`).
    """

    def __init__(self, settings: Settings, logbook: Logbook, guard_mode: str = "rules") -> None:
        self.settings, self.logbook, self.guard_mode = settings, logbook, guard_mode

    # -- the three actions, blocking -------------------------------------------------------------------------

    def start(self, namespace: str, request: CodeRequest) -> CodeOut:
        """Version 1 of a new conversation; see :meth:`prepare_new` and :meth:`run` for errors."""
        return self.run(self.prepare_new(namespace, request))

    def regenerate(self, namespace: str, conversation: str) -> CodeOut:
        """A fresh answer to the conversation's request, as its next version."""
        return self.run(self.prepare_regenerate(namespace, conversation))

    def feedback(self, namespace: str, conversation: str, text: str) -> CodeOut:
        """The last version's code changed as ``text`` asks, as the next version."""
        return self.run(self.prepare_feedback(namespace, conversation, text))

    # -- step 1: check, before any work ----------------------------------------------------------------------

    def prepare_new(self, namespace: str, request: CodeRequest) -> Job:
        """Check a new request (blocking: ``model`` guard mode asks the chat model).

        A diagram's scenario (target ``plantuml``) is checked for prompt injections only: it is not a coding
        task, and need not be.

        Raises:
            PromptRefusedError: the guard refused the description.
            ModelUnavailableError, ConfigError: a bad model spec.
            SandboxError: the module name is one of Python's (tests only).
            SandboxUnavailableError: tests were given and bubblewrap cannot run here.
            PlantUMLUnavailableError: target ``plantuml`` and Java, the PlantUML jar or bubblewrap is missing.
        """
        chat = get_chat_model(request.model, self.settings)
        target = TARGETS[request.target]
        if target.coding_guard:
            verdict = check_prompt(request.description, self.guard_mode, chat)
        else:
            verdict = check_injection(request.description) if self.guard_mode != "off" else Verdict(True, source="off")
        if not verdict.allowed:
            raise PromptRefusedError(verdict.reason)
        target.check(request)
        brief = Brief(request.description, request, chat)
        return Job(namespace, uuid.uuid4().hex, 1, "new", brief, None, UsageOut())

    def prepare_regenerate(self, namespace: str, conversation: str) -> Job:
        """Check a regenerate: the conversation must be the namespace's (see :meth:`prepare_new` for errors).

        Raises:
            UnknownConversationError: no such code conversation in ``namespace`` (or it was deleted).
        """
        found = self._read(namespace, conversation)
        chat = get_chat_model(found.request.model, self.settings)
        TARGETS[found.request.target].check(found.request)
        brief = Brief(found.request.description, found.request, chat)
        return self._issue(Job(namespace, conversation, 0, "regenerate", brief, None, found.usage))

    def prepare_feedback(self, namespace: str, conversation: str, text: str) -> Job:
        """Check feedback: the injection rules only (unless the guard is off), then as :meth:`prepare_regenerate`.

        Raises:
            PromptRefusedError: the feedback looks like a prompt injection.
            UnknownConversationError: see :meth:`prepare_regenerate`.
            NothingToRefineError: no version of the conversation gave code yet.
        """
        if self.guard_mode != "off":
            verdict = check_injection(text)
            if not verdict.allowed:
                raise PromptRefusedError(verdict.reason)
        found = self._read(namespace, conversation)
        if not found.last_code:
            raise NothingToRefineError(f"Conversation {conversation!r} has no code to refine yet: regenerate it.")
        chat = get_chat_model(found.request.model, self.settings)
        target = TARGETS[found.request.target]
        target.check(found.request)
        brief = Brief(target.refine(found.request, found.last_code, text), found.request, chat)
        return self._issue(Job(namespace, conversation, 0, "feedback", brief, text, found.usage))

    # -- step 2: the work -------------------------------------------------------------------------------------

    def run(self, job: Job) -> CodeOut:
        """Write the version (blocking; run it in a worker thread from async code).

        Raises:
            ModelRequestError: the model failed. CodeGenerationError, SandboxError: see
            :func:`code_generation.generate_script`. StoreError: the log could not be written.
        """
        return self._execute(job, None)

    def stream(self, job: Job) -> Iterator[Event]:
        """Write the version in a worker thread, yielding ``(event, data)`` as it goes: ``token``
        (``{"text"}``, the reply's text deltas), ``attempt`` (each test run, tests only), then ``done``
        (the :class:`CodeOut` as JSON) or ``error`` (``{"message", "type"}``), and nothing after.

        Closing the iterator early (a client gone) stops the work at its next token.
        """
        events: queue.Queue[Event | None] = queue.Queue()
        cancelled = threading.Event()

        def emit(name: str, data: dict[str, Any]) -> None:
            if cancelled.is_set():
                raise _Cancelled
            events.put((name, data))

        def work() -> None:
            try:
                events.put(("done", self._execute(job, emit).model_dump()))
            except _Cancelled:
                pass
            except Exception as error:  # a stream cannot change its status: every failure becomes an event
                failure = failure_of(error)
                if failure is None:
                    log.exception("code generation failed in conversation %s", job.conversation)
                    failure = Failure(500, "api_error", "The server failed while writing code; see its log.")
                events.put(("error", {"message": failure.message, "type": failure.type}))
            finally:
                events.put(None)

        threading.Thread(target=work, name=f"code-{job.conversation[:12]}", daemon=True).start()
        try:
            while (item := events.get()) is not None:
                yield item
        finally:
            cancelled.set()

    # -- parts ------------------------------------------------------------------------------------------------

    def _execute(self, job: Job, emit: Emit | None) -> CodeOut:
        history = _VersionHistory(job.namespace, job.conversation, job.version, self.settings)
        try:
            if not job.logged:
                history.add_records([_opening(job)])
            written: Written = TARGETS[job.brief.request.target].write(job.brief, history, emit)
            result = {"event": RESULT_EVENT, "code": {"version": job.version, "ok": written.ok,
                                                     "attempts": len(written.attempts)}}  # fmt: skip
            history.add_records([history.new_record("system", written.code, metadata=result)])
        finally:
            history.close(timeout=5.0)
        usage = UsageOut.of(written.usage)
        return CodeOut(conversation=job.conversation, version=job.version, code=written.code, ok=written.ok,
                       attempts=written.attempts, usage=usage, total_usage=job.earlier_usage + usage,
                       target=job.brief.request.target, svg=written.svg)  # fmt: skip

    def _issue(self, job: Job) -> Job:
        """``job`` with the conversation's next version number, its ``code_request`` record logged: under the
        namespace's lock file (one issuer at a time, any thread of any process), the number after the highest
        the log holds, written to the log before the lock is let go, so the next issuer reads it there.

        Raises:
            UnknownConversationError: the conversation was deleted meanwhile.
            VersionBusyError: the lock was not had within :data:`ISSUE_WAIT_S` seconds.
            StoreError: the log could not be written.
        """
        history = self.logbook.history(job.namespace)
        history.store.folder.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(history.store.folder / ISSUE_LOCK), timeout=ISSUE_WAIT_S):
                mine = (r for r in self.logbook.records(job.namespace) if r.session_id == job.conversation)
                versions = [
                    r.metadata["code"].get("version", 0) for r in mine if r.metadata.get("event") == REQUEST_EVENT
                ]
                if not versions:
                    raise UnknownConversationError(f"No code conversation {job.conversation!r}.")
                issued = replace(job, version=max(int(v) for v in versions) + 1, logged=True)
                history.add_records([_opening(issued)])
        except Timeout as error:
            raise VersionBusyError(
                f"Too many code requests at once (no version number within {ISSUE_WAIT_S:g} s): try again."
            ) from error
        return issued

    def _read(self, namespace: str, conversation: str) -> _Conversation:
        records = [r for r in self.logbook.records(namespace) if r.session_id == conversation]
        requests = [r for r in records if r.metadata.get("event") == REQUEST_EVENT]
        if not requests:
            raise UnknownConversationError(f"No code conversation {conversation!r}.")
        request = CodeRequest.model_validate(requests[0].metadata["code"]["request"])
        results = [r for r in records if r.metadata.get("event") == RESULT_EVENT]
        last_code = next((r.content for r in reversed(results) if r.content.strip()), None)
        return _Conversation(request, last_code, usage_of(records))


def _opening(job: Job) -> Record:
    """The ``code_request`` record that opens ``job``'s version (see the module's docstring)."""
    about = {"version": job.version, "action": job.action, "request": job.brief.request.stored(),
             "feedback": job.feedback}  # fmt: skip
    note = job.feedback if job.action == "feedback" else job.brief.request.description
    metadata = {"event": REQUEST_EVENT, "code": about, "code_version": job.version}
    return Record.new(job.namespace, job.conversation, "system", note or "", source=SOURCE, metadata=metadata)


class _Cancelled(Exception):
    """The stream's reader went away."""


def usage_of(records: Sequence[Record]) -> UsageOut:
    """The summed usage of the AI replies among ``records``."""
    total = UsageOut()
    for record in records:
        if record.role == "ai":
            usage = record.usage or {}
            total = total + UsageOut(prompt_tokens=usage.get("input_tokens") or 0,
                                     completion_tokens=usage.get("output_tokens") or 0, requests=1,
                                     cost_usd=usage.get("cost_usd"))  # fmt: skip
    return total
