"""my-llm-server against a real uvicorn server on a free port (httpx): the admin CLI, keys, auth, limits,
the proxy's error paths against a stub upstream (and a dead one), history and usage per user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from my_llm.testing import ServerProcess, free_port

UPSTREAM_KEY = "sk-upstream-secret"


def server_env(tmp_path: Path, upstream: str, **extra: str) -> dict[str, str]:
    """The environment of a server (and its CLI) writing under ``tmp_path``, forwarding to ``upstream``."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST")}
    env.update(
        MESSAGE_HISTORY=str(tmp_path / "message_history"),
        CHROMA_DB_PATH=str(tmp_path / "chroma"),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        MY_LLM_DATABASE_URL=f"sqlite:///{tmp_path / 'users.sqlite3'}",
        MY_LLM_PUBLISH="off",
        OPENAI_BASE_URL=upstream,
        OPENAI_API_KEY=UPSTREAM_KEY,
        MY_LLM_AUTH_CACHE_S="0",
    )
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run ``my-llm-server ARGS`` (as ``python -m server.cli``)."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def new_key(env: dict[str, str], name: str, *flags: str) -> str:
    """Add user ``name`` and return a new key of theirs (the last line of ``users key``)."""
    assert cli(env, "users", "add", name, *flags).returncode == 0
    made = cli(env, "users", "key", name)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def start_server(env: dict[str, str], log: Path) -> ServerProcess:
    """``my-llm-server serve`` on a free port, ready once ``/docs`` answers."""
    port = free_port()
    argv = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
    return ServerProcess(argv, port, log, name="my-llm-server", ready_path="/docs", env=env, timeout_s=60).start()


def log_lines(tmp_path: Path, user: str) -> list[dict]:
    path = tmp_path / "message_history" / f"user-{user}" / "messages.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class _Stub(BaseHTTPRequestHandler):
    """An OpenAI-compatible stub: ``model: "bad"`` gets a 400 in OpenAI's shape, anything else a reply
    ("stub reply"; streamed when asked)."""

    seen_auth: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, reply: dict, usage: dict) -> None:
        """The reply as OpenAI's Server-Sent Events: the text, a final chunk with usage, then [DONE]."""
        base = {"id": "x", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": reply, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage},
        ]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _Stub.seen_auth.append(self.headers.get("authorization", ""))
        if body.get("model") == "bad":
            return self._json(
                400, {"error": {"message": "model 'bad' does not exist", "type": "invalid_request_error"}}
            )
        reply = {"role": "assistant", "content": "stub reply"}
        usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
        if body.get("stream"):
            return self._stream(reply, usage)
        self._json(200, {"id": "x", "object": "chat.completion", "model": "gpt-4o-mini", "usage": usage,
                         "choices": [{"index": 0, "message": reply, "finish_reason": "stop"}]})  # fmt: skip


@pytest.fixture(scope="module")
def stub_upstream():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


@pytest.fixture
def running(tmp_path, stub_upstream):
    """A server over the stub upstream with users alice and bob (keys) and admin root."""
    env = server_env(tmp_path, stub_upstream, MY_LLM_MAX_BODY_BYTES="20000", MY_LLM_RATE_LIMIT="40/minute")
    keys = {name: new_key(env, name, *flags) for name, flags in (("alice", ()), ("bob", ()), ("root", ("--admin",)))}
    server = start_server(env, tmp_path / "server.log")
    try:
        yield server.url, keys, env
    finally:
        server.stop()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(url: str, key: str, text: str, session: str | None = None, model: str = "gpt-4o-mini") -> httpx.Response:
    headers = {**auth(key), **({"X-Session-Id": session} if session else {})}
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def test_admin_cli_manages_users_and_keys(tmp_path):
    env = server_env(tmp_path, "http://127.0.0.1:9/v1")
    assert cli(env, "users", "add", "carol", "--admin", "--password-stdin", stdin="s3cret\n").returncode == 0
    assert cli(env, "users", "add", "carol").returncode != 0  # taken
    assert "Invalid user name" in cli(env, "users", "add", "../x").stderr
    key = cli(env, "users", "key", "carol").stdout.strip().splitlines()[-1]
    assert key.startswith("mlk_") and len(key) > 40
    listing = cli(env, "users", "list").stdout
    assert "carol\tadmin\t1 key(s)" in listing
    assert key not in (tmp_path / "users.sqlite3").read_bytes().decode("latin-1")  # stored hashed
    assert "s3cret" not in (tmp_path / "users.sqlite3").read_bytes().decode("latin-1")
    assert cli(env, "users", "disable", "nobody").returncode != 0


