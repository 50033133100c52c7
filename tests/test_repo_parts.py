"""Discovery, chunking and summaries of read-repo: pure logic on real files."""

import subprocess

import pytest

from qna.chunking import chunk_text
from qna.files import DEFAULT_EXTENSIONS, discover, parse_extensions
from qna.summaries import summarise_file


def test_discovery_honours_gitignore_and_skips_secrets_and_binaries(small_repo):
    found = discover(small_repo)
    assert [f.relpath for f in found.files] == ["README.md", "pkg/__init__.py", "pkg/geometry.py"]
    assert found.skipped["secret"] == [".env"]
    assert found.skipped["binary"] == ["logo.py"]
    assert all("build/" not in path for paths in found.skipped.values() for path in paths)


def test_discovery_applies_ignore_patterns_and_extensions(small_repo):
    found = discover(small_repo, parse_extensions(".py"), ignore=("pkg/__init__.py",))
    assert [f.relpath for f in found.files] == ["pkg/geometry.py"]
    assert found.skipped["--ignore"] == ["pkg/__init__.py"]


def test_discovery_uses_git_inside_a_work_tree(small_repo):
    subprocess.run(["git", "init", "-q", str(small_repo)], check=True)
    (small_repo / "pkg" / ".gitignore").write_text("geometry.py\n")
    assert [f.relpath for f in discover(small_repo).files] == ["README.md", "pkg/__init__.py"]


def test_a_folder_the_enclosing_git_repo_ignores_is_read_as_a_plain_folder(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(".venv/\n")
    package = tmp_path / ".venv" / "lib" / "click"
    package.mkdir(parents=True)
    (package / "core.py").write_text("def command():\n    pass\n")
    (package / ".gitignore").write_text("*.pyc\n")
    (package / "core.pyc").write_text("compiled")
    assert [f.relpath for f in discover(package, parse_extensions(".py,.pyc")).files] == ["core.py"]


def test_non_utf8_and_huge_files_are_skipped_with_their_reason(tmp_path):
    (tmp_path / "latin1.py").write_bytes("caf\xe9 = 1\n".encode("latin-1"))
    (tmp_path / "huge.txt").write_text("x" * 1_000_001)
    found = discover(tmp_path)
    assert found.files == []
    assert found.skipped["not UTF-8"] == ["latin1.py"]
    assert found.skipped["larger than 1000 kB"] == ["huge.txt"]


def test_a_file_holding_a_private_key_is_a_secret(tmp_path):
    (tmp_path / "notes.txt").write_text("-----BEGIN RSA PRIVATE KEY-----\nabc\n")
    assert discover(tmp_path).skipped["secret"] == ["notes.txt"]


@pytest.mark.parametrize(
    ("text", "expected"), [(None, DEFAULT_EXTENSIONS), (".md, py", (".md", ".py")), (" ", DEFAULT_EXTENSIONS)]
)
def test_extensions_parse(text, expected):
    assert parse_extensions(text) == expected


def test_chunks_keep_the_lines_they_came_from():
    lines = [f"def function_{i}(x):\n    return x + {i}\n\n" for i in range(200)]
    text = "".join(lines)
    chunks = chunk_text("big.py", text, chunk_chars=300, overlap_chars=0)
    assert len(chunks) > 10
    source_lines = text.splitlines()
    for chunk in chunks:
        assert chunk.text.splitlines() == source_lines[chunk.start_line - 1 : chunk.end_line]
        assert chunk.language == "python" and chunk.citation == f"big.py:L{chunk.start_line}-{chunk.end_line}"
    assert chunks[0].start_line == 1 and chunks[-1].end_line == len(source_lines) - 1  # the last line is blank
    assert len({chunk.id for chunk in chunks}) == len(chunks)


def test_blank_files_have_no_chunks():
    assert chunk_text("empty.md", "\n\n   \n") == []


def test_python_summary_lists_docstring_classes_methods_and_functions(small_repo):
    text = (small_repo / "pkg" / "geometry.py").read_text()
    summary = summarise_file("pkg/geometry.py", text)
    assert summary.startswith("# pkg/geometry.py\n")
    assert "Shapes and their areas." in summary
    assert "- `class Circle` (L6-14): A circle given by its radius in metres." in summary
    assert "  - `def area(self) -> float` (L12-14): Area in square metres: pi times the radius squared." in summary
    assert "- `def perimeter_of_square(side: float) -> float` (L17-19)" in summary


def test_markdown_summary_lists_headings_but_not_fenced_comments():
    summary = summarise_file("doc.md", "# Title\n\n```sh\n# not a heading\n```\n\n## Part\n")
    assert "- Title (L1)" in summary and "  - Part (L7)" in summary
    assert "not a heading" not in summary


def test_unparseable_python_still_gets_a_summary():
    summary = summarise_file("bad.py", "def broken(:\n    pass\n")
    assert "Could not parse as Python: line 1" in summary and "def broken(:" in summary
