"""The BigQuery emulator for tests: bqemulator 1.4.0 (DuckDB-backed, REST), from its own virtualenv.

It lives in ``.bqemu-venv`` (made by ``.ci/run``; ``BQEMULATOR`` may name another ``bqemulator`` binary) and
never in the project's venv: it registers a pytest plugin that breaks pytest without ``testcontainers``,
and it works offline only with DuckDB 1.5.5 and the spatial extension imported once (../shared/DESIGN.md).
It is started once per session on free ports, in memory, so every test uses a dataset of its own.

Import the fixtures from a test module: ``from tests.bq_fixtures import bq_emulator, bq_target``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from my_llm import Settings
from my_llm.bigquery import Target, bigquery_client
from my_llm.testing import ServerNotInstalledError, ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
BQEMULATOR = ROOT / ".bqemu-venv" / "bin" / "bqemulator"
EMULATOR_PROJECT = "test-proj"


def emulators_required() -> bool:
    """As in conftest: under CI=true or REQUIRE_EMULATORS=1 a missing emulator fails instead of skipping."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("REQUIRE_EMULATORS") == "1"


def find_bqemulator() -> Path:
    """The ``bqemulator`` binary: ``$BQEMULATOR``, else ``.bqemu-venv/bin/bqemulator``.

    Raises:
        ServerNotInstalledError: it is not there (make the venv as ``.ci/run`` does).
    """
    binary = Path(os.environ.get("BQEMULATOR") or BQEMULATOR)
    if not binary.is_file():
        raise ServerNotInstalledError(
            f"bqemulator not found at {binary}: make its venv as .ci/run does (python3 -m venv .bqemu-venv && "
            ".bqemu-venv/bin/pip install bqemulator==1.4.0 duckdb==1.5.5 duckdb-extensions==1.5.5 "
            "duckdb-extension-spatial==1.5.5 numpy, then import the spatial extension once)."
        )
    return binary


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory) -> str:
    """bqemulator on free ports for the whole session; yields ``http://127.0.0.1:PORT`` (the value for
    ``BIGQUERY_EMULATOR_HOST``). Skips when it is not installed, unless emulators are required."""
    try:
        binary = find_bqemulator()
    except ServerNotInstalledError as missing:
        if emulators_required():
            pytest.fail(str(missing))
        pytest.skip(str(missing))
    rest, grpc = free_port(), free_port()
    argv = [binary, "start", "--rest-port", rest, "--grpc-port", grpc, "--project", EMULATOR_PROJECT]
    server = ServerProcess(
        argv,
        rest,
        tmp_path_factory.mktemp("bqemulator") / "bqemulator.log",
        name="bqemulator",
        ready_path="/healthz",
        timeout_s=90,
        advice="Its venv needs duckdb==1.5.5 and the spatial extension imported once (see .ci/run).",
    )
    with server:
        yield server.url


@pytest.fixture
def bq_target(bq_emulator, monkeypatch) -> Target:
    """A target in a dataset of this test's own on the emulator; BIGQUERY_EMULATOR_HOST points at it. The
    project is the settings' (GOOGLE_CLOUD_PROJECT when a test set it, e.g. through ``emulator_env``)."""
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bq_emulator)
    dataset = f"t_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MY_LLM_BIGQUERY_DATASET", dataset)
    return Target.from_settings(Settings.from_env())


def table_counts(target: Target, namespace: str | None = None) -> tuple[int, int]:
    """``(rows, distinct ids)`` in the target's table (of one namespace when given)."""
    where = f"WHERE namespace = '{namespace}'" if namespace else ""
    sql = f"SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM {target.quoted()} {where}"
    row = next(iter(bigquery_client(target).query(sql).result()))
    return int(row["n"]), int(row["ids"])