def test_keys_authenticate_and_can_be_revoked_or_disabled(running):
    url, keys, env = running
    assert httpx.get(f"{url}/v1/me", headers=auth(keys["alice"])).json()["name"] == "alice"
    missing = httpx.get(f"{url}/v1/me")
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{url}/v1/me", headers=auth("mlk_wrong")).status_code == 401
    assert cli(env, "users", "revoke", "bob").stdout.startswith("Revoked 1")
    assert httpx.get(f"{url}/v1/me", headers=auth(keys["bob"])).status_code == 401
    assert cli(env, "users", "disable", "alice").returncode == 0
    assert httpx.get(f"{url}/v1/me", headers=auth(keys["alice"])).status_code == 401
    assert httpx.get(f"{url}/docs").status_code == 200
    assert "/v1/chat/completions" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_proxy_logs_both_turns_and_keeps_the_upstream_key(running, tmp_path):
    url, keys, _env = running
    _Stub.seen_auth.clear()
    answer = chat(url, keys["alice"], "What is 2+2?", session="s1")
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "stub reply"
    assert _Stub.seen_auth == [f"Bearer {UPSTREAM_KEY}"]  # the client's key is never forwarded
    human, ai = log_lines(tmp_path, "alice")
    assert (human["role"], human["content"], human["session_id"]) == ("human", "What is 2+2?", "s1")
    assert ai["role"] == "ai" and ai["model"] == "gpt-4o-mini"
    assert ai["usage"]["input_tokens"] == 7 and ai["usage"]["output_tokens"] == 2 and ai["usage"]["cost_usd"] > 0
    models = httpx.get(f"{url}/v1/models", headers=auth(keys["alice"]))
    assert models.json()["data"][0]["id"] == "stub-model"


def test_upstream_errors_pass_through_and_bad_input_is_never_a_500(running):
    url, keys, _env = running
    bad = chat(url, keys["alice"], "hi", model="bad")
    assert bad.status_code == 400 and "does not exist" in bad.json()["error"]["message"]
    for body in ({"model": "m"}, {"messages": "x"}, {"messages": [1]}, {"messages": []}):
        response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth(keys["alice"]))
        assert response.status_code == 400 and "messages" in response.json()["error"]["message"]
    raw = httpx.post(f"{url}/v1/chat/completions", content=b"{not json", headers=auth(keys["alice"]))
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert "Not an OpenAI chat completion request" in raw.json()["error"]["message"]
    for body in ({"model": "m", "messages": [{"role": "nobody"}]}, {"model": "m", "messages": [{"role": "user"}],
                                                                    "max_tokens": "9"}):  # fmt: skip
        response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth(keys["alice"]))
        assert response.status_code == 400, response.text
    big = httpx.post(f"{url}/v1/chat/completions", content=b"x" * 30000, headers=auth(keys["alice"]))
    assert big.status_code == 413 and big.json()["error"]["type"] == "request_too_large"
    assert httpx.get(f"{url}/v1/usage?group_by=week", headers=auth(keys["alice"])).status_code == 422
    assert httpx.get(f"{url}/v1/conversations?limit=0", headers=auth(keys["alice"])).status_code == 422
    assert httpx.get(f"{url}/v1/conversations?as_user=../x", headers=auth(keys["root"])).status_code == 400
    poem = httpx.post(
        f"{url}/v1/code", json={"description": "Write a poem about the sea."}, headers=auth(keys["alice"])
    )
    assert poem.status_code == 422 and "not look like a coding task" in poem.json()["error"]["message"]
    closed = httpx.post(f"{url}/v1/users", json={"name": "eve", "password": "long enough"})
    assert closed.status_code == 403 and "registration is off" in closed.json()["error"]["message"]


def test_history_is_per_user_and_delete_hides_it(running, tmp_path):
    url, keys, _env = running
    for n in range(3):
        assert chat(url, keys["alice"], f"question {n}", session=f"a{n}").status_code == 200
    page = httpx.get(f"{url}/v1/conversations?limit=2", headers=auth(keys["alice"])).json()
    assert page["total"] == 3 and [c["id"] for c in page["data"]] == ["a2", "a1"]
    assert httpx.get(f"{url}/v1/conversations?q=question 1", headers=auth(keys["alice"])).json()["total"] == 1
    turns = httpx.get(f"{url}/v1/conversations/a0", headers=auth(keys["alice"])).json()["turns"]
    assert [t["role"] for t in turns] == ["human", "ai"] and turns[1]["usage"]["output_tokens"] == 2
    assert httpx.get(f"{url}/v1/conversations/a0", headers=auth(keys["bob"])).status_code == 404
    assert httpx.get(f"{url}/v1/conversations?as_user=alice", headers=auth(keys["bob"])).status_code == 403
    assert httpx.get(f"{url}/v1/conversations/a0?as_user=alice", headers=auth(keys["root"])).status_code == 200
    assert httpx.delete(f"{url}/v1/conversations/a0", headers=auth(keys["bob"])).status_code == 404
    assert httpx.get(f"{url}/v1/conversations", headers=auth(keys["bob"])).json()["total"] == 0
    assert httpx.delete(f"{url}/v1/conversations/a0", headers=auth(keys["alice"])).status_code == 204
    assert httpx.get(f"{url}/v1/conversations/a0", headers=auth(keys["alice"])).status_code == 404
    assert httpx.get(f"{url}/v1/conversations", headers=auth(keys["alice"])).json()["total"] == 2
    tombstone = log_lines(tmp_path, "alice")[-1]
    assert tombstone["metadata"] == {"event": "delete_conversation", "conversation": "a0"}


