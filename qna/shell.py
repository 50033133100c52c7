"""The interactive question loop. Input, output and the answering are handed in, so tests need no terminal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from my_llm import MyLLMError, redact_secrets
from qna.terminal import safe_text

PROMPT = "Ask a question. CTRL + C to quit."
HELP = "Commands: :sources (sources of the last answer), :reindex (index what changed), :quit"
QUIT = {":quit", ":q", ":exit"}


def _load_history(history_file: Path | None):
    """Line editing and history through readline, when it exists here; returns the module or None."""
    if history_file is None:
        return None
    try:
        import readline
    except ImportError:
        return None
    try:
        readline.read_history_file(history_file)
    except OSError:
        pass  # no history yet
    return readline


def run_shell(
    answer: Callable[[str], str | None],
    commands: Mapping[str, Callable[[], str]] | None = None,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    history_file: Path | None = None,
) -> int:
    """Read questions until Ctrl+C at the prompt, end of input or ``:quit``; returns how many were answered.

    ``answer(question)`` shows the answer (it may stream it itself) and returns text to print after it.
    Ctrl+C while an answer is coming cancels that answer and returns to the prompt; so does a
    :class:`my_llm.MyLLMError` (a model server that does not answer, say), printed as one line. Lines starting
    with ``:`` run ``commands`` (``:sources``, ``:reindex``...). Blank lines are ignored.
    """
    commands = commands or {}
    readline = _load_history(history_file)
    write(PROMPT)
    answered = 0
    while True:
        try:
            line = read("> ").strip()
        except (KeyboardInterrupt, EOFError):
            write("")
            break
        if not line:
            continue
        if line in QUIT:
            break
        if line.startswith(":"):
            command = commands.get(line)
            write(command() if command else f"Unknown command {line!r}. {HELP}")
            continue
        try:
            after = answer(line)
        except KeyboardInterrupt:
            write("\n[answer cancelled]")
            continue
        except MyLLMError as error:  # a dead model server costs this answer, not the session
            write(f"\nError: {safe_text(str(error))}")
            continue
        if after:
            write(after)
        answered += 1
    if readline is not None:
        _save_history(readline, history_file)
    return answered


def _save_history(readline, history_file: Path) -> None:
    """Write the line history, each line redacted (:func:`my_llm.redact_secrets`) first."""
    for position in range(readline.get_current_history_length()):
        line = readline.get_history_item(position + 1)  # 1-based, while replace_history_item is 0-based
        if line is not None and redact_secrets(line) != line:
            readline.replace_history_item(position, redact_secrets(line))
    history_file.parent.mkdir(parents=True, exist_ok=True)
    readline.write_history_file(history_file)
