"""Reading an OpenAI chat-completion stream (Server-Sent Events) as it passes through, bytes untouched."""

from __future__ import annotations

import json


class StreamTap:
    """Feed it the raw bytes of a stream; it keeps the reply's text, the model and the usage if sent."""

    def __init__(self) -> None:
        self._buffer = b""
        self._parts: list[str] = []
        self.model: str | None = None
        self.usage: dict | None = None
        self.done = False  # True once ``data: [DONE]`` was read

    @property
    def text(self) -> str:
        """The reply so far (the ``delta.content`` of the first choice, joined)."""
        return "".join(self._parts)

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes; complete ``data:`` lines are parsed, anything else is ignored."""
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._line(line.strip())

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        data = line[5:].strip()
        if data == b"[DONE]":
            self.done = True
        if not data or data == b"[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        self.model = event.get("model") or self.model
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        choices = event.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta") or {}
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                self._parts.append(delta["content"])
