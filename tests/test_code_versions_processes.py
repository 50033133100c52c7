"""Code-conversation version numbers stay unique across server processes: two real ``my-llm-server serve``
processes on one data folder (as ``uvicorn --workers 2`` or two servers behind a load balancer would be), a
scripted OpenAI-compatible upstream (:mod:`tests.scripted_upstream`), and regenerate/feedback requests fired at
both at the same instant. Each version number is handed out once, and the conversation's versions (what
``/code/{id}`` shows, :func:`server.code_versions.read_code_conversation`) list each once."""

from __future__ import annotations

import concurrent.futures
import threading
from collections import Counter

import httpx
import pytest

from my_llm import Settings
from server.code_versions import read_code_conversation
from server.logbook import Logbook
from tests.scripted_upstream import ScriptedUpstream
from tests.test_server import auth, log_lines, new_key, server_env, start_server
from tests.test_server_code import SQUARE

SCRIPT = [{"match": "", "replies": [SQUARE]}]  # every request gets the same code
ROUNDS, PER_ROUND = 3, 8  # each round: 8 requests at once, half to each server, regenerate and feedback mixed


@pytest.fixture
def two_servers(tmp_path):
    """Two servers sharing ``tmp_path``'s data folder (logs, users) and one scripted upstream: ``(urls, key)``."""
    with ScriptedUpstream(SCRIPT) as upstream:
        env = server_env(tmp_path, upstream.url)
        key = new_key(env, "alice")
        servers = [start_server(env, tmp_path / f"server-{name}.log") for name in "ab"]
        try:
            yield [server.url for server in servers], key
        finally:
            for server in servers:
                server.stop()


def post(url: str, key: str, path: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=auth(key), timeout=120)


def test_simultaneous_requests_to_two_processes_get_distinct_versions(two_servers, tmp_path):
    urls, key = two_servers
    first = post(urls[0], key, "/v1/code", {"description": "A function that squares a number."})
    assert first.status_code == 200, first.text
    conversation = first.json()["conversation"]

    def fire(i: int, start: threading.Barrier) -> httpx.Response:
        url = urls[i % 2]
        start.wait()
        if (i // 2) % 2:
            return post(url, key, f"/v1/code/{conversation}/feedback", {"text": f"Name it sq{i}."})
        return post(url, key, f"/v1/code/{conversation}/regenerate")

    answers = []
    with concurrent.futures.ThreadPoolExecutor(PER_ROUND) as pool:
        for _ in range(ROUNDS):
            start = threading.Barrier(PER_ROUND)
            answers += list(pool.map(fire, range(PER_ROUND), [start] * PER_ROUND))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    total = ROUNDS * PER_ROUND + 1
    handed_out = Counter(a.json()["version"] for a in answers)
    assert sorted(handed_out.elements()) == list(range(2, total + 1)), {v: n for v, n in handed_out.items() if n > 1}

    records = [r for r in log_lines(tmp_path, "alice") if r["session_id"] == conversation]
    for event in ("code_request", "code_result"):
        logged = [r["metadata"]["code"]["version"] for r in records if r["metadata"].get("event") == event]
        assert sorted(logged) == list(range(1, total + 1)), (event, logged)
    shown = read_code_conversation(Logbook(Settings.from_env()), "user-alice", conversation)
    assert [v.version for v in shown.versions] == list(range(1, total + 1))  # oldest first, each once
    assert all(v.finished and v.code.strip() for v in shown.versions)
    assert Counter(v.action for v in shown.versions) == {"new": 1, "regenerate": total // 2, "feedback": total // 2}
