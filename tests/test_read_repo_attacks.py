"""read-repo tried as an attacker would (issue 13): a repository full of secrets, a dangling symlink where a
summary goes, a model that answers with escape sequences, files that break the pipeline.

The CLI runs in-process with a recording fake chat model and a fast fake embedder (both handed in through
the factories read_repo calls), and real files, real Chroma and the real log.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

import my_llm
import qna.index
import qna.read_repo
from my_llm import MyLLMError
from qna.files import discover
from qna.index import RepoIndex, index_folder
from qna.read_repo import main
from qna.shell import _save_history
from qna.terminal import SafeStream, strip_control
from tests.test_redact import AWS_ID, AWS_SECRET, GITHUB, KEY_LINES, OPENAI

INI_PASSWORD = "correct-horse-battery-42"
SA_KEY_LINES = ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj", "AgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4"]
SECRETS = [OPENAI, AWS_ID, AWS_SECRET, GITHUB, INI_PASSWORD, *KEY_LINES, *SA_KEY_LINES]
MARKER = "zanzibar_lighthouse"  # a plain word that must reach the index: proves the searches below can see


class RecordingChat(BaseChatModel):
    """Answers every prompt with ``reply`` (streamed 7 characters at a time) and keeps the prompts."""

    reply: str = "An answer."
    prompts: list = []

    @property
    def _llm_type(self) -> str:
        return "recording-fake"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.prompts.append([m.content for m in messages])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self.prompts.append([m.content for m in messages])
        for piece in re.findall(r".{1,7}", self.reply, re.DOTALL):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


class HashEmbeddings(Embeddings):
    """A fast deterministic embedder that keeps every text it was given (what a remote embedder would see)."""

    model_name = "hash-test"

    def __init__(self, fail_on: str | None = None) -> None:
        self.seen: list[str] = []
        self.fail_on = fail_on

    def embed_documents(self, texts):
        if self.fail_on and any(self.fail_on in text for text in texts):
            raise ValueError("this text cannot be embedded")
        self.seen.extend(texts)
        return [self._vector(text) for text in texts]

    def embed_query(self, text):
        self.seen.append(text)
        return self._vector(text)

    @staticmethod
    def _vector(text):
        return [byte / 255 for byte in hashlib.sha256(text.encode()).digest()]


def _secret_repo(root: Path) -> Path:
    """Every kind of secret the issue found indexed, plus a file name that holds an escape sequence."""
    root.mkdir(parents=True)
    (root / "config.py").write_text(f'"""Settings."""\nOPENAI_API_KEY = "{OPENAI}"\nREGION = "{MARKER}"\n')
    (root / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{AWS_ID}"\nAWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"\n')
    (root / "deploy.yml").write_text(f"jobs:\n  build:\n    env:\n      GH_TOKEN: {GITHUB}\n")
    (root / "db.ini").write_text(f"[database]\nuser = app\npassword = {INI_PASSWORD}\n")
    padding = "".join(f"# line {n}: nothing to see here, only padding to pass 8 KB\n" for n in range(200))
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_LINES) + "\n-----END RSA PRIVATE KEY-----\n"
    (root / "late_key.py").write_text(f'{padding}KEY = """\n{key}"""\n')
    assert (root / "late_key.py").read_text().index("BEGIN") > 8192
    account = {"type": "service_account", "private_key_id": "k1", "client_email": "bot@p.iam.gserviceaccount.com"}
    account["private_key"] = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(SA_KEY_LINES) + "\n-----END PRIVATE KEY-----\n"
    (root / "service_account.json").write_text(json.dumps(account, indent=2))  # the key: one line, \n escaped
    (root / "evil\x1b]0;owned\x07.py").write_text("def evil():\n    return 1\n")
    return root


def _leaks(root: Path) -> list[tuple[str, str]]:
    """(file, secret) for every secret whose bytes appear in any file under ``root``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found.extend((str(path), secret) for secret in SECRETS if secret.encode() in data)
    return found


@pytest.fixture
def fakes(monkeypatch):
    """The recording chat model and the fake embedder, handed to read-repo through its factories (read-repo
    imports them when it runs, from the my_llm face and qna.index, so they are replaced there)."""
    chat = RecordingChat(prompts=[])
    embeddings = HashEmbeddings()
    monkeypatch.setattr(my_llm, "get_chat_model", lambda spec, settings: chat)
    monkeypatch.setattr(qna.index, "repo_embeddings", lambda settings=None: embeddings)
    return chat, embeddings


