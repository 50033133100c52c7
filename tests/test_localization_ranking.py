"""read-repo's ranking (qna.ranking): definitions first, the prior against tests/docs/examples, long
questions searched by parts; on click's real source and on small real repositories."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from my_llm import get_embeddings
from qna.files import discover
from qna.index import RepoIndex, index_folder
from qna.ranking import (
    Ranking,
    auxiliary_kind,
    defines,
    named_symbols,
    prior,
    split_question,
    wanted_kinds,
)
from tests.test_read_repo_attacks import HashEmbeddings

OPTION_QUESTION = "Where is the Option class defined?"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("tests/test_core.py", "tests"),
        ("testing/python/fixtures.py", "tests"),
        ("pkg/test_utils.py", "tests"),
        ("conftest.py", "tests"),
        ("docs/conf.py", "docs"),
        ("examples/app/main.py", "examples"),
        ("README.md", None),
        ("src/click/testing.py", None),  # a module of the library, not a test
        ("src/flask/helpers.py", None),
        ("pkg/docs_builder.py", None),
    ],
)
def test_auxiliary_files_are_told_from_code_by_their_path(path, kind):
    assert auxiliary_kind(path) == kind


def test_the_prior_applies_unless_the_question_is_about_that_kind_of_file():
    ranking = Ranking(auxiliary_prior=0.25)
    assert prior("tests/test_core.py", wanted_kinds("Why does split() drop the last statement?"), ranking) == 0.25
    assert prior("tests/test_core.py", wanted_kinds("Which tests cover split()?"), ranking) == 1.0
    assert prior("docs/api.rst", wanted_kinds("Where is split() documented?"), ranking) == 1.0
    assert prior("src/pkg/core.py", set(), ranking) == 1.0


def test_names_written_as_code_are_found_and_plain_words_are_not():
    question = (
        "`OneOf.options()` emits extra pairs when labels outnumber choices. It zips them with "
        "zip_longest; the FileSystemLoader is fine. Where is the Option class defined?"
    )
    names = named_symbols(question)
    assert names[:3] == ["OneOf.options", "OneOf", "options"]
    assert {"zip_longest", "FileSystemLoader", "Option"} <= set(names)
    assert not {"Where", "It", "the", "labels"} & set(names)
    assert named_symbols("Where is the Option class defined?") == ["Option"]
    assert named_symbols("why does it fail") == []


def test_a_chunk_defines_its_symbols_and_its_methods():
    assert defines("Option", "Option") and defines("Option.__init__", "__init__")
    assert defines("a, OneOf.options, b", "options") and defines("OneOf.options", "OneOf.options")
    assert not defines("Option.__init__", "Option") and not defines("Optional", "Option")


def test_only_long_questions_are_split_and_code_blocks_stay_whole():
    ranking = Ranking(split_chars=60, max_parts=3)
    assert split_question("short", ranking) == []
    report = "Title of the bug\n\nFirst paragraph here.\n\n```python\nx = 1\n\ny = 2\n```\n\n" + "tail " * 20
    parts = split_question(report, ranking)
    assert parts[0] == "Title of the bug\n\nFirst paragraph here."
    assert parts[1] == "```python\nx = 1\n\ny = 2\n```"
    assert len(parts) == 3 and split_question(report, Ranking(split_chars=0)) == []


def _tiny_repo(root: Path) -> Path:
    """A module and a test file that matches a bug report's words better than the module does."""
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "timestamps.py").write_text(
        "def parse_timestamp(value):\n    '''Turn a POSIX timestamp into a datetime; invalid values raise.'''\n"
        "    return datetime.fromtimestamp(value)\n",
        encoding="utf-8",
    )
    (root / "tests" / "test_timestamps.py").write_text(
        "def test_timestamp_zero():\n    # timestamp 0 is the epoch\n    assert parse_timestamp(0) == EPOCH\n",
        encoding="utf-8",
    )
    return root


def test_the_module_outranks_a_test_file_that_repeats_its_words(tmp_path, settings):
    repo = _tiny_repo(tmp_path / "repo")
    folder = index_folder(settings.chroma_db_path, repo)
    RepoIndex(repo, folder, HashEmbeddings()).update(discover(repo).files)
    question = "timestamp 0 is rejected as an invalid timestamp"

    plain = RepoIndex(repo, folder, HashEmbeddings(), ranking=Ranking(auxiliary_prior=1.0, definitions=False))
    assert [path for path, _ in plain.rank_files(question, mode="bm25")][0] == "tests/test_timestamps.py"
    shipped = RepoIndex(repo, folder, HashEmbeddings())
    assert [path for path, _ in shipped.rank_files(question, mode="bm25")] == [
        "pkg/timestamps.py",
        "tests/test_timestamps.py",
    ]
    # Asked about the tests, the test file keeps its score.
    assert shipped.rank_files("which test checks timestamp 0?", mode="bm25")[0][0] == "tests/test_timestamps.py"


def test_a_named_function_is_found_at_its_definition_and_the_prior_never_drops_a_file(tmp_path, settings):
    repo = _tiny_repo(tmp_path / "repo")
    index = RepoIndex(repo, index_folder(settings.chroma_db_path, repo), HashEmbeddings())
    index.update(discover(repo).files)
    hits = index.search("what does parse_timestamp() return?", k=2, mode="bm25")
    assert (hits[0].chunk.path, hits[0].chunk.start_line) == ("pkg/timestamps.py", 1)
    # Words only a test file holds still find it: the prior scales scores, it does not filter.
    assert index.rank_files("the epoch assert is wrong", mode="bm25")[0][0] == "tests/test_timestamps.py"


@pytest.fixture(scope="module")
def click_index(tmp_path_factory):
    """click's installed source indexed with the bundled local embedder (about 30 s on 2 cores)."""
    root = Path(importlib.import_module("click").__file__).parent
    folder = tmp_path_factory.mktemp("click-index")
    index = RepoIndex(root, index_folder(folder, root), get_embeddings("local"))
    index.update(discover(root).files)
    return root, folder, index


@pytest.mark.slow
def test_asked_where_a_class_is_defined_the_definition_is_the_first_source(click_index):
    root, folder, index = click_index
    lines = (root / "core.py").read_text(encoding="utf-8").splitlines()
    start = next(n for n, line in enumerate(lines, start=1) if re.match(r"class Option\(Parameter\)", line))

    hits = index.search(OPTION_QUESTION, k=5)
    assert (hits[0].chunk.path, hits[0].chunk.start_line) == ("core.py", start)
    assert hits[0].chunk.text.startswith("class Option(Parameter)")
    assert len(hits) == 5 and len({hit.chunk.id for hit in hits}) == 5

    # Without the definition table, the same index and retriever do not put it first (issue 18: 5th of 5).
    plain = RepoIndex(root, index_folder(folder, root), index.embeddings.inner, ranking=Ranking(definitions=False))
    assert (plain.search(OPTION_QUESTION, k=5)[0].chunk.start_line, "core.py") != (start, "core.py")


@pytest.mark.slow
def test_a_method_named_with_its_class_finds_the_method(click_index):
    _, _, index = click_index
    hits = index.search("What does `Context.invoke()` do with a command?", k=3)
    assert hits[0].chunk.path == "core.py" and "def invoke(" in hits[0].chunk.text
    assert index.rank_files("What does `Context.invoke()` do with a command?", k=3)[0][0] == "core.py"
