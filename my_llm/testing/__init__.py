"""Dev tools for tests, benchmarks and local trials: start real servers as child processes (the Pub/Sub
emulator, the llama.cpp server, any child that opens a port) and talk to the emulator. Nothing in the
library imports this package.

The face of ``my_llm.testing``: import from here. Errors are :class:`my_llm.MyLLMError` subclasses:
``ServerNotInstalledError`` (a server is missing) and ``ServerStartError`` (it could not start).
"""

from my_llm.testing.emulator import Emulator, ensure_topic, find_emulator, pull_all, subscribe
from my_llm.testing.servers import (
    ServerNotInstalledError,
    ServerProcess,
    ServerStartError,
    free_port,
    http_ok,
    log_tail,
    port_answers,
)

__all__ = [
    "Emulator",
    "ServerNotInstalledError",
    "ServerProcess",
    "ServerStartError",
    "ensure_topic",
    "find_emulator",
    "free_port",
    "http_ok",
    "log_tail",
    "port_answers",
    "pull_all",
    "subscribe",
]
