"""One export message's text, by its ``content.content_type``: what a record's ``content`` holds. Pure.

The message's shape (``../shared/data/README.md``, section "chatgpt")::

    message = {"id": str, "author": {"role": "user|assistant|system|tool", "name": str | None},
               "recipient": "all" | "python" | "web.run" | "bio" | ..., "content": {"content_type": str, ...},
               "metadata": {"is_visually_hidden_from_conversation": bool, "is_user_system_message": bool,
                            "content_references": [...], "citations": [...],
                            "aggregate_result": {"messages": [{"message_type": "image", "image_url": str}]}}}

Assistant text goes through :func:`my_llm.importers.chatgpt.citations.resolve_citations`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from my_llm.importers.chatgpt.citations import resolve_citations

THOUGHT_TYPES = ("thoughts", "reasoning_recap")
MEMORY_TOOL = "bio"  # the "memory updated" tool: what it writes is personal data
IMAGE_DISPLAYED = "<<ImageDisplayed>>"  # what Code Interpreter prints where it showed an image
_TOOL_OUTPUT = {"tool_output": True}


@dataclass(frozen=True)
class MessageText:
    """A message's ``text`` for the record's content, or ``skipped``: why it has none (counted in the report).

    ``metadata`` goes into the record's: ``content_type`` always; ``asset_pointers`` for images (uploads,
    generated images, Code Interpreter plots), ``language`` for code, ``tool_output`` for tool results,
    ``url`` for quotes, ``sources`` (``[{"title", "url"}]``) for assistant text that cites.
    """

    text: str
    skipped: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def message_to_text(
    message: dict[str, Any] | None, *, include_thoughts: bool = False, include_user_context: bool = False
) -> MessageText:
    """The text of one export message, by its ``content.content_type``.

    ``text``/``multimodal_text``: string parts joined by newlines, images as ``[image]`` (asset pointers in
    metadata); ``code``: fenced with its language; ``execution_output`` (its images in
    ``metadata.aggregate_result.messages`` as ``[image]`` too), ``tether_browsing_display``, ``tether_quote``:
    kept as tool output; ``thoughts``/``reasoning_recap`` only with ``include_thoughts``;
    ``user_editable_context`` (custom instructions) and memory writes (a message to or from the ``bio`` tool),
    personal data both, only with ``include_user_context``; a ``system`` author only with
    ``metadata.is_user_system_message``; other messages flagged ``metadata.is_visually_hidden_from_conversation``
    never. Any other type is kept when it has a ``text`` string or string ``parts``, else skipped as
    ``unknown type <name>``. An assistant's citation markers are replaced (see
    :mod:`~my_llm.importers.chatgpt.citations`). Whitespace-only text is skipped as ``empty``; a null message
    as ``null message``. Leaf fields of an odd type count as absent; never raises.
    """
    if message is None:
        return MessageText("", "null message")
    content = _object(message.get("content"))
    content_type = content.get("content_type")
    reason = _left_out(message, content_type, include_thoughts, include_user_context)
    if reason:
        return MessageText("", reason)
    converted = _CONVERTERS.get(content_type, _other)(content)  # type: ignore[arg-type]
    if converted is None:
        return MessageText("", f"unknown type {content_type}")
    text, extra = converted
    metadata = _object(message.get("metadata"))
    if content_type == "execution_output":
        text, extra = _with_result_images(text, extra, metadata)
    if _object(message.get("author")).get("role") == "assistant":
        text, sources = resolve_citations(text, metadata)
        extra = {**extra, "sources": sources} if sources else extra
    if not text.strip():
        return MessageText("", "empty")
    return MessageText(text, None, {"content_type": content_type, **extra})


def is_memory_write(message: dict[str, Any]) -> bool:
    """A message to the ``bio`` (memory) tool, or its answer."""
    author = _object(message.get("author"))
    return message.get("recipient") == MEMORY_TOOL or (
        author.get("role") == "tool" and author.get("name") == MEMORY_TOOL
    )


def _left_out(message: dict[str, Any], content_type: Any, thoughts: bool, user_context: bool) -> str | None:
    """The reason the export's own flags (or our defaults) keep a message out, if any."""
    if content_type in THOUGHT_TYPES and not thoughts:
        return content_type
    if content_type == "user_editable_context" and not user_context:
        return "user_editable_context"
    if not user_context and is_memory_write(message):
        return MEMORY_TOOL
    metadata = _object(message.get("metadata"))
    if _object(message.get("author")).get("role") == "system":
        return None if metadata.get("is_user_system_message") else "system"
    if metadata.get("is_visually_hidden_from_conversation"):
        return "hidden"
    return None


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _joined(*pieces: Any, separator: str = "\n") -> str:
    return separator.join(piece for piece in map(_string, pieces) if piece.strip())


