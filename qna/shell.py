"""The interactive question loop, with its input and output handed in so tests need no terminal."""

from __future__ import annotations

from collections.abc import Callable

PROMPT = "Ask a question. CTRL + C to quit."


def run_shell(
    answer: Callable[[str], str],
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
) -> int:
    """Read questions until Ctrl+C or end of input, writing each answer; returns how many were answered.

    Blank lines are ignored.
    """
    write(PROMPT)
    answered = 0
    while True:
        try:
            question = read("> ").strip()
        except (KeyboardInterrupt, EOFError):
            write("")
            return answered
        if question:
            write(answer(question))
            answered += 1
