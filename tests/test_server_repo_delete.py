"""``DELETE /v1/repos/{id}`` and the repositories page's Delete button, against a real uvicorn server whose
embedder is the local ONNX MiniLM (no chat model is called: the upstream is a closed port). Only the user who
registered a repository or an admin may remove it; removal deletes the registry row and the index folder
and never touches the repository's own files; a repository being indexed is refused (409) and one still
queued is removed before the worker reaches it, which then writes nothing; the same path registers and
indexes again afterwards. With ``CHROMA_HOST`` (a real ``chroma run``), the collection on the server goes too. The
page is driven by Playwright with Debian's Chromium (``tests/test_web.py``)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from my_llm.retrieval import remote_collection_name
from qna.index import COLLECTION, index_folder
from tests.test_chroma_server import chroma_server  # noqa: F401 (fixture)
from tests.test_server import auth, cli, new_key, server_env, start_server
from tests.test_server_memory_repos import _big_repo, _wait_ready
from tests.test_web import browser, page, sign_in  # noqa: F401 (fixtures)

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server with one repository root, users alice and bob (passwords and keys) and admin root. Yields
    (url, keys, root, chroma_db_path)."""
    base = tmp_path_factory.mktemp("repo-delete")
    root = base / "roots"
    root.mkdir()
    env = server_env(base, "http://127.0.0.1:9/v1", MY_LLM_REPO_ROOTS=str(root), MY_LLM_RATE_LIMIT="1000/minute")
    keys = {}
    for name, password in PASSWORDS.items():
        added = cli(env, "users", "add", name, "--password-stdin", stdin=password + "\n")
        assert added.returncode == 0, added.stderr
        keys[name] = cli(env, "users", "key", name).stdout.strip().splitlines()[-1]
    assert cli(env, "users", "add", "root", "--admin").returncode == 0
    keys["root"] = cli(env, "users", "key", "root").stdout.strip().splitlines()[-1]
    server = start_server(env, base / "server.log")
    try:
        yield server.url, keys, root, Path(env["CHROMA_DB_PATH"])
    finally:
        server.stop()


