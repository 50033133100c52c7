"""read-repo indexes the source trees of real, popular projects installed from PyPI without an error.

Each tree is the package folder in this venv (its ``.py`` files and whatever docs and config it ships:
``.md``, ``.rst``, ``.txt``, ``.toml``, ``.cfg``, ``.yaml``, ``.js``, ``.sh``). Structural summaries and a fast
hash embedder keep the run to about a minute on 2 cores: the pipeline under test is discovery, redaction,
chunking, summaries and Chroma, not the embedding model. FastAPI (``staticfiles.py``, ``templating.py``...)
and numpy's ``lib`` (``npyio.py``, ``stride_tricks.py``) hold the one-line files with a trailing comment
that stopped indexing before (``ValueError: ids repeat within one add() call.``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from qna.files import discover, parse_extensions
from qna.index import RepoIndex, index_folder
from tests.test_read_repo_attacks import HashEmbeddings

EXTENSIONS = parse_extensions(".py,.pyi,.md,.rst,.txt,.toml,.cfg,.ini,.yaml,.yml,.js,.ts,.sh")
PROJECTS = ["click", "rich", "pygments", "langchain_core", "pydantic", "fastapi", "numpy/lib"]


@pytest.mark.slow
@pytest.mark.parametrize("project", PROJECTS)
def test_a_real_project_indexes_without_an_error(project, settings):
    package, _, subfolder = project.partition("/")
    try:
        root = Path(importlib.import_module(package).__file__).parent / subfolder
    except ImportError:
        pytest.skip(f"{package} is not installed in this venv")
    found = discover(root, EXTENSIONS)
    assert len(found.files) >= 15
    index = RepoIndex(root, index_folder(settings.chroma_db_path, root), HashEmbeddings())
    report = index.update(found.files)
    assert report.failed == {}
    assert sorted(report.indexed) == sorted(f.relpath for f in found.files)
    assert index.retriever.count() == report.chunks_added > len(found.files)
