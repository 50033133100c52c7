"""read-repo: index a directory and answer questions about it, citing path:Lstart-end.

Console script ``read-repo``; ``python qna/read_repo.py`` works too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from my_llm import MyLLMError, RepoError, Settings, namespace_from_name, validate_namespace
from qna.files import discover, parse_extensions
from qna.terminal import SafeStream, safe_text, strip_control

if TYPE_CHECKING:  # LangChain, Chroma and the models are imported by main() itself: `read-repo --help` stays quick
    from qna.index import RepoIndex

NAMESPACE_PREFIX = "read_repo-"
HOME_PARENTS = (Path("/home"), Path("/Users"))
NAMES_SHOWN = 10


class FilesPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed or 0:.1f} files/s")


def _split_patterns(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def discover_files(repo: Path, extensions, ignore, console: Console):
    """What to index in ``repo`` (qna.files.discover), with the skipped files counted on the console.

    Raises:
        RepoError: nothing to index (an empty directory, or no file with the chosen extensions).
    """
    found = discover(repo, extensions, ignore)
    skipped = ", ".join(f"{len(paths)} {reason}" for reason, paths in sorted(found.skipped.items()))
    if not found.files:
        raise RepoError(
            f"No files to index in {repo} (extensions {', '.join(extensions)}"
            + (f"; skipped: {skipped}" if skipped else "")
            + "). Point read-repo at a folder with source files, or choose others with --ext."
        )
    if skipped:
        console.print(f"Skipped: {skipped}", markup=False)
    return found


def refuse_everything(repo: Path) -> None:
    """Refuse to index the filesystem's root or a home folder's root: they hold every secret the user has.

    Raises:
        click.UsageError: ``repo`` is ``/`` (a drive's root), the user's home, ``/root`` or a folder directly
            under ``/home`` or ``/Users``.
    """
    resolved = repo.resolve()
    homes = {Path.home().resolve(), Path("/root")}
    if resolved == Path(resolved.anchor) or resolved in homes or resolved.parent in HOME_PARENTS:
        raise click.UsageError(
            f"{strip_control(str(resolved))} is the root of the filesystem or of a home folder: read-repo would "
            "read every file in it. Point it at a project folder, or pass --yes-index-everything."
        )


def _names(paths) -> str:
    paths = sorted(paths)
    shown = ", ".join(strip_control(path) for path in paths[:NAMES_SHOWN])
    return shown + (f" and {len(paths) - NAMES_SHOWN} more" if len(paths) > NAMES_SHOWN else "")


def update_index(index: RepoIndex, found, resummarise: bool, console: Console) -> None:
    """Bring ``index`` up to date with the discovered files, with a progress bar."""
    columns = (TextColumn("Indexing"), BarColumn(), MofNCompleteColumn(), FilesPerSecond(), TimeRemainingColumn())
    started = time.perf_counter()
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("index", total=len(found.files))
        report = index.update(found.files, resummarise=resummarise, on_file=lambda _: progress.advance(task))
    console.print(
        f"Index: {len(report.indexed)} files indexed ({report.chunks_added} new chunks, {report.embedded} embedded), "
        f"{report.unchanged} unchanged, {len(report.removed)} removed in {time.perf_counter() - started:.1f} s "
        f"-> {index.folder}",
        markup=False,
    )
    if report.redacted:
        console.print(
            f"Secrets: {sum(report.redacted.values())} replaced by [REDACTED:<kind>] in {len(report.redacted)} "
            f"file(s): {_names(report.redacted)}",
            markup=False,
        )
    if report.failed:
        reasons = "; ".join(f"{strip_control(p)} ({strip_control(why)})" for p, why in sorted(report.failed.items()))
        console.print(f"Not indexed: {len(report.failed)} file(s) that could not be: {reasons}", markup=False)
    if report.not_in_place:
        console.print(
            f"Summaries kept in the index, not beside the source (a symlink or a file of yours is there): "
            f"{_names(report.not_in_place)}",
            markup=False,
        )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--reindex", is_flag=True, help="Forget this repository's index and build it again (caches are kept).")
@click.option(
    "--ext", default=None, metavar=".md,.py", help="Extensions to index [default: common source and doc types]."
)
@click.option(
    "--ignore", multiple=True, metavar="PATTERN", help="gitignore-style pattern to skip, e.g. env/ (repeatable)."
)
@click.option(
    "--summarise",
    "summary_mode",
    type=click.Choice(["structural", "llm"]),
    default="structural",
    show_default=True,
    help="File summaries from the code's structure, or written by the chat model.",
)
@click.option("--resummarise", is_flag=True, help="Write every file summary again, ignoring the summary cache.")
@click.option(
    "--summaries-in-place", is_flag=True, help="Write script.md beside script.py (never indexed as a source)."
)
@click.option("--ask", "question", default=None, metavar="QUESTION", help="Answer one question and exit.")
@click.option("-k", "--top-k", default=6, show_default=True, type=click.IntRange(1, 50), help="Chunks per question.")
@click.option(
    "--model",
    default=None,
    metavar="SPEC",
    help="Chat model: provider:model (openai:gpt-4o-mini) or "
    "local [default: MY_LLM_MODEL, else OpenAI if OPENAI_API_KEY is set, else local].",
)
@click.option("--namespace", default=None, help="Memory namespace for the questions and answers [read_repo-<folder>].")
@click.option("--yes-index-everything", is_flag=True, help="Allow REPO to be / or a home folder (refused otherwise).")
def main(repo: Path, reindex, ext, ignore, summary_mode, resummarise, summaries_in_place, question, top_k, model,
         namespace, yes_index_everything) -> None:  # fmt: skip
    """Index REPO (a directory) and answer questions about it with the sources cited as path:Lstart-end.

    The index is kept under CHROMA_DB_PATH and updated incrementally: a second run reads only the files
    that changed. Without --ask it opens a shell (:sources, :reindex, :quit; Ctrl+C cancels an answer).
    Every question and answer is logged to the memory namespace. Secrets found in the files (API keys,
    tokens, passwords, private keys) are indexed as [REDACTED:<kind>]; questions and answers are redacted
    the same way before they are sent, printed or logged.
    """
    from my_llm import PubSubChatMessageHistory, default_chat_spec, get_chat_model, model_label
    from my_llm.models import context_tokens
    from qna.index import RepoIndex, index_folder, repo_embeddings, structural_summaries
    from qna.summaries import llm_summariser

    console = Console(stderr=True)
    if question is not None and not question.strip():
        raise click.UsageError("--ask needs a question, e.g. --ask 'Where are options parsed?'")
    if not yes_index_everything:
        refuse_everything(repo)
    try:
        settings = Settings.from_env()
        name = (
            validate_namespace(namespace) if namespace else namespace_from_name(NAMESPACE_PREFIX + repo.resolve().name)
        )
        extensions, patterns = parse_extensions(ext), _split_patterns(ignore)
        found = discover_files(repo, extensions, patterns, console)  # before anything is written
        spec = model or default_chat_spec(settings)
        if spec == "local":
            console.print("Answering with the bundled SmolLM2-135M: offline and tiny, it shows the path works, not "
                          "answer quality. Set MY_LLM_MODEL or OPENAI_API_KEY for a real model.")  # fmt: skip
        chat = get_chat_model(spec, settings)
        summariser = llm_summariser(chat, context_tokens(chat)) if summary_mode == "llm" else structural_summaries
        mode = f"llm:{model_label(spec)}" if summary_mode == "llm" else "structural"
        index = RepoIndex(repo, index_folder(settings.chroma_db_path, repo), repo_embeddings(settings),
                          summariser, mode, summaries_in_place)  # fmt: skip
        if reindex:
            index.reset()
        update_index(index, found, resummarise, console)
        history = PubSubChatMessageHistory(name, source="read_repo", settings=settings)

        def reindex_now() -> None:
            update_index(index, discover_files(repo, extensions, patterns, console), False, console)

        _answer(index, chat, history, spec, top_k, question, reindex_now)
    except MyLLMError as error:
        raise click.ClickException(safe_text(str(error))) from error


def _answer(index: RepoIndex, chat, history, spec: str, top_k: int, question: str | None, reindex) -> None:
    from my_llm import model_label, redact_secrets
    from qna.answer import answer_question, format_sources
    from qna.shell import run_shell

    last_sources = ["(no answer yet)"]

    def ask(text: str) -> str:
        hits = index.search(redact_secrets(text), k=top_k)  # the embedder may be a remote model too
        stream = SafeStream(_echo)
        try:
            answer = answer_question(text, hits, chat, history, model_label(spec), on_token=stream.feed)
        finally:
            stream.close()
        click.echo()
        last_sources[0] = strip_control(format_sources(answer))
        return last_sources[0]

    def reindex_command() -> str:
        reindex()
        return "Index up to date."

    try:
        if question is not None:
            click.echo(ask(question))
        else:
            commands = {":sources": lambda: last_sources[0], ":reindex": reindex_command}
            run_shell(ask, commands, history_file=index.folder / "shell_history")
    finally:
        left = history.close(timeout=30)
        if left:
            click.echo(f"{left} message(s) were not published yet; they are safe in {history.path}.", err=True)


def _echo(token: str) -> None:
    click.echo(token, nl=False)


if __name__ == "__main__":
    main()
