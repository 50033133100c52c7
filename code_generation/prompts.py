"""The prompts of the test-driven loop.

The loop is the one of Self-Debugging (Chen et al. 2023, "Teaching Large Language Models to Self-Debug")
and Reflexion (Shinn et al. 2023, "Reflexion: Language Agents with Verbal Reinforcement Learning"): run
the code, show the model its own failures, ask again; most of the gain comes in the first two rounds.
The failure message follows aider's benchmark (``benchmark/prompts.py``, ``test_failures``): the test
output, then "The tests are correct, don't try and change them", so the model fixes the code rather than
arguing with the tests.
"""

from __future__ import annotations

from pathlib import Path

SYSTEM = (
    "You are an expert Python programmer. You write complete, working Python modules that pass their tests. "
    "Reply with the whole module in one ```python fenced block. Use only the Python standard library."
)
TESTS_SYSTEM = (
    "You are an expert Python programmer who writes small, correct pytest test files. "
    "Reply with the whole test file in one ```python fenced block."
)
REPLY_WITH_FILE = "Reply with the complete file `{name}` in one ```python block."


def fenced(code: str) -> str:
    """``code`` in a ```python block (how the loop shows the model its previous attempt)."""
    return f"```python\n{code.rstrip()}\n```"


def code_request(task: str, output_file: Path, test_file: Path, test_source: str | None, names: tuple[str, ...]) -> str:
    """The first request: the task, the tests (when ``test_source`` is given) and the names they need."""
    parts = [f"Write the Python module `{output_file.name}`.", f"Task: {task.strip()}"]
    if test_source is not None:
        parts.append(
            f"The tests in `{test_file.name}` import it as `{output_file.stem}`. "
            f"The tests are correct, don't change them:\n{fenced(test_source)}"
        )
    if names:
        parts.append("It must define: " + ", ".join(f"`{name}`" for name in names) + ".")
    parts.append(
        "Write the module, not tests. Don't change the names the tests use. Only use standard libraries. "
        + REPLY_WITH_FILE.format(name=output_file.name)
    )
    return "\n\n".join(parts)


def feedback_request(feedback: str, output_file: Path) -> str:
    """A retry request after failing tests: the trimmed failure output, then aider's ``test_failures``."""
    return (
        f"{feedback.strip()}\n\n####\n\nSee the testing errors above.\n"
        "The tests are correct, don't try and change them.\n"
        f"Fix the code in {output_file.name} to resolve the errors. " + REPLY_WITH_FILE.format(name=output_file.name)
    )


def no_code_request(output_file: Path) -> str:
    """A retry request after a reply that held no Python code."""
    return "Your reply held no Python code. " + REPLY_WITH_FILE.format(name=output_file.name)


def tests_request(task: str, output_file: Path, test_file: Path) -> str:
    """The request for a test file when the user has none (the seed's first step)."""
    return "\n\n".join(
        [
            f"Write pytest tests for a Python module `{output_file.name}`, imported as `{output_file.stem}`.",
            f"What the module does: {task.strip()}",
            f"Write the file `{test_file.name}`: import what you test with `from {output_file.stem} import ...`, "
            "one `def test_...` function per behaviour with plain `assert` statements, edge cases included. "
            "Do not implement the module. " + REPLY_WITH_FILE.format(name=test_file.name),
        ]
    )
