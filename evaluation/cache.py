"""A response cache on disk: one JSON file per (provider, prompt, vars), so a re-run sends no request.

Keys are SHA-256 of the canonical JSON of the three; files are written to a temporary name and renamed,
so concurrent workers and a killed run never leave half a file. Nothing is ever read from a file that is
not valid JSON (it counts as a miss and is rewritten).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_key(provider: str, prompt: str, variables: dict[str, Any]) -> str:
    """The hex SHA-256 of ``(provider, prompt, vars)`` as canonical JSON."""
    blob = json.dumps([provider, prompt, variables], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Responses under ``folder/<key[:2]>/<key>.json``; ``enabled=False`` reads and writes nothing."""

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.folder, self.enabled = Path(folder), enabled

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or None (a miss, a disabled cache, an unreadable file)."""
        if not self.enabled:
            return None
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, response: dict[str, Any]) -> None:
        """Store ``response`` (JSON-serialisable) for ``key`` atomically; a disabled cache does nothing."""
        if not self.enabled:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(response, file, ensure_ascii=False)
        os.replace(temporary, path)