def test_usage_per_user_and_for_admin(running):
    url, keys, _env = running
    chat(url, keys["alice"], "one")
    chat(url, keys["alice"], "two")
    chat(url, keys["bob"], "three")
    mine = httpx.get(f"{url}/v1/usage?group_by=model", headers=auth(keys["alice"])).json()
    assert mine["total"]["requests"] == 2 and mine["rows"][0]["key"] == "gpt-4o-mini"
    assert mine["total"]["input_tokens"] == 14 and mine["total"]["unknown_price_requests"] == 0
    every = httpx.get(f"{url}/v1/usage?group_by=user", headers=auth(keys["root"])).json()
    assert {row["key"]: row["requests"] for row in every["rows"]} == {"alice": 2, "bob": 1}
    future = httpx.get(f"{url}/v1/usage?from=2999-01-01", headers=auth(keys["root"])).json()
    assert future["total"]["requests"] == 0


def test_rate_limit_per_key(running):
    url, keys, _env = running
    codes = [httpx.get(f"{url}/v1/me", headers=auth(keys["bob"])).status_code for _ in range(45)]
    assert codes[:40] == [200] * 40 and codes[-1] == 429
    assert httpx.get(f"{url}/v1/me", headers=auth(keys["alice"])).status_code == 200  # per key


def test_dead_upstream_is_a_502_and_the_turn_is_on_disk(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    env = server_env(tmp_path, dead)
    key = new_key(env, "dave")
    server = start_server(env, tmp_path / "server.log")
    try:
        for stream in (False, True):
            body = {"model": "m", "stream": stream, "messages": [{"role": "user", "content": f"hello {stream}"}]}
            response = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=auth(key), timeout=30)
            assert response.status_code == 502
            assert "unreachable" in response.json()["error"]["message"]
            assert "your turn was logged" in response.json()["error"]["message"]
        models = httpx.get(f"{server.url}/v1/models", headers=auth(key), timeout=30)
        assert models.status_code == 502 and "turn" not in models.json()["error"]["message"]  # no turn to log
    finally:
        server.stop()
    assert [line["content"] for line in log_lines(tmp_path, "dave")] == ["hello False", "hello True"]


def test_open_registration_when_turned_on(tmp_path, stub_upstream):
    env = server_env(tmp_path, stub_upstream, MY_LLM_OPEN_REGISTRATION="on")
    server = start_server(env, tmp_path / "server.log")
    try:
        made = httpx.post(f"{server.url}/v1/users", json={"name": "eve", "password": "long enough"})
        assert made.status_code == 201
        assert httpx.get(f"{server.url}/v1/me", headers=auth(made.json()["api_key"])).json()["name"] == "eve"
        again = httpx.post(f"{server.url}/v1/users", json={"name": "eve", "password": "long enough"})
        assert again.status_code == 409
        bad = httpx.post(f"{server.url}/v1/users", json={"name": "Bad Name", "password": "long enough"})
        assert bad.status_code == 400
    finally:
        server.stop()