@pytest.mark.parametrize(
    ("options", "indexed"),
    [
        (["--summaries-in-place"], 6),  # structural summaries beside the sources, default extensions
        (["--summarise", "llm", "--ext", ".py,.yml,.ini,.json"], 7),  # the model summarises; the JSON too
        (["--ext", ".json"], 1),
    ],
)
def test_no_secret_reaches_the_index_the_summaries_the_model_the_log_or_the_terminal(
    tmp_path, settings, fakes, options, indexed
):
    chat, embeddings = fakes
    repo = _secret_repo(tmp_path / "secrets")
    sources = {path: path.read_bytes() for path in repo.iterdir()}
    chat.reply = (
        f"See config.py:L1-2. The key is {OPENAI} and the token {GITHUB}.\n"
        f"\x1b]0;owned\x07\x1b[2J\x1b[1;1HAWS: {AWS_ID}, aws_secret_access_key = '{AWS_SECRET}'\x9b31m done\n"
    )
    question = f"Why is {GITHUB} refused, and is password = '{INI_PASSWORD}' right?"
    result = CliRunner().invoke(main, [str(repo), "--model", "openai:fake", "--ask", question, *options])
    assert result.exit_code == 0, result.output
    assert f"{indexed} files indexed" in " ".join(result.output.split())
    assert "[REDACTED:openai-token]" in result.output and "[REDACTED:github-token]" in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\x9b" not in result.output
    assert "Secrets:" in result.output and "replaced by [REDACTED:<kind>]" in result.output

    assert _leaks(settings.chroma_db_path) == []  # Chroma, the manifest, the summaries in the index folder
    stored = b"".join(path.read_bytes() for path in settings.chroma_db_path.rglob("*") if path.is_file())
    assert MARKER.encode() in stored or options == ["--ext", ".json"]  # the search above sees stored text
    assert _leaks(settings.message_history) == []  # messages.jsonl, the outbox
    generated = [path for path in repo.rglob("*") if path not in sources]
    assert [(file, secret) for file, secret in _leaks(repo) if Path(file) not in sources] == []
    assert all(path.read_bytes() == data for path, data in sources.items())  # sources untouched
    if "--summaries-in-place" in options:
        assert {p.name for p in generated} >= {"config.md", "settings.md", "late_key.md", "db.md", "deploy.md"}
        assert "[REDACTED:openai-token]" in (repo / "config.md").read_text()
    prompts = json.dumps(chat.prompts) + json.dumps(embeddings.seen)
    assert not [secret for secret in SECRETS if secret in prompts] and chat.prompts
    assert MARKER in prompts or "--ext" in options  # the check above can see the file's words
    log = (settings.message_history / "read_repo-secrets" / "messages.jsonl").read_text()
    human, ai = (json.loads(line) for line in log.splitlines())
    assert "[REDACTED:github-token]" in human["content"] and "[REDACTED:openai-token]" in ai["content"]


def test_summaries_in_place_never_write_through_a_symlink_or_outside(tmp_path, settings):
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (outside / "kept.txt").write_text("the user's own file\n")
    for name in ("mod", "other", "plain"):
        (repo / f"{name}.py").write_text(f'"""The {name} module."""\n\ndef {name}():\n    return 1\n')
    (repo / "mod.md").symlink_to(outside / "authorized_keys")  # dangling: the attack in the issue
    (repo / "other.md").symlink_to(outside / "kept.txt")
    index = RepoIndex(repo, index_folder(settings.chroma_db_path, repo), HashEmbeddings(), summaries_in_place=True)
    report = index.update(discover(repo).files)
    assert sorted(report.indexed) == ["mod.py", "other.py", "plain.py"]
    assert sorted(os.listdir(outside)) == ["kept.txt"] and (outside / "kept.txt").read_text() == "the user's own file\n"
    assert sorted(report.not_in_place) == ["mod.md", "other.md"]
    assert (repo / "plain.md").read_text().startswith("# plain.py")
    (repo / "plain.md").unlink()
    (repo / "plain.md").symlink_to(outside / "swapped")  # our own summary, swapped for a link between runs
    (repo / "plain.py").write_text("def plain():\n    return 2\n")
    again = index.update(discover(repo).files)
    assert again.not_in_place == ["plain.md"] and not (outside / "swapped").exists()


