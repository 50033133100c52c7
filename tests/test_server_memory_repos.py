"""``POST /v1/memory/ask`` and the repository routes of my-llm-server, against a real uvicorn server whose chat
model is the real llama.cpp server (SmolLM2, the ``llama_server`` fixture) and whose embedder is the local ONNX
MiniLM: a user's question cites their own records only (never another user's, never a deleted conversation);
repositories register only under ``MY_LLM_REPO_ROOTS`` (no ``..`` or symlink escape), index in the background
with progress, answer 409 before they are ready and then cite ``path:Lstart-end`` sources of the folder."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.test_server import auth, cli, log_lines, new_key, server_env, start_server

CITATION = re.compile(r"^(?P<path>.+):L(?P<start>\d+)-(?P<end>\d+)$")


def chat(url: str, key: str, text: str, session: str) -> None:
    """One short exchange through the logging proxy (both turns land in the key's namespace)."""
    body = {"model": "local", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, headers={**auth(key), "X-Session-Id": session},
                       timeout=120)  # fmt: skip
    assert reply.status_code == 200, reply.text


def ask(url: str, key: str, question: str, as_user: str | None = None) -> httpx.Response:
    params = {"as_user": as_user} if as_user else {}
    return httpx.post(f"{url}/v1/memory/ask", json={"question": question, "k": 4}, params=params, headers=auth(key),
                      timeout=180)  # fmt: skip


@pytest.fixture
def memory_server(tmp_path, llama_server):
    """A server over the llama.cpp server with users alice (and a labelled key), bob, carol and admin root;
    no repository roots configured."""
    env = server_env(tmp_path, llama_server, MY_LLM_RATE_LIMIT="1000/minute")
    keys = {name: new_key(env, name, *flags) for name, flags in
            (("alice", ()), ("bob", ()), ("carol", ()), ("root", ("--admin",)))}  # fmt: skip
    made = cli(env, "users", "key", "alice", "--namespace", "work")
    assert made.returncode == 0, made.stderr
    keys["alice-work"] = made.stdout.strip().splitlines()[-1]
    server = start_server(env, tmp_path / "server.log")
    try:
        yield server.url, keys
    finally:
        server.stop()


def test_memory_cites_only_the_askers_live_records(memory_server, tmp_path):
    url, keys = memory_server
    chat(url, keys["alice"], "My cat is called Zanzibar and she loves sardines.", "pets")
    chat(url, keys["alice-work"], "The quarterly report for the Zanzibar client is due on Friday.", "report")
    chat(url, keys["alice"], "The launch code word is Pomegranate; the cat Zanzibar guards it.", "plan")
    chat(url, keys["bob"], "My dog is called Biscuit and my cat is called Whiskers.", "bob-pets")
    assert httpx.delete(f"{url}/v1/conversations/plan", headers=auth(keys["alice"])).status_code == 204
    alice_ids = {r["id"] for r in log_lines(tmp_path, "alice")}

    answered = ask(url, keys["alice"], "What is my cat called?")
    assert answered.status_code == 200, answered.text
    reply = answered.json()
    sources = reply["sources"]
    assert sources and reply["answer"].strip()
    assert {s["namespace"] for s in sources} <= {"user-alice", "user-alice.key-work"}
    assert any("Zanzibar" in s["excerpt"] and s["session"] == "pets" and s["role"] == "human" for s in sources)
    assert any(s["namespace"] == "user-alice.key-work" for s in sources)  # every namespace of hers is searched
    assert all(s["session"] != "plan" and "Pomegranate" not in s["excerpt"] for s in sources)  # deleted
    assert reply["usage"]["output_tokens"] > 0 and reply["model"]
    logged = [r for r in log_lines(tmp_path, "alice") if r["session_id"] == reply["conversation"]]
    assert [r["role"] for r in logged] == ["human", "ai"]
    assert {s["id"] for s in sources} == set(logged[1]["metadata"]["sources"])

    again = ask(url, keys["alice"], "What is the launch code word?").json()
    assert all(s["session"] not in ("plan", reply["conversation"]) for s in again["sources"])  # nor earlier answers
    assert "Pomegranate" not in str(again["sources"])

    bobs = ask(url, keys["bob"], "What is my cat called?").json()
    assert bobs["sources"] and {s["namespace"] for s in bobs["sources"]} == {"user-bob"}
    assert not {s["id"] for s in bobs["sources"]} & alice_ids
    assert "Zanzibar" not in str(bobs)
    assert ask(url, keys["bob"], "What is my cat called?", as_user="alice").status_code == 403

    as_admin = ask(url, keys["root"], "What is the cat called?", as_user="alice").json()
    assert any("Zanzibar" in s["excerpt"] for s in as_admin["sources"])
    assert ask(url, keys["root"], "anything", as_user="../x").status_code == 400

    empty = ask(url, keys["carol"], "What is my cat called?")
    assert empty.status_code == 200 and empty.json()["sources"] == []
    assert "no conversation records" in empty.json()["answer"]
    bad = httpx.post(f"{url}/v1/memory/ask", json={"question": ""}, headers=auth(keys["alice"]), timeout=30)
    assert bad.status_code == 422 and "question" in bad.json()["error"]["message"]

    # This server has no repository roots: registration is refused with how to configure them.
    refused = httpx.post(f"{url}/v1/repos", json={"path": str(tmp_path)}, headers=auth(keys["alice"]), timeout=30)
    assert refused.status_code == 403
    assert "MY_LLM_REPO_ROOTS" in refused.json()["error"]["message"]


def _big_repo(folder: Path, files: int = 60) -> Path:
    """A folder of ``files`` small Python modules: indexing it takes a few seconds."""
    for n in range(files):
        (folder / "pkg").mkdir(parents=True, exist_ok=True)
        (folder / "pkg" / f"module_{n}.py").write_text(
            f'"""Module {n}: helpers for task {n}."""\n\n\ndef helper_{n}(value: int) -> int:\n'
            f'    """Return value plus {n}."""\n    return value + {n}\n',
            encoding="utf-8",
        )
    return folder


def _wait_ready(url: str, key: str, repo_id: int, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        repo = httpx.get(f"{url}/v1/repos/{repo_id}", headers=auth(key), timeout=30).json()
        assert repo["state"] != "failed", repo
        if repo["state"] == "ready":
            return repo
        time.sleep(0.3)
    raise AssertionError(f"repository {repo_id} not ready after {timeout_s} s: {repo}")


@pytest.fixture
def repo_server(tmp_path, llama_server, small_repo):
    """A server with one repository root holding the small repo and a bigger one; a folder outside the root and
    a symlink inside the root that points to it."""
    root = tmp_path / "roots" / "repos"
    root.mkdir(parents=True)
    shutil.copytree(small_repo, root / "tinyrepo", symlinks=True)
    _big_repo(root / "bigrepo")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("PASSWORD = 'hunter2'\n", encoding="utf-8")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    env = server_env(tmp_path, llama_server, MY_LLM_REPO_ROOTS=str(root), MY_LLM_RATE_LIMIT="1000/minute")
    keys = {name: new_key(env, name) for name in ("alice", "bob")}
    server = start_server(env, tmp_path / "server.log")
    try:
        yield server.url, keys, root, outside
    finally:
        server.stop()


def test_repo_paths_outside_the_roots_are_refused(repo_server):
    url, keys, root, outside = repo_server

    def register(path: str) -> httpx.Response:
        return httpx.post(f"{url}/v1/repos", json={"path": path}, headers=auth(keys["alice"]), timeout=30)

    for path in (str(outside), f"{root}/../../outside", f"{root}/tinyrepo/../../../outside", str(root / "escape"),
                 str(root / "escape" / "nested"), "/etc"):  # fmt: skip
        refused = register(path)
        assert refused.status_code == 403, (path, refused.text)
        assert "outside the repository roots" in refused.json()["error"]["message"]
    assert register("tinyrepo").status_code == 400  # relative
    assert register(str(root / "missing")).status_code == 400
    assert register(str(root / "tinyrepo" / "README.md")).status_code == 400  # a file
    assert register("").status_code == 422
    assert httpx.get(f"{url}/v1/repos", headers=auth(keys["alice"]), timeout=30).json()["data"] == []
    assert httpx.get(f"{url}/v1/repos", headers=auth("nope"), timeout=30).status_code == 401


def test_repo_indexes_in_the_background_and_answers_with_sources(repo_server):
    url, keys, root, _ = repo_server
    big = httpx.post(f"{url}/v1/repos", json={"path": str(root / "bigrepo")}, headers=auth(keys["alice"]), timeout=30)
    tiny = httpx.post(f"{url}/v1/repos", json={"path": f"{root}/bigrepo/../tinyrepo"}, headers=auth(keys["alice"]),
                      timeout=30)  # fmt: skip
    assert big.status_code == 201 and tiny.status_code == 201, (big.text, tiny.text)
    tiny_id = tiny.json()["id"]
    assert tiny.json()["path"] == str((root / "tinyrepo").resolve()) and tiny.json()["registered_by"] == "alice"

    early = httpx.post(f"{url}/v1/repos/{tiny_id}/ask", json={"question": "How is a circle's area computed?"},
                       headers=auth(keys["bob"]), timeout=30)  # fmt: skip
    assert early.status_code == 409, early.text  # queued behind the big one (one indexing worker)
    assert early.json()["repo"]["state"] in ("queued", "indexing") and "not ready" in early.json()["error"]["message"]

    seen = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        progress = httpx.get(f"{url}/v1/repos/{big.json()['id']}", headers=auth(keys["bob"]), timeout=30).json()
        seen.append((progress["state"], progress["files_done"], progress["files_total"]))
        if progress["state"] in ("ready", "failed"):
            break
        time.sleep(0.2)
    assert seen[-1] == ("ready", 60, 60), seen
    assert all(total in (None, 60) and done <= 60 for _, done, total in seen)
    assert any(state == "indexing" for state, _, _ in seen), seen
    ready = _wait_ready(url, keys["alice"], tiny_id)
    assert ready["files_total"] == 3 and ready["chunks"] > 0 and ready["indexed_at"]  # .py x2 and README.md

    listed = httpx.get(f"{url}/v1/repos", headers=auth(keys["bob"]), timeout=30).json()["data"]  # shared
    assert [r["name"] for r in listed] == ["bigrepo", "tinyrepo"]
    again = httpx.post(f"{url}/v1/repos", json={"path": str(root / "tinyrepo")}, headers=auth(keys["bob"]), timeout=30)
    assert again.status_code == 200 and again.json()["id"] == tiny_id
    _wait_ready(url, keys["alice"], tiny_id)

    answered = httpx.post(f"{url}/v1/repos/{tiny_id}/ask", json={"question": "How is the area of a Circle computed?",
                          "k": 3}, headers=auth(keys["bob"]), timeout=180)  # fmt: skip
    assert answered.status_code == 200, answered.text
    reply = answered.json()
    assert reply["answer"].strip() and reply["sources"]
    for source in reply["sources"]:
        match = CITATION.match(source["citation"])
        assert match, source
        lines = (root / "tinyrepo" / match["path"]).read_text(encoding="utf-8").splitlines()
        assert 1 <= int(match["start"]) <= int(match["end"]) <= len(lines), source
    assert "pkg/geometry.py" in {s["path"] for s in reply["sources"]}
    assert httpx.post(f"{url}/v1/repos/999/ask", json={"question": "x"}, headers=auth(keys["bob"]),
                      timeout=30).status_code == 404  # fmt: skip
    assert httpx.get(f"{url}/v1/repos/0", headers=auth(keys["bob"]), timeout=30).status_code == 422
