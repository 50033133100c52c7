"""read-repo end to end: real files, real Chroma, the real embedder and the bundled local model."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.embeddings import Embeddings

from my_llm import Settings, get_embeddings
from qna.files import discover
from qna.index import RepoIndex, index_folder, repo_embeddings
from qna.read_repo import main

READ_REPO = str(Path(sys.executable).with_name("read-repo"))


@pytest.fixture(scope="module")
def embeddings():
    return get_embeddings("local")


def _run(*args):
    return subprocess.run([READ_REPO, *args], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_ask_prints_an_answer_with_sources_and_logs_both(small_repo, settings):
    question = "How is the area of a circle computed?"
    done = _run(str(small_repo), "--ask", question)
    assert done.returncode == 0, done.stderr
    answer, _, sources = done.stdout.partition("== Document sources:\n")
    assert answer.strip()
    cited = sources.splitlines()
    assert cited and all(re.fullmatch(r" - (README\.md|pkg/[a-z_]+\.py):L\d+-\d+", line) for line in cited)
    assert any(line.startswith(" - pkg/geometry.py:") for line in cited)
    assert not any(name in done.stdout for name in ("generated.py", ".env", "logo.py"))

    log = settings.message_history / "read_repo-tinyrepo" / "messages.jsonl"
    human, ai = (json.loads(line) for line in log.read_text().splitlines())
    assert (human["role"], human["content"], human["source"]) == ("human", question, "read_repo")
    assert ai["role"] == "ai" and ai["content"] == answer.strip()
    assert ai["model"] == "local:SmolLM2-135M-Instruct" and ai["usage"]["output_tokens"] > 0
    assert ai["session_id"] == human["session_id"]

    again = _run(str(small_repo), "--ask", question)
    assert again.returncode == 0, again.stderr
    assert "0 files indexed (0 new chunks, 0 embedded), 3 unchanged" in " ".join(again.stderr.split())
    index = RepoIndex(small_repo, index_folder(settings.chroma_db_path, small_repo), repo_embeddings(settings))
    assert index.manifest.get_meta("embeddings").startswith("onnx-int8:")  # the CLI embedded with int8


def test_code_indexes_embed_with_int8_unless_my_llm_embeddings_says_otherwise(isolated_env, monkeypatch):
    assert repo_embeddings().model_name.startswith("onnx-int8:")
    monkeypatch.setenv("MY_LLM_EMBEDDINGS", "local")
    assert repo_embeddings().model_name.startswith("onnx:")
    assert get_embeddings().model_name.startswith("onnx:")  # memory's default stays float32


@pytest.mark.slow
def test_the_index_is_incremental(small_repo, settings, embeddings):
    index = RepoIndex(small_repo, index_folder(settings.chroma_db_path, small_repo), embeddings)
    first = index.update(discover(small_repo).files)
    assert sorted(first.indexed) == ["README.md", "pkg/__init__.py", "pkg/geometry.py"]
    assert first.chunks_added == index.retriever.count() == first.embedded > 3  # chunks + a summary per file
    assert (index.summaries_folder / "pkg" / "geometry.py.md").read_text().startswith("# pkg/geometry.py")

    second = index.update(discover(small_repo).files)
    assert (second.indexed, second.unchanged, second.removed, second.embedded) == ([], 3, [], 0)

    (small_repo / "README.md").write_text("# Tiny repo\n\nNow about triangles.\n")
    (small_repo / "pkg" / "__init__.py").unlink()
    third = index.update(discover(small_repo).files)
    assert (third.indexed, third.removed) == (["README.md"], ["pkg/__init__.py"])
    assert third.embedded == 2  # the README's one chunk and its summary, nothing else
    paths = {hit.metadata["path"] for hit in index.retriever.search("anything", k=50)}
    assert paths == {"README.md", "pkg/geometry.py"}
    hit = index.search("triangles", k=1)[0]
    assert hit.chunk.path == "README.md" and "triangles" in hit.chunk.text


@pytest.mark.slow
def test_reindex_rebuilds_from_scratch_without_embedding_again(small_repo, settings, embeddings):
    folder = index_folder(settings.chroma_db_path, small_repo)
    first = RepoIndex(small_repo, folder, embeddings).update(discover(small_repo).files)
    rebuilt = RepoIndex(small_repo, folder, embeddings)
    rebuilt.reset()
    assert rebuilt.retriever.count() == 0 and rebuilt.manifest.files() == {}
    again = rebuilt.update(discover(small_repo).files)
    assert len(again.indexed) == 3 and again.chunks_added == first.chunks_added
    assert again.embedded == 0  # every vector came from the cache


@pytest.mark.slow
def test_an_interrupted_run_resumes(small_repo, settings, embeddings):
    folder = index_folder(settings.chroma_db_path, small_repo)
    index = RepoIndex(small_repo, folder, embeddings)
    index.update(discover(small_repo).files)
    index.manifest.forget(["pkg/geometry.py"])  # as if killed after writing chunks, before the manifest
    resumed = RepoIndex(small_repo, folder, embeddings).update(discover(small_repo).files)
    assert resumed.indexed == ["pkg/geometry.py"] and resumed.chunks_added == 0 and resumed.embedded == 0


@pytest.mark.slow
def test_summaries_in_place_are_written_beside_the_source_and_never_indexed(small_repo, settings, embeddings):
    index = RepoIndex(
        small_repo, index_folder(settings.chroma_db_path, small_repo), embeddings, summaries_in_place=True
    )
    index.update(discover(small_repo).files)
    beside = small_repo / "pkg" / "geometry.md"
    assert beside.read_text().startswith("# pkg/geometry.py")
    assert not (small_repo / "README.md").read_text().startswith("# README.md")  # the user's file is untouched
    second = index.update(discover(small_repo).files)
    assert second.indexed == [] and "pkg/geometry.md" not in {h.chunk.path for h in index.search("area", k=20)}


def test_a_missing_repo_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, [str(tmp_path / "nope"), "--ask", "x"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_an_empty_directory_says_there_is_nothing_to_index(tmp_path, settings):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, [str(tmp_path / "empty"), "--ask", "x"])
    assert result.exit_code == 1
    assert "No files to index" in result.output and "--ext" in result.output
    assert not settings.chroma_db_path.exists() and not settings.message_history.exists()


@pytest.mark.parametrize("namespace", ["../x", "a/b", "x..y"])
def test_a_bad_namespace_is_refused_before_anything_is_written(small_repo, settings, namespace):
    result = CliRunner().invoke(main, [str(small_repo), "--namespace", namespace, "--ask", "x"])
    assert result.exit_code == 1 and "namespace" in result.output.lower()
    assert not settings.chroma_db_path.exists() and not settings.message_history.exists()


def test_help_explains_the_options():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for option in ("--reindex", "--ext", "--ignore", "--resummarise", "--ask", "--model", "--namespace"):
        assert option in result.output


def test_the_settings_fixture_isolates_paths(settings, tmp_path):
    assert settings == Settings.from_env() and tmp_path in settings.message_history.parents


@pytest.mark.slow
def test_files_are_ranked_by_their_best_few_chunks(small_repo, settings, embeddings):
    index = RepoIndex(small_repo, index_folder(settings.chroma_db_path, small_repo), embeddings)
    index.update(discover(small_repo).files)
    ranked = index.rank_files("area of a circle from its radius", k=2)
    assert [path for path, _ in ranked][0] == "pkg/geometry.py"
    assert len(ranked) == 2 and ranked[0][1] >= ranked[1][1]
    geometry_hits = [
        h.score for h in index.search("area of a circle from its radius", k=100) if h.chunk.path == "pkg/geometry.py"
    ]
    assert ranked[0][1] == pytest.approx(sum(sorted(geometry_hits, reverse=True)[:3]))


class _RecordingEmbeddings(Embeddings):
    """The real embedder, remembering which document texts it was given."""

    def __init__(self, inner):
        self.inner, self.model_name, self.seen = inner, inner.model_name, []

    def embed_documents(self, texts):
        self.seen.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


@pytest.mark.slow
def test_only_the_head_of_a_chunk_is_embedded_but_all_of_it_is_searched_and_cited(tmp_path, settings, embeddings):
    body = "".join(f"    total += {n}  # step {n}\n" for n in range(40))
    (tmp_path / "big.py").write_text(f"def long_function():\n    total = 0\n{body}    return 'zanzibar'\n")
    recorder = _RecordingEmbeddings(embeddings)
    index = RepoIndex(tmp_path, index_folder(settings.chroma_db_path, tmp_path), recorder, embed_chars=200)
    index.update(discover(tmp_path).files)

    code = [text for text in recorder.seen if text.startswith("big.py long_function\n")]
    assert len(code) == 1 and len(code[0]) == 200 and "zanzibar" not in code[0]
    hit = index.search("zanzibar", k=1, mode="bm25")[0]
    assert hit.chunk.citation == "big.py:L1-43" and hit.chunk.text.endswith("return 'zanzibar'")


@pytest.mark.slow
def test_a_change_of_embedded_text_rebuilds_the_index(small_repo, settings, embeddings):
    folder = index_folder(settings.chroma_db_path, small_repo)
    first = RepoIndex(small_repo, folder, embeddings, embed_chars=200).update(discover(small_repo).files)
    same = RepoIndex(small_repo, folder, embeddings, embed_chars=200).update(discover(small_repo).files)
    assert (same.indexed, same.embedded) == ([], 0)

    wider = RepoIndex(small_repo, folder, embeddings, embed_chars=300)
    again = wider.update(discover(small_repo).files)
    assert len(again.indexed) == 3 and again.chunks_added == first.chunks_added == wider.retriever.count()
    assert again.embedded > 0  # every vector is of the new, longer text