@pytest.mark.parametrize("where", ["/", "home", "home_of_another"])
def test_read_repo_refuses_the_root_and_home_folders(tmp_path, settings, monkeypatch, fakes, where):
    home, alice = tmp_path / "me", tmp_path / "users" / "alice"
    for folder in (home, alice):
        folder.mkdir(parents=True)
        (folder / "notes.py").write_text("x = 1\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(qna.read_repo, "HOME_PARENTS", (Path("/home"), tmp_path / "users"))  # as /home/alice
    target = {"/": "/", "home": str(home), "home_of_another": str(alice)}[where]
    result = CliRunner().invoke(main, [target, "--ask", "x"])
    assert result.exit_code == 2 and "--yes-index-everything" in result.output
    assert not settings.chroma_db_path.exists() and not settings.message_history.exists()
    if where != "/":
        allowed = CliRunner().invoke(main, [target, "--ask", "x", "--yes-index-everything"])
        assert allowed.exit_code == 0, allowed.output


def test_one_bad_file_never_stops_an_index(tmp_path, settings, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    for n in range(6):
        (repo / f"m{n}.py").write_text(f"def f{n}():\n    return {n}\n")
    (repo / "m1.py").write_text("def f1():\n    return 'cannot be embedded'\n")
    (repo / "m2.py").write_text("x = 2  # breaks the summariser\n")
    import qna.index

    real_chunk_text = qna.index.chunk_text

    def chunk_text(path, text):
        if path == "m3.py":
            raise RecursionError("maximum recursion depth exceeded")
        return real_chunk_text(path, text)

    def summarise(items):
        if any("breaks the summariser" in text for _, text in items):
            raise ValueError("bad file")
        return [f"# {path}" for path, _ in items]

    monkeypatch.setattr(qna.index, "chunk_text", chunk_text)
    embedder = HashEmbeddings(fail_on="cannot be embedded")
    index = RepoIndex(repo, index_folder(settings.chroma_db_path, repo), embedder, summarise)
    report = index.update(discover(repo).files)
    assert sorted(report.indexed) == ["m0.py", "m4.py", "m5.py"]
    assert sorted(report.failed) == ["m1.py", "m2.py", "m3.py"]
    assert report.failed["m3.py"].startswith("chunking: RecursionError")
    assert report.failed["m2.py"] == "summarising: ValueError: bad file"
    assert report.failed["m1.py"].startswith("embedding: ValueError")
    assert {hit.chunk.path for hit in index.search("return", k=20, mode="bm25")} == {"m0.py", "m4.py", "m5.py"}
    assert set(index.manifest.files()) == {"m0.py", "m4.py", "m5.py"}  # the failed ones are tried again next run

    def model_down(items):
        raise MyLLMError("The model at http://127.0.0.1:9 did not answer.")

    (repo / "m0.py").write_text("def f0():\n    return 'changed'\n")
    with pytest.raises(MyLLMError):  # the model's own failure is no file's: it stops the run with its message
        RepoIndex(repo, index_folder(settings.chroma_db_path, repo), embedder, model_down).update(discover(repo).files)


def test_the_cli_names_the_files_it_could_not_index(tmp_path, settings, fakes, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "good.py").write_text("def good():\n    return 1\n")
    (repo / "bad.py").write_text("def bad():\n    return 2\n")
    import qna.index

    real = qna.index.chunk_text

    def chunk_text(path, text):
        if path == "bad.py":
            raise ValueError("no")
        return real(path, text)

    monkeypatch.setattr(qna.index, "chunk_text", chunk_text)
    result = CliRunner().invoke(main, [str(repo), "--ask", "what does good return?"])
    assert result.exit_code == 0, result.output
    assert "1 files indexed" in result.output and "Not indexed: 1 file(s)" in result.output
    assert "bad.py (chunking: ValueError: no)" in result.output


def test_control_sequences_are_stripped():
    text = (
        "a\x1b]0;title\x07b\x1b[2J\x1b[1;1Hc\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ d\x9b31me\r\n"
        "f\x08g\x1bch\x1b(Bi\x1b]52;c;ZXZpbA==\x07j\x00k\x1b[?25l\tl"
    )
    assert strip_control(text) == "abclink de\nfghijk\tl"
    assert strip_control("\x1b]0;unterminated title\nnext line") == "\nnext line"


def test_a_streamed_secret_split_across_tokens_is_redacted_whole():
    printed: list[str] = []
    stream = SafeStream(printed.append)
    pieces = ["The key ", OPENAI[:9], OPENAI[9:30], OPENAI[30:] + " works\n-----BEGIN RSA PRIVATE KEY-----\n"]
    pieces += [KEY_LINES[0] + "\n", KEY_LINES[1] + "\n-----END RSA PRIVATE KEY-----\n", "bye \x1b[2J"]
    for piece in pieces:
        stream.feed(piece)
    stream.close()
    out = "".join(printed)
    assert out == "The key [REDACTED:openai-token] works\n[REDACTED:private-key]\n\n\n\nbye "


def test_the_shell_history_file_is_redacted(tmp_path):
    readline = pytest.importorskip("readline")
    readline.clear_history()
    readline.add_history(f"why does {GITHUB} fail?")
    readline.add_history("where is main?")
    _save_history(readline, tmp_path / "shell_history")
    saved = (tmp_path / "shell_history").read_text()
    assert GITHUB not in saved and "[REDACTED:github-token]" in saved and "where is main?" in saved
    readline.clear_history()


def test_summaries_cached_before_redaction_are_forgotten(tmp_path, settings):
    """An index built by an older read-repo cached summaries that copied secrets ("Begins with:")."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "deploy.yml").write_text(f"token: {GITHUB}\n")
    folder = index_folder(settings.chroma_db_path, repo)
    index = RepoIndex(repo, folder, HashEmbeddings())
    index.manifest.save_summary("old-digest", "structural", f"Begins with:\n\ntoken: {GITHUB}\n")
    with index.manifest.db:  # as the older version left it: no "redacted" mark
        index.manifest.db.execute("DELETE FROM meta WHERE key = 'redacted'")
    again = RepoIndex(repo, folder, HashEmbeddings())
    again.update(discover(repo).files)
    cached = [text for (text,) in again.manifest.db.execute("SELECT text FROM summaries")]
    assert cached and not any(GITHUB in text for text in cached)
