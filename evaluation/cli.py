"""``my-llm eval CONFIG.yaml``: the click command (``eval_command``) and the ``my-llm-eval`` console script."""

from __future__ import annotations

import os
from pathlib import Path

import click

from my_llm import MyLLMError, Settings


def default_cache_dir() -> Path:
    """``MY_LLM_EVAL_CACHE``, else the user cache folder's ``my_llm/eval`` (platformdirs)."""
    if os.environ.get("MY_LLM_EVAL_CACHE"):
        return Path(os.environ["MY_LLM_EVAL_CACHE"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("my_llm")) / "eval"


@click.command("eval")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="results.json or results.html")
@click.option("--concurrency", "-j", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-cache", is_flag=True, help="Ask every provider again (and do not store replies).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: $MY_LLM_EVAL_CACHE.")
@click.option("--judge", help="Model spec of the llm-rubric judge (default: the test's, else MY_LLM_MODEL).")
@click.option("--embeddings", help="Embeddings spec for `similar` (default: MY_LLM_EMBEDDINGS, else local).")
def eval_command(config, output, concurrency, no_cache, cache_dir, judge, embeddings) -> None:
    """Run every prompt x provider x test of a promptfoo-style CONFIG; exit 1 when any assertion fails.

    Each call is logged to the namespace eval-<config name>; replies are cached by (provider, prompt, vars).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # Imported here, not at the top: `my-llm --help` loads this command (entry point group my_llm.commands).
    from evaluation.cache import ResponseCache
    from evaluation.config import load_config
    from evaluation.models import Models
    from evaluation.report import render_table, write_output
    from evaluation.runner import run_eval

    console = Console(stderr=True)
    try:
        loaded = load_config(config)
        cache = ResponseCache(cache_dir or default_cache_dir(), enabled=not no_cache)
        models = Models(Settings.from_env(), cache, judge=judge, embeddings=embeddings)
        total = len(loaded.prompts) * len(loaded.providers) * len(loaded.tests)
        columns = (TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("eval", total=total)
            run = run_eval(loaded, models, concurrency=concurrency, on_result=lambda _: progress.advance(task))
    except MyLLMError as error:
        raise click.ClickException(str(error)) from error
    Console().print(render_table(run))
    if output is not None:
        try:
            write_output(run, output)
        except (OSError, ValueError) as error:
            raise click.ClickException(str(error)) from error
        console.print(f"Results written to {output}")
    console.print(f"{models.requests} request(s) sent; {run.failures} failing case(s) of {len(run.results)}.")
    if run.failures:
        raise SystemExit(1)


def main() -> None:
    """The ``my-llm-eval`` console script."""
    eval_command()
