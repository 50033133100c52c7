"""Where a retriever's vectors live: an embedded Chroma database in a folder, or a shared Chroma server.

``CHROMA_HOST`` (``host``, ``host:port``, ``[::1]:port`` or ``http(s)://host:port``; port 8000 when
none is given) makes every retriever use ``chromadb.HttpClient``, so that processes on several machines
share one memory or one repository index; without it each index is a ``chromadb.PersistentClient`` in its
own folder. A server for tests and small teams ships with chromadb::

    chroma run --path DIR --host 127.0.0.1 --port 8000

One server holds the collections of many indexes, so a remote collection's name carries the index's
identity (:func:`remote_collection_name`): the memory of namespace ``debugger`` is ``memory-debugger``
on every machine.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

from my_llm.errors import ConfigError, MyLLMError

DEFAULT_PORT = 8000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


class VectorStoreUnavailableError(MyLLMError):
    """The Chroma server named by ``CHROMA_HOST`` does not answer (or refused the request)."""


def parse_chroma_host(value: str) -> tuple[str, int, bool]:
    """``(host, port, ssl)`` of a ``CHROMA_HOST`` value.

    ``chroma.example.com`` -> ``("chroma.example.com", 8000, False)``; ``127.0.0.1:8123`` ->
    ``("127.0.0.1", 8123, False)``; ``https://chroma.example.com`` -> ``("chroma.example.com", 443, True)``.

    Raises:
        ConfigError: no host, or a port that is not a number from 1 to 65535.
    """
    text = value.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        raise ConfigError(f"CHROMA_HOST={value!r} is not host, host:port or http(s)://host:port (e.g. 127.0.0.1:8000).")
    ssl = parts.scheme == "https"
    return parts.hostname, port or (443 if ssl else DEFAULT_PORT), ssl


def remote_collection_name(collection: str, folder: Path) -> str:
    """The name of an index's collection on a shared server: ``<collection>-<name of the folder's parent>``.

    An index lives in ``<root>/<identity>/chroma`` (``MESSAGE_HISTORY/<namespace>/chroma``,
    ``CHROMA_DB_PATH/<repo>-<hash>/chroma``), so the memory of namespace ``debugger`` is ``memory-debugger``
    wherever ``MESSAGE_HISTORY`` is. A name Chroma would refuse becomes ``<collection>-<16 hex of its sha256>``.
    """
    name = f"{collection}-{Path(folder).parent.name}"
    if _NAME.match(name) and ".." not in name:
        return name
    return f"{collection}-{hashlib.sha256(Path(folder).parent.name.encode('utf-8')).hexdigest()[:16]}"


def chroma_client(folder: Path, chroma_host: str | None):
    """A Chroma client: ``HttpClient`` for ``chroma_host``, else a ``PersistentClient`` in ``folder``
    (created here). Telemetry is off.

    Raises:
        ConfigError: ``chroma_host`` cannot be parsed.
        VectorStoreUnavailableError: the server does not answer.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if not chroma_host:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(folder), settings=settings)
    host, port, ssl = parse_chroma_host(chroma_host)
    try:
        return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
    except Exception as error:  # chromadb raises ValueError, httpx errors or its own, depending on the failure
        raise VectorStoreUnavailableError(
            f"The Chroma server at CHROMA_HOST={chroma_host!r} does not answer ({type(error).__name__}: {error}). "
            "Start one with `chroma run --path DIR --host HOST --port PORT`, or unset CHROMA_HOST to keep "
            "vectors in local folders."
        ) from error
