"""Shared parts of the trigger tests: a real SMTP server in-process (aiosmtpd), AI records in real logs, the
CLI, and hashes of whole folders (to prove that nothing changed). No tests here."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path

import pytest
from click.testing import CliRunner

from my_llm import MessageStore, Record, Settings
from my_llm.cli_triggers import triggers
from my_llm.log import read_records
from my_llm.testing import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Mailbox:
    """What the in-process SMTP server received: ``(recipients, message)`` pairs. While ``hold`` is set,
    DATA is not answered until ``release`` is set (a send the client never hears back about)."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    hold: bool = False
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        self.arrived.set()
        while self.hold and not self.release.is_set():
            await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


@pytest.fixture(name="mailbox")
def mailbox_fixture():
    """A real SMTP server (aiosmtpd's Controller) on a free port for one test."""
    from aiosmtpd.controller import Controller

    box = Mailbox(port=free_port())
    controller = Controller(box, hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        box.release.set()
        controller.stop()


def write_config(folder: Path, text: str) -> Path:
    path = folder / "triggers.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def ai_record(namespace: str, content: str, session_id: str = "s1", **fields) -> Record:
    return Record.new(namespace, session_id, "ai", content, **fields)


def append(settings: Settings, *records: Record) -> None:
    """Append records to their namespace's log as they are (same ids: a replay appends a record again)."""
    MessageStore(settings.message_history, records[0].namespace).append(records)


def tool_records(settings: Settings, namespace: str) -> list[Record]:
    path = settings.message_history / namespace / "messages.jsonl"
    return [record for record in read_records(path) if record.role == "tool"]


def run_cli(*args: str) -> str:
    """``my-llm triggers ARGS`` in-process; fails the test on a non-zero exit."""
    result = CliRunner().invoke(triggers, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def run_cli_process(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``my-llm triggers ARGS`` in a child process (which may be killed)."""
    code = "import sys; from my_llm.cli_triggers import triggers; triggers(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def tree_hash(*roots: Path) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``roots`` (a missing root counts as empty)."""
    hashes = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for path in files:
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes
