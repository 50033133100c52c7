"""The official Google Cloud Pub/Sub emulator as a child process, for tests, benchmarks and local trials.

Started without gcloud: ``java -jar cloud-pubsub-emulator-*-all.jar --host=127.0.0.1 --port=PORT``
(ready in about a second). Point clients at it with ``PUBSUB_EMULATOR_HOST=127.0.0.1:PORT``. The
emulator keeps everything in memory: a restarted one starts with no topics or subscriptions.
"""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import time
from pathlib import Path

from my_llm.errors import MyLLMError

EMULATOR_JARS = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar"


def find_emulator(pattern: str = EMULATOR_JARS) -> tuple[str, str]:
    """``(jar, java)`` paths of the newest installed emulator jar and the java binary.

    Raises:
        MyLLMError: either is missing (install ``google-cloud-cli-pubsub-emulator`` and Java 17).
    """
    jars = sorted(glob.glob(pattern))
    java = shutil.which("java")
    if not jars or not java:
        raise MyLLMError(
            f"Pub/Sub emulator not found (java: {java}, jar: {pattern}): "
            "install the google-cloud-cli-pubsub-emulator package and Java 17."
        )
    return jars[-1], java


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Emulator:
    """The emulator jar as a child process on one port (a free one when None); can be stopped and
    restarted on the same port. Output goes to ``log_path``.

    Raises (from start):
        RuntimeError: the process exited or did not open its port within ``timeout_s`` seconds.
    """

    def __init__(self, jar: str, java: str, log_path: Path, port: int | None = None) -> None:
        self.jar, self.java, self.log_path = jar, java, log_path
        self.port = port or _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout_s: float = 60.0) -> Emulator:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [self.java, "-jar", self.jar, "--host=127.0.0.1", f"--port={self.port}"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The Pub/Sub emulator exited with code {self.process.returncode}: {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"The Pub/Sub emulator did not open port {self.port} within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