def _parts(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``parts``: strings kept; ``{asset_pointer}`` parts become ``[image]`` (or ``[audio]``...), text parts kept."""
    parts = content.get("parts") if isinstance(content.get("parts"), list) else []
    texts, pointers = [], []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and _string(part.get("text")).strip():
            texts.append(part["text"])
        elif isinstance(part, dict) and _string(part.get("asset_pointer") or part.get("image_url")):
            kind = _string(part.get("content_type")).removesuffix("_asset_pointer") or "attachment"
            texts.append(f"[{kind}]")
            pointers.append(part.get("asset_pointer") or part["image_url"])
    return _joined(*texts), ({"asset_pointers": pointers} if pointers else {})


def _with_result_images(text: str, extra: dict[str, Any], metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Code Interpreter output with the images it showed (``aggregate_result.messages``) as ``[image]`` parts."""
    result = _object(metadata.get("aggregate_result"))
    shown = result.get("messages") if isinstance(result.get("messages"), list) else []
    pointers = [
        entry["image_url"]
        for entry in shown
        if isinstance(entry, dict) and entry.get("message_type") == "image" and _string(entry.get("image_url"))
    ]
    if not pointers:
        return text, extra
    text = _joined(text.replace(IMAGE_DISPLAYED, ""), *["[image]"] * len(pointers))
    return text, {**extra, "asset_pointers": pointers}


def _code(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    language = _string(content.get("language"))
    language = "" if language == "unknown" else language
    code = _string(content.get("text"))
    return (f"```{language}\n{code}\n```" if code.strip() else ""), ({"language": language} if language else {})


def _quote(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    url = _string(content.get("url"))
    text = _joined(_joined(content.get("title"), url), content.get("text"), separator="\n\n")
    return text, ({**_TOOL_OUTPUT, "url": url} if url else _TOOL_OUTPUT)


def _thoughts(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    thoughts = content.get("thoughts") if isinstance(content.get("thoughts"), list) else []
    steps = [_joined(t.get("summary"), t.get("content")) for t in thoughts if isinstance(t, dict)]
    return _joined(*steps, separator="\n\n"), {}


def _other(content: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """An unknown content type: its ``text``, else its ``parts``; None when it has neither."""
    if _string(content.get("text")).strip():
        return content["text"], {}
    converted = _parts(content)
    return converted if converted[0].strip() else None


_CONVERTERS = {
    "text": _parts,
    "multimodal_text": _parts,
    "code": _code,
    "execution_output": lambda content: (_string(content.get("text")), _TOOL_OUTPUT),
    "tether_browsing_display": lambda content: (
        _joined(content.get("summary"), content.get("result"), separator="\n\n"),
        _TOOL_OUTPUT,
    ),
    "tether_quote": _quote,
    "thoughts": _thoughts,
    "reasoning_recap": lambda content: (_string(content.get("content")), {}),
    "user_editable_context": lambda content: (
        _joined(content.get("user_profile"), content.get("user_instructions"), separator="\n\n"),
        {},
    ),
}