def test_a_labelled_key_logs_to_its_own_namespace_and_its_user_reads_it(running, tmp_path):
    url, keys, env = running
    made = cli(env, "users", "key", "alice", "--namespace", "ci")
    assert made.returncode == 0 and "user-alice.key-ci" in made.stdout
    ci_key = made.stdout.strip().splitlines()[-1]
    assert cli(env, "users", "key", "alice", "--namespace", "Bad Label").returncode != 0
    assert "alice\t-\t2 key(s) (namespaces ci: 1)" in cli(env, "users", "list").stdout
    me = httpx.get(f"{url}/v1/me", headers=auth(ci_key)).json()
    assert me["namespace"] == "user-alice.key-ci"
    assert chat(url, ci_key, "from CI", session="ci-run").status_code == 200
    assert chat(url, keys["alice"], "from my laptop", session="laptop").status_code == 200
    assert [line["content"] for line in log_lines(tmp_path, "alice.key-ci")] == ["from CI", "stub reply"]
    assert httpx.get(f"{url}/v1/me", headers=auth(keys["alice"])).json()["namespaces"] == [
        "user-alice", "user-alice.key-ci"]  # fmt: skip
    for key in (keys["alice"], ci_key):  # every key of alice reads all of alice's namespaces
        listed = httpx.get(f"{url}/v1/conversations", headers=auth(key)).json()
        assert [c["id"] for c in listed["data"]] == ["laptop", "ci-run"]
    assert httpx.get(f"{url}/v1/conversations/ci-run", headers=auth(keys["alice"])).json()["turns"][0]["content"] == (
        "from CI")  # fmt: skip
    mine = httpx.get(f"{url}/v1/usage?group_by=namespace", headers=auth(keys["alice"])).json()
    assert {row["key"] for row in mine["rows"]} == {"user-alice", "user-alice.key-ci"}
    every = httpx.get(f"{url}/v1/usage?group_by=user", headers=auth(keys["root"])).json()
    assert {row["key"]: row["requests"] for row in every["rows"]} == {"alice": 2}
    assert httpx.get(f"{url}/v1/conversations/ci-run", headers=auth(keys["bob"])).status_code == 404
    assert httpx.delete(f"{url}/v1/conversations/ci-run", headers=auth(keys["bob"])).status_code == 404
    assert httpx.get(f"{url}/v1/conversations?as_user=alice", headers=auth(keys["root"])).json()["total"] == 2
    assert httpx.delete(f"{url}/v1/conversations/ci-run", headers=auth(keys["alice"])).status_code == 204
    assert httpx.get(f"{url}/v1/conversations/ci-run", headers=auth(ci_key)).status_code == 404
    assert log_lines(tmp_path, "alice.key-ci")[-1]["metadata"]["event"] == "delete_conversation"


def test_a_users_database_made_before_namespace_labels_keeps_working(tmp_path):
    import sqlite3

    env = server_env(tmp_path, "http://127.0.0.1:9/v1")
    with sqlite3.connect(tmp_path / "users.sqlite3") as db:  # the schema before api_keys.namespace_label
        db.executescript(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(64) UNIQUE, password_hash VARCHAR(255), "
            "is_admin BOOLEAN, disabled BOOLEAN, created_at DATETIME);"
            "CREATE TABLE api_keys (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), "
            "digest VARCHAR(64) UNIQUE, prefix VARCHAR(16), created_at DATETIME, revoked_at DATETIME);"
            "INSERT INTO users VALUES (1, 'old', NULL, 0, 0, '2026-01-01 00:00:00');"
            "INSERT INTO api_keys VALUES (1, 1, 'x', 'mlk_x', '2026-01-01 00:00:00', NULL);"
        )
    db.close()
    assert cli(env, "users", "key", "old", "--namespace", "ci").returncode == 0
    assert "old\t-\t2 key(s) (namespaces ci: 1)" in cli(env, "users", "list").stdout
    with sqlite3.connect(tmp_path / "users.sqlite3") as db:
        assert db.execute("SELECT namespace_label FROM api_keys ORDER BY id").fetchall() == [(None,), ("ci",)]
    db.close()


def test_admin_purge_removes_deleted_conversations_from_disk(running, tmp_path):
    url, keys, env = running
    for session in ("a0", "a1"):
        assert chat(url, keys["alice"], f"question {session}", session=session).status_code == 200
    assert httpx.delete(f"{url}/v1/conversations/a0", headers=auth(keys["alice"])).status_code == 204
    path = tmp_path / "message_history" / "user-alice" / "messages.jsonl"
    before = path.read_bytes().splitlines(keepends=True)
    dry = cli(env, "purge", "--dry-run")
    assert dry.returncode == 0 and "user-alice: would remove 2 record(s)" in dry.stdout, dry.stdout + dry.stderr
    assert path.read_bytes() == b"".join(before)
    assert cli(env, "purge", "--user", "alice", stdin="n\n").returncode != 0  # asks, and "n" aborts
    assert path.read_bytes() == b"".join(before)
    done = cli(env, "purge", "--user", "alice", "--yes")
    assert done.returncode == 0 and "Purged 2 record(s)" in done.stdout, done.stdout + done.stderr
    after = path.read_bytes().splitlines(keepends=True)
    assert after == [line for line in before if b'"session_id":"a0"' not in line or b"delete_conversation" in line]
    assert [(r["session_id"], r["role"]) for r in log_lines(tmp_path, "alice")] == [
        ("a1", "human"), ("a1", "ai"), ("a0", "system")]  # fmt: skip
    assert "Nothing to purge" in cli(env, "purge", "--yes").stdout
    # the running server keeps reading and appending to the rewritten log
    assert httpx.get(f"{url}/v1/conversations", headers=auth(keys["alice"])).json()["total"] == 1
    assert chat(url, keys["alice"], "after the purge", session="a2").status_code == 200
    assert [r["session_id"] for r in log_lines(tmp_path, "alice")][-2:] == ["a2", "a2"]
    assert cli(env, "purge", "--user", "../x").returncode != 0
