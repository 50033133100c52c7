"""A re-index reads and scans for secrets only the files whose (size, mtime_ns) changed (qna.index, manifest's
``stats``): real files, real Chroma and the real local embedder; the scanner is the real one, counted."""

import os
import time

import pytest

import qna.index
from my_llm import find_secrets, get_embeddings
from qna.files import discover
from qna.index import RepoIndex, index_folder

HOUR_AGO = time.time() - 3600


@pytest.fixture(scope="module")
def embeddings():
    return get_embeddings("local")


@pytest.fixture
def scanned(monkeypatch):
    """The relpaths qna.index scanned for secrets, in order (the real find_secrets does the work)."""
    calls: list[str] = []

    def counting(text, *, path=None):
        calls.append(path)
        return find_secrets(text, path=path)

    monkeypatch.setattr(qna.index, "find_secrets", counting)
    return calls


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "statrepo"
    (root / "pkg").mkdir(parents=True)
    files = {
        "README.md": "# Stat repo\n\nShapes.\n",
        "pkg/__init__.py": '"""Package."""\n',
        "pkg/shapes.py": "def area(r):\n    return 3.14159 * r * r\n",
        "pkg/config.py": 'API_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"\n',
    }
    for relpath, text in files.items():
        (root / relpath).write_text(text, encoding="utf-8")
        os.utime(root / relpath, (HOUR_AGO, HOUR_AGO))  # older than RACY_NS: its stat can be trusted
    return root


def _update(index, repo):
    return index.update(discover(repo).files)


@pytest.mark.slow
def test_only_files_whose_stat_changed_are_read_and_scanned(repo, settings, embeddings, scanned):
    index = RepoIndex(repo, index_folder(settings.chroma_db_path, repo), embeddings)
    first = _update(index, repo)
    assert sorted(scanned) == ["README.md", "pkg/__init__.py", "pkg/config.py", "pkg/shapes.py"]
    assert first.redacted == {"pkg/config.py": 1}

    scanned.clear()
    second = _update(index, repo)
    assert scanned == [] and (second.indexed, second.unchanged) == ([], 4)

    os.utime(repo / "pkg" / "shapes.py", (HOUR_AGO + 60, HOUR_AGO + 60))  # touched: same content
    third = _update(index, repo)
    assert scanned == ["pkg/shapes.py"] and (third.indexed, third.unchanged) == ([], 4)

    scanned.clear()
    assert _update(index, repo).unchanged == 4 and scanned == []  # the touched file's new stat was recorded

    (repo / "README.md").write_text("# Stat repo\n\nTriangles now.\n", encoding="utf-8")
    os.utime(repo / "README.md", (HOUR_AGO + 120, HOUR_AGO + 120))
    fifth = _update(index, repo)
    assert scanned == ["README.md"] and fifth.indexed == ["README.md"]
    assert index.search("triangles", k=1)[0].chunk.path == "README.md"


@pytest.mark.slow
def test_a_file_changed_seconds_ago_is_read_again_until_its_stat_is_old(repo, settings, embeddings, scanned):
    index = RepoIndex(repo, index_folder(settings.chroma_db_path, repo), embeddings)
    _update(index, repo)
    (repo / "pkg" / "shapes.py").write_text("def area(r):\n    return 3.1416 * r * r\n", encoding="utf-8")
    scanned.clear()
    assert _update(index, repo).indexed == ["pkg/shapes.py"]
    assert _update(index, repo).indexed == [] and scanned == ["pkg/shapes.py", "pkg/shapes.py"]  # racy: not trusted


@pytest.mark.slow
def test_new_secret_rules_make_every_file_be_scanned_again(repo, settings, embeddings, scanned):
    folder = index_folder(settings.chroma_db_path, repo)
    index = RepoIndex(repo, folder, embeddings)
    _update(index, repo)
    index.manifest.set_meta("stats_rules", "rules of an older my_llm.redact")
    scanned.clear()
    again = _update(RepoIndex(repo, folder, embeddings), repo)
    assert len(scanned) == 4 and again.unchanged == 4 and again.redacted == {"pkg/config.py": 1}
