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


def test_a_file_holding_a_private_key_is_found_whole_and_redacted_when_indexed(tmp_path):
    """Discovery no longer sniffs the first 8 KB: the whole file is scanned when it is indexed (qna.index)."""
    (tmp_path / "notes.txt").write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAabcdefgh\n")
    assert [f.relpath for f in discover(tmp_path).files] == ["notes.txt"]
    assert not discover(tmp_path).skipped["secret"]


@pytest.mark.parametrize(
    ("text", "expected"), [(None, DEFAULT_EXTENSIONS), (".md, py", (".md", ".py")), (" ", DEFAULT_EXTENSIONS)]
)
def test_extensions_parse(text, expected):
    assert parse_extensions(text) == expected


def test_chunks_keep_the_lines_they_came_from():
    text = "".join(f"def function_{i}(x):\n    return x + {i}\n\n" for i in range(200))
    chunks = chunk_text("big.py", text, max_chars=300)
    assert len(chunks) > 10
    source_lines = text.splitlines()
    for chunk in chunks:
        assert chunk.text.splitlines() == source_lines[chunk.start_line - 1 : chunk.end_line]
        assert len(chunk.text) <= 300 and chunk.language == "python"
        assert chunk.citation == f"big.py:L{chunk.start_line}-{chunk.end_line}"
    assert chunks[0].start_line == 1 and chunks[-1].end_line == len(source_lines) - 1  # the last line is blank
    assert chunks[0].symbol.startswith("function_0, function_1")  # small neighbours merged, names kept
    assert len({chunk.id for chunk in chunks}) == len(chunks)


def test_a_big_class_is_split_into_methods_that_keep_its_header():
    methods = "".join(f"    def method_{i}(self):\n        return {'x' * 80!r}\n\n" for i in range(12))
    text = f'import os\n\n\nclass Store(Base):\n    """Keeps things."""\n\n{methods}'
    chunks = chunk_text("store.py", text, max_chars=400)
    lines = text.splitlines()
    head = chunks[0]
    assert head.symbol == "Store" or head.symbol.endswith("Store")
    members = [c for c in chunks if "Store.method_" in c.symbol]
    assert {f"Store.method_{i}" for i in range(12)} <= {s for c in members for s in c.symbol.split(", ")}
    for chunk in members:
        header, *body = chunk.text.splitlines()
        assert header == "class Store(Base):" and body == lines[chunk.start_line - 1 : chunk.end_line]


def test_an_oversized_function_is_cut_into_overlapping_windows():
    text = "def huge():\n" + "".join(f"    x{i} = {i}\n" for i in range(150))
    chunks = chunk_text("huge.py", text, max_chars=500)
    assert [c.symbol for c in chunks] == ["huge"] * len(chunks) and len(chunks) >= 6
    assert chunks[1].start_line <= chunks[0].end_line  # windows overlap
    assert all(len(c.text) <= 500 for c in chunks) and chunks[-1].end_line == 151


@pytest.mark.parametrize(
    ("path", "source", "symbols"),
    [
        (
            "a.js",
            "export function parseConfigFile(a) { return a }\nclass Loader { load() {} }\n",
            {"parseConfigFile", "Loader"},
        ),
        ("a.ts", "interface Shape { area(): number }\nexport class Circle { r = 1 }\n", {"Shape", "Circle"}),
        ("a.go", "package m\nfunc Parse() int { return 1 }\ntype Config struct{}\n", {"Parse", "Config"}),
        ("a.rs", "fn parse() {}\nstruct Config;\n", {"parse", "Config"}),
        ("A.java", "class Config { void load() {} }\n", {"Config"}),
        ("a.c", "int parse(char *s) { return 0; }\n", {"parse"}),
    ],
)
def test_tree_sitter_finds_the_symbols_of_each_language(path, source, symbols):
    chunks = chunk_text(path, source)
    assert symbols <= {name for chunk in chunks for name in chunk.symbol.split(", ")}


def test_markdown_is_split_at_headings_and_text_into_windows():
    body = "\n".join(f"line {i}" for i in range(100))
    chunks = chunk_text("doc.md", f"# Title\n\n{body}\n\n## Usage\n\n```sh\n# not a heading\n```\n", max_chars=400)
    assert chunks[0].symbol == "Title" and chunks[-1].symbol.endswith("Usage")
    assert all("not a heading" not in c.symbol for c in chunks)
    plain = chunk_text("notes.txt", "\n".join(f"note {i:03}" for i in range(130)), max_chars=10_000)
    assert [(c.start_line, c.end_line) for c in plain] == [(1, 60), (51, 110), (101, 130)]  # windows stay apart
    wide = chunk_text("wide.txt", "\n".join("w" * 99 for _ in range(40)), max_chars=1000)
    assert all(len(c.text) <= 1000 for c in wide) and wide[-1].end_line == 40 and len(wide) > 4


@pytest.mark.parametrize(
    "source",
    [
        "assert (1, None)  # [assert-on-tuple]\n",  # a whole one-line file (pylint's doc examples)
        "from hello import app  # noqa: F401\n",
        "def f():\n    result = 1\n    return result  # type: ignore[no-any-return]\n",  # a function's last line
        "class A:\n    def f(self):\n        return 1  # pragma: no cover\n",
        "x = 1  # a\n# b\ny = 2  # c\n",
    ],
)
def test_a_trailing_comment_never_makes_a_second_chunk_with_the_same_id(source):
    """It did: the comment is a node of its own on the statement's line, and ``add()`` refused the batch."""
    chunks = chunk_text("example.py", source)
    assert len({chunk.id for chunk in chunks}) == len(chunks) >= 1
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, len(source.splitlines()))]


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