def _copy(small_repo: Path, root: Path, name: str) -> Path:
    folder = root / name
    shutil.copytree(small_repo, folder, symlinks=True)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (files with their bytes, folders and symlinks as None)."""
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() and not path.is_symlink() else None
        for path in sorted(folder.rglob("*"))
    }


def _register(url: str, key: str, folder: Path) -> httpx.Response:
    return httpx.post(f"{url}/v1/repos", json={"path": str(folder)}, headers=auth(key), timeout=30)


def _delete(url: str, key: str, repo_id: int) -> httpx.Response:
    return httpx.delete(f"{url}/v1/repos/{repo_id}", headers=auth(key), timeout=60)


def test_the_owner_removes_a_repository_its_index_goes_and_its_files_stay(site, small_repo):
    url, keys, root, chroma = site
    folder = _copy(small_repo, root, "removable")
    before = _snapshot(folder)
    made = _register(url, keys["alice"], folder)
    assert made.status_code == 201, made.text
    repo_id = made.json()["id"]
    _wait_ready(url, keys["alice"], repo_id)
    index = index_folder(chroma, folder)
    assert (index / "manifest.sqlite3").is_file() and (index / "chroma").is_dir()

    refused = _delete(url, keys["bob"], repo_id)  # bob did not register it and is no admin
    assert refused.status_code == 403, refused.text
    assert "alice" in refused.json()["error"]["message"]
    assert httpx.get(f"{url}/v1/repos/{repo_id}", headers=auth(keys["bob"]), timeout=30).status_code == 200
    assert index.is_dir()
    assert _delete(url, keys["alice"], 999_999).status_code == 404
    assert _delete(url, keys["alice"], 0).status_code == 422

    removed = _delete(url, keys["alice"], repo_id)
    assert removed.status_code == 204 and removed.content == b""
    assert httpx.get(f"{url}/v1/repos/{repo_id}", headers=auth(keys["alice"]), timeout=30).status_code == 404
    listed = httpx.get(f"{url}/v1/repos", headers=auth(keys["alice"]), timeout=30).json()["data"]
    assert repo_id not in [r["id"] for r in listed]
    asked = httpx.post(f"{url}/v1/repos/{repo_id}/ask", json={"question": "How is a circle's area computed?"},
                       headers=auth(keys["alice"]), timeout=30)  # fmt: skip
    assert asked.status_code == 404, asked.text
    assert _delete(url, keys["alice"], repo_id).status_code == 404  # already gone
    assert not index.exists()
    assert _snapshot(folder) == before  # the repository's own files, byte for byte

    again = _register(url, keys["bob"], folder)  # the same path registers and indexes anew
    assert again.status_code == 201, again.text
    ready = _wait_ready(url, keys["bob"], again.json()["id"])
    assert ready["chunks"] > 0 and ready["files_total"] == 3 and ready["registered_by"] == "bob"
    assert (index / "manifest.sqlite3").is_file()
    assert _delete(url, keys["root"], ready["id"]).status_code == 204  # an admin may remove anyone's
    assert not index.exists() and _snapshot(folder) == before


def test_a_repository_being_indexed_is_refused_and_a_queued_one_is_never_indexed(site, small_repo):
    url, keys, root, chroma = site
    big = _big_repo(root / "bigone", files=150)
    queued = _copy(small_repo, root, "queued-one")
    first = _register(url, keys["alice"], big).json()
    second = _register(url, keys["alice"], queued).json()

    deadline = time.monotonic() + 120
    while (state := httpx.get(f"{url}/v1/repos/{first['id']}", headers=auth(keys["alice"]), timeout=30).json())[
        "state"
    ] == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state["state"] == "indexing", state  # 150 files take a few seconds
    busy = _delete(url, keys["alice"], first["id"])
    assert busy.status_code == 409, busy.text
    assert busy.json()["repo"]["state"] == "indexing" and "being indexed" in busy.json()["error"]["message"]

    assert _delete(url, keys["alice"], second["id"]).status_code == 204  # still queued behind the big one
    _wait_ready(url, keys["alice"], first["id"])
    time.sleep(1)  # the worker has moved past the removed one
    assert not index_folder(chroma, queued).exists()  # the worker never wrote an index for it
    assert _delete(url, keys["alice"], first["id"]).status_code == 204
    assert not index_folder(chroma, big).exists()
    assert httpx.get(f"{url}/v1/repos", headers=auth(keys["alice"]), timeout=30).json()["data"] == []


def test_the_delete_button_confirms_with_the_csrf_token(page, site, small_repo):  # noqa: F811
    url, keys, root, chroma = site
    folder = _copy(small_repo, root, "web-one")
    before = _snapshot(folder)
    repo_id = _register(url, keys["alice"], folder).json()["id"]
    _wait_ready(url, keys["alice"], repo_id)

    sign_in(page, url, "bob", PASSWORDS["bob"], next_path="/repos")
    assert page.url == f"{url}/repos"
    assert page.locator(f"#repo-{repo_id}").count() == 1
    assert page.locator(f"#repo-{repo_id} a.delete-repo").count() == 0  # not his
    assert page.request.get(f"{url}/repos/{repo_id}/delete").status == 403
    page.context.clear_cookies()

    sign_in(page, url, "alice", PASSWORDS["alice"], next_path="/repos")
    assert page.url == f"{url}/repos"
    page.click(f"#repo-{repo_id} a.delete-repo")
    assert page.url == f"{url}/repos/{repo_id}/delete"
    assert "Delete this repository?" in page.content()
    forged = page.request.post(f"{url}/repos/{repo_id}/delete", form={"csrf_token": "forged"})
    assert forged.status in (400, 403)
    page.click("button:has-text('Delete')")
    assert re.fullmatch(rf"{url}/repos\?deleted={repo_id}", page.url)
    assert f"Repository {repo_id} deleted" in page.locator("[role=status]").inner_text()
    assert page.locator(f"#repo-{repo_id}").count() == 0
    assert not index_folder(chroma, folder).exists() and _snapshot(folder) == before


def test_with_a_chroma_server_the_remote_collection_is_deleted(tmp_path, small_repo, chroma_server):  # noqa: F811
    import chromadb

    root = tmp_path / "roots"
    folder = _copy(small_repo, root, "shared-one")
    env = server_env(tmp_path, "http://127.0.0.1:9/v1", MY_LLM_REPO_ROOTS=str(root), CHROMA_HOST=chroma_server)
    key = new_key(env, "alice")
    server = start_server(env, tmp_path / "server.log")
    host, port = chroma_server.rsplit(":", 1)
    client = chromadb.HttpClient(host=host, port=int(port))
    name = remote_collection_name(COLLECTION, index_folder(Path(env["CHROMA_DB_PATH"]), folder) / "chroma")
    try:
        repo_id = _register(server.url, key, folder).json()["id"]
        _wait_ready(server.url, key, repo_id)
        assert client.get_collection(name).count() > 0
        assert _delete(server.url, key, repo_id).status_code == 204
        assert name not in [collection.name for collection in client.list_collections()]
        again = _register(server.url, key, folder).json()
        assert _wait_ready(server.url, key, again["id"])["chunks"] == client.get_collection(name).count() > 0
    finally:
        server.stop()
