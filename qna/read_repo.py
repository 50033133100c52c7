"""read-repo: index a directory and answer questions about it, citing path:Lstart-end.

Console script ``read-repo``; ``python qna/read_repo.py`` works too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from my_llm import (
    MyLLMError,
    PubSubChatMessageHistory,
    RepoError,
    Settings,
    default_chat_spec,
    get_chat_model,
    get_embeddings,
    model_label,
    namespace_from_name,
    validate_namespace,
)
from qna.answer import answer_question, format_answer
from qna.files import discover, parse_extensions
from qna.index import RepoIndex, index_folder
from qna.shell import run_shell

NAMESPACE_PREFIX = "read_repo-"


def _split_patterns(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def build_index(
    repo: Path, settings: Settings, extensions, ignore, reindex: bool, resummarise: bool, console: Console
) -> RepoIndex:
    """Discover, chunk, summarise and embed ``repo``; returns the ready index.

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
    console.print(f"Loading the embedder for {len(found.files)} files" + (f" (skipped: {skipped})" if skipped else ""))
    index = RepoIndex(repo, index_folder(settings.chroma_db_path, repo), get_embeddings(settings=settings))
    if reindex:
        index.reset()
    columns = (TextColumn("Indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"), TimeRemainingColumn())
    started = time.perf_counter()
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("index", total=len(found.files))
        report = index.update(found.files, resummarise=resummarise, on_file=lambda _: progress.advance(task))
    console.print(
        f"Index: {len(report.indexed)} files embedded ({report.chunks_added} chunks), {report.unchanged} unchanged, "
        f"{len(report.removed)} removed in {time.perf_counter() - started:.1f} s -> {index.folder}"
    )
    return index


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--reindex", is_flag=True, help="Delete this repository's index and build it from scratch.")
@click.option(
    "--ext",
    default=None,
    metavar=".md,.py",
    help="Comma-separated extensions to index [default: common source and doc types].",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="PATTERN",
    help="gitignore-style pattern to skip, e.g. env/ (repeat, or separate with commas).",
)
@click.option("--resummarise", is_flag=True, help="Rewrite every file summary (and re-embed its file).")
@click.option(
    "--ask",
    "question",
    default=None,
    metavar="QUESTION",
    help="Answer one question and exit, instead of the interactive shell.",
)
@click.option(
    "-k", "--top-k", default=6, show_default=True, type=click.IntRange(1, 50), help="Chunks retrieved per question."
)
@click.option(
    "--model",
    default=None,
    metavar="SPEC",
    help="Chat model: provider:model (openai:gpt-4o-mini) or local "
    "[default: MY_LLM_MODEL, else OpenAI if OPENAI_API_KEY is set, else local].",
)
@click.option(
    "--namespace",
    default=None,
    help="Memory namespace that logs questions and answers [default: read_repo-<folder name>].",
)
def main(repo: Path, reindex, ext, ignore, resummarise, question, top_k, model, namespace) -> None:
    """Index REPO (a directory) and answer questions about it with the sources cited as path:Lstart-end.

    The index is kept under CHROMA_DB_PATH and updated incrementally: a second run embeds only the
    files that changed. Every question and answer is logged to the memory namespace.
    """
    console = Console(stderr=True)
    if question is not None and not question.strip():
        raise click.UsageError("--ask needs a question, e.g. --ask 'Where are options parsed?'")
    try:
        settings = Settings.from_env()
        namespace = (
            validate_namespace(namespace) if namespace else namespace_from_name(NAMESPACE_PREFIX + repo.resolve().name)
        )
        index = build_index(
            repo, settings, parse_extensions(ext), _split_patterns(ignore), reindex, resummarise, console
        )
        spec = model or default_chat_spec(settings)
        if spec == "local":
            console.print(
                "Answering with the bundled SmolLM2-135M: offline and tiny, it shows the path works, not answer "
                "quality. Set MY_LLM_MODEL or OPENAI_API_KEY for a real model."
            )
        chat = get_chat_model(spec, settings)
        history = PubSubChatMessageHistory(namespace, source="read_repo", settings=settings)

        def ask(text: str) -> str:
            hits = index.search(text, k=top_k)
            return format_answer(answer_question(text, hits, chat, history, model_label(spec)))

        try:
            if question is not None:
                click.echo(ask(question))
            else:
                run_shell(ask)
        finally:
            left = history.close(timeout=30)
            if left:
                console.print(f"{left} message(s) were not published yet; they are safe in {history.path}.")
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    main()
