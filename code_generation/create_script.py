"""create-script: write a Python module that passes a test file, running the tests in a sandbox.

Console script ``create-script``; ``python code_generation/create_script.py`` works too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from my_llm import MyLLMError, Settings, validate_namespace

if TYPE_CHECKING:  # the library (LangChain) is imported inside the command: `create-script --help` is fast
    from code_generation import Attempt, Generation, UsageReport

EXIT_TESTS_FAIL = 1
EXIT_ERROR = 3
EPILOG = (
    "Exit status: 0 when the tests pass (or a new test file was written), 1 when they still fail after the "
    "last retry (OUTPUT_FILE then holds the attempt that passed the most tests), 2 for bad usage, 3 for "
    "any other error. Every prompt and reply is logged to the memory namespace, with tokens and cost."
)


class CreateScriptError(click.ClickException):
    """A library error, shown as ``Error: ...`` with exit status 3."""

    exit_code = EXIT_ERROR


def print_usage(label: str, usage: UsageReport) -> None:
    """The seed's per-request report."""
    click.echo(f"== Request ({label}) ==\n{usage.format()}")


def print_attempt(attempt: Attempt) -> None:
    click.echo(f"Attempt {attempt.number}: {attempt.run.summary} -> {attempt.saved_to.name}")


def _chat(ctx: click.Context, spec: str, settings: Settings, max_tokens: int | None):
    from code_generation import limit_reply_tokens
    from my_llm import get_chat_model

    given = (ctx.obj or {}).get("chat")  # a caller (a test, a notebook) may hand in its own chat model
    if given is None and spec == "local":
        click.echo(
            "Writing code with the bundled SmolLM2-135M: offline and tiny, it shows the loop works, not code "
            "quality. Set MY_LLM_MODEL or OPENAI_API_KEY (or pass --model) for a real model.",
            err=True,
        )
    return limit_reply_tokens(given if given is not None else get_chat_model(spec, settings), max_tokens)


def write_tests(prompt: str, output_file: Path, test_file: Path, chat, history) -> None:
    """The seed's first step: no test file yet, so write one, show it, and stop."""
    from code_generation import generate_tests

    click.echo(f"No test file at {test_file}: writing one from the prompt first.")
    source, usage = generate_tests(prompt, output_file, test_file, chat, history, on_request=print_usage)
    click.echo(f"== {test_file} ==\n{source}")
    click.echo(f"== Total ==\n{usage.format()}")
    click.echo(
        f"Wrote {test_file}. Inspect the tests (they define what correct means), then run the same command "
        f"again to generate {output_file}."
    )


def report(generation: Generation, output_file: Path) -> bool:
    """Print the total and the outcome; True when the tests pass."""
    click.echo(f"== Total ({generation.rounds} attempt(s)) ==\n{generation.usage.format()}")
    best = generation.best
    if generation.ok:
        click.echo(f"All {best.run.passed} tests pass on attempt {best.number}: wrote {output_file}")
        return True
    click.echo(
        f"Tests still fail after {generation.rounds} attempt(s). {output_file} holds attempt {best.number} "
        f"({best.run.summary}); every attempt is in generation_N.txt beside it."
    )
    return False


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.argument("prompt")
@click.argument("output_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--test_file",
    "--test-file",
    "test_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="pytest (or unittest) file the code must pass. If it does not exist, it is written from PROMPT "
    "and the command stops so you can inspect it. It is never modified.",
)
@click.option(
    "--max-retries",
    "--max_retries",
    default=4,
    show_default=True,
    type=click.IntRange(0, 50),
    help="Retries after the first attempt, each with the failures fed back (0 = single shot).",
)
@click.option(
    "--model",
    default=None,
    metavar="SPEC",
    help="Chat model: provider:model (openai:gpt-4o-mini) or local "
    "[default: MY_LLM_MODEL, else OpenAI if OPENAI_API_KEY, else OPENAI_BASE_URL's server, else local].",
)
@click.option("--namespace", default="create_script", show_default=True, help="Memory namespace of the log.")
@click.option("--max-tokens", type=click.IntRange(16, 65536), default=None, help="Reply limit per request, in tokens.")
@click.option(
    "--timeout", default=60.0, show_default=True, type=click.FloatRange(1, 3600), help="Seconds per test run."
)
@click.option(
    "--memory-mb",
    default=1024,
    show_default=True,
    type=click.IntRange(64, 1 << 20),
    help="Address-space limit of a test run, in MiB.",
)
@click.option("--pytest-plugins", is_flag=True, help="Let pytest load installed plugins in the sandbox (slower).")
@click.option(
    "--unsafe-no-sandbox",
    is_flag=True,
    help="Run generated code without bubblewrap's isolation (only when bwrap cannot be installed): it can then "
    "read, change and send anything you can, and forge its test results.",
)
@click.pass_context
def main(
    ctx,
    prompt,
    output_file,
    test_file,
    max_retries,
    model,
    namespace,
    max_tokens,
    timeout,
    memory_mb,
    pytest_plugins,
    unsafe_no_sandbox,
):
    """Write OUTPUT_FILE, a Python module that does PROMPT and passes --test_file.

    Each attempt is saved as generation_N.txt beside OUTPUT_FILE, then tested in a bubblewrap sandbox (no
    network, no home folder, no credentials, a temporary copy of OUTPUT_FILE's folder, a timeout, CPU and
    memory limits), with the module and the tests in separate sandboxes so that the code cannot forge its
    results. Failures, secrets redacted, go back to the model with the tests declared correct, up to
    --max-retries times. Token usage and cost are printed per request and in total.

    \b
    Example:
      create-script "Create a function that returns the sum of all prime numbers below a given number n" \\
          examples/prime_sum/prime_sum.py --test_file examples/prime_sum/test_prime_sum.py
    """
    from code_generation import LoopOptions, SandboxLimits, generate_script
    from my_llm import PubSubChatMessageHistory, default_chat_spec

    if not prompt.strip():
        raise click.UsageError("PROMPT is empty: say what the code should do.")
    try:
        settings = Settings.from_env()
        history = PubSubChatMessageHistory(validate_namespace(namespace), source="create_script", settings=settings)
        try:
            chat = _chat(ctx, model or default_chat_spec(settings), settings, max_tokens)
            if not test_file.exists():
                write_tests(prompt, output_file, test_file, chat, history)
                return
            limits = SandboxLimits(timeout_s=timeout, cpu_s=max(1, int(timeout)), memory_mb=memory_mb)
            if unsafe_no_sandbox:
                click.echo("--unsafe-no-sandbox: generated code runs without isolation.", err=True)
            options = LoopOptions(
                max_retries=max_retries, limits=limits, plugins=pytest_plugins, isolate=not unsafe_no_sandbox
            )
            generation = generate_script(
                prompt, output_file, test_file, chat, history, options, on_request=print_usage, on_attempt=print_attempt
            )
        finally:
            left = history.close(timeout=30)
            if left:
                click.echo(f"{left} message(s) were not published yet; they are safe in {history.path}.", err=True)
    except MyLLMError as error:
        raise CreateScriptError(str(error)) from error
    if not report(generation, output_file):
        ctx.exit(EXIT_TESTS_FAIL)


if __name__ == "__main__":
    main()
