"""The versions of a code conversation, read back from its log (what ``/code/{id}`` shows): each version's
action (new, regenerate, feedback), the feedback text, the code (or PlantUML source), whether it passed or
rendered, its number of attempts and its usage. The log's shape is :mod:`server.codegen`'s."""

from __future__ import annotations

from dataclasses import dataclass

from server.code_schemas import CodeRequest, UsageOut
from server.codegen import REQUEST_EVENT, RESULT_EVENT, UnknownConversationError, usage_of
from server.logbook import Logbook


@dataclass(frozen=True)
class CodeVersion:
    """One version.

    Attributes:
        version: 1, 2, ... in the order they were asked for.
        action: ``new``, ``regenerate`` or ``feedback``.
        feedback: the feedback text (None unless ``action`` is ``feedback``).
        code: the best code, or the diagram's PlantUML source ("" when the version failed before giving any).
        ok: tests passed / the diagram rendered; None without tests, or when the version never finished.
        attempts: the number of attempts (0 when the version never finished).
        finished: a result was logged (False: the request failed, or is still running).
        usage: the version's tokens, requests and USD.
        created_at: when it was asked for (ISO 8601, UTC).
    """

    version: int
    action: str
    feedback: str | None
    code: str
    ok: bool | None
    attempts: int
    finished: bool
    usage: UsageOut
    created_at: str


@dataclass(frozen=True)
class CodeConversation:
    """A code conversation: its original request, its versions (oldest first) and the summed usage."""

    conversation: str
    request: CodeRequest
    versions: list[CodeVersion]
    total_usage: UsageOut


def read_code_conversation(logbook: Logbook, namespace: str, conversation: str) -> CodeConversation:
    """The code conversation ``conversation`` of ``namespace``, from its log (blocking: reads the file).

    Raises:
        UnknownConversationError: no code conversation of that id in ``namespace`` (or it was deleted).
    """
    records = [r for r in logbook.records(namespace) if r.session_id == conversation]
    requests = [r for r in records if r.metadata.get("event") == REQUEST_EVENT]
    if not requests:
        raise UnknownConversationError(f"No code conversation {conversation!r}.")
    results = {r.metadata["code"].get("version"): r for r in records if r.metadata.get("event") == RESULT_EVENT}
    versions = []
    for opening in requests:
        about = opening.metadata["code"]
        number = int(about.get("version", 0))
        result = results.get(number)
        outcome = result.metadata["code"] if result else {}
        replies = [r for r in records if r.metadata.get("code_version") == number]
        versions.append(CodeVersion(
            version=number, action=str(about.get("action", "new")), feedback=about.get("feedback"),
            code=result.content if result else "", ok=outcome.get("ok"), attempts=int(outcome.get("attempts", 0)),
            finished=result is not None, usage=usage_of(replies), created_at=opening.created_at,
        ))  # fmt: skip
    request = CodeRequest.model_validate(requests[0].metadata["code"]["request"])
    return CodeConversation(conversation, request, versions, usage_of(records))
