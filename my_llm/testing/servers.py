"""Start a real server as a child process on a free port, wait until it answers, stop it.

One helper for every server the tests, benchmarks and local trials start (the Pub/Sub emulator, the
llama.cpp OpenAI-compatible server)::

    port = free_port()
    with ServerProcess([sys.executable, "-m", "llama_cpp.server", "--port", str(port), ...], port,
                       log_path, name="The llama.cpp server", ready_path="/v1/models") as server:
        base_url = f"{server.url}/v1"

The child's stdout and stderr are appended to ``log_path``. It is ready once its port accepts a TCP
connection or, with ``ready_path``, once ``GET http://address:port/ready_path`` answers 200.
"""

from __future__ import annotations

import http.client
import shlex
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from my_llm.errors import MyLLMError

LOG_TAIL_CHARS = 2000
_POLL_S = 0.2
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local servers, never a proxy


class ServerNotInstalledError(MyLLMError):
    """A server a test or benchmark needs is not installed (a jar, a binary, a package)."""


class ServerStartError(MyLLMError):
    """A child server could not be run, exited before it answered, or did not answer in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS's pick; another process may take it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when ``host:port`` accepts a TCP connection within ``timeout_s`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``GET url`` answers 200 within ``timeout_s`` seconds (proxies from the environment are
    not used)."""
    try:
        with _NO_PROXY.open(url, timeout=timeout_s) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def log_tail(log_path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    """The last ``chars`` characters of ``log_path`` (undecodable bytes replaced); ``""`` if it is missing."""
    try:
        return log_path.read_bytes()[-chars:].decode("utf-8", "replace")
    except OSError:
        return ""


_Server = TypeVar("_Server", bound="ServerProcess")


class ServerProcess:
    """``argv`` as a child process serving on ``address:port``; can be stopped and started again on that port.

    Args:
        argv: the command line, e.g. ``["java", "-jar", jar, "--port=8085"]`` (it must use ``port``).
        port: the TCP port the child listens on (see :func:`free_port`).
        log_path: file the child's stdout and stderr are appended to.
        name: what the child is, for error messages ("The Pub/Sub emulator").
        ready_path: None to be ready when the port accepts a connection; a path such as ``/v1/models``
            to be ready when ``GET`` on it answers 200.
        address: the IP address the child listens on (it must use it too).
        timeout_s: seconds :meth:`start` waits for the child to answer, unless told otherwise.
        advice: what to do when the start fails, added to the error message.
        env: the child's environment (None: this process's).

    Use as a context manager (start, then stop), or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        argv: Sequence[str],
        port: int,
        log_path: Path,
        *,
        name: str = "The server",
        ready_path: str | None = None,
        address: str = "127.0.0.1",
        timeout_s: float = 60.0,
        advice: str = "",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv, self.port, self.log_path = [str(arg) for arg in argv], port, Path(log_path)
        self.name, self.ready_path, self.address = name, ready_path, address
        self.timeout_s, self.advice, self.env = timeout_s, advice, env
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        """``address:port``, e.g. ``127.0.0.1:8085`` (the form ``PUBSUB_EMULATOR_HOST`` takes)."""
        return f"{self.address}:{self.port}"

    @property
    def url(self) -> str:
        """``http://address:port`` (no trailing slash)."""
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        """True while the child started by :meth:`start` has not exited or been stopped."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def answers(self) -> bool:
        """True when the child answers now (its port, or ``ready_path`` with 200)."""
        if self.ready_path is None:
            return port_answers(self.address, self.port)
        return http_ok(self.url + self.ready_path)

    def start(self: _Server, timeout_s: float | None = None) -> _Server:
        """Run the child and wait until it answers; a running child is left as it is. Returns self.

        Raises:
            ServerStartError: the command could not be run, the child exited before it answered, or it
                did not answer within ``timeout_s`` seconds (default: the constructor's); the child is
                stopped first. The message names the log and ends with its last lines.
        """
        if self.running:
            return self
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            try:
                self.process = subprocess.Popen(
                    self.argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
                )
            except OSError as error:
                raise ServerStartError(self._failure(f"could not be run ({error})", with_log=False)) from error
        try:
            self._wait_until_it_answers(timeout_s)
        except BaseException:  # a failed start, or Ctrl-C while waiting: no child is left behind
            self.stop()
            raise
        return self

    def _wait_until_it_answers(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.process.poll()  # first: another process on the port must not pass for this one
            if code is not None:
                raise ServerStartError(self._failure(f"exited with code {code} before it answered"))
            if self.answers():
                return
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    self._failure(f"did not answer within {timeout_s:g} s (raise timeout_s on a slow machine)")
                )
            time.sleep(_POLL_S)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the child, kill it if it is still there after ``timeout_s`` seconds, and wait for it.
        Does nothing when it is not running."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)

    def _failure(self, what: str, with_log: bool = True) -> str:
        """An error message: which server, what went wrong, where its log is, what to do, the log's end."""
        where = self.url + self.ready_path if self.ready_path else self.host
        message = f"{self.name} ({shlex.join(self.argv)}) {what}, on {where}. Its log: {self.log_path}."
        if self.advice:
            message += f" {self.advice}"
        tail = log_tail(self.log_path) if with_log else ""
        return message + (f"\nThe log ends with:\n{tail}" if tail.strip() else "")
