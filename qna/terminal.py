"""Text from a model or a file, made safe to print on a terminal: no control sequences, no secrets.

A model's answer or a file name can hold escape sequences that a terminal obeys: OSC (``ESC ] 0;title BEL``
sets the window title; OSC 52 writes the clipboard; OSC 8 hides a link), CSI (``ESC [ 2 J`` clears the screen,
cursor moves overwrite what was printed), DCS and the 8-bit C1 forms of the same (``\\x9b`` is CSI).
:func:`strip_control` removes them with a regular expression over ECMA-48's grammar (ECMA-48, 5th edition,
sections 5.3-5.6, the same shapes that ``strip-ansi`` and ``rich.text.Text.from_ansi`` read), then every
control character left but tab and newline (a carriage return or backspace overwrites text; BEL rings).
Rich's ``Text.from_ansi(...).plain`` is not used: it keeps an OSC ended by BEL (the common form) and the C1
forms.

:class:`SafeStream` prints a streamed answer line by line, each line redacted (:func:`my_llm.redact_secrets`)
and stripped: a secret or an escape split across two tokens is whole when its line is. A private-key block
is held until its END line, so that it is redacted as one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from my_llm import redact_secrets

_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: ESC [ params intermediates final (2J, 31m, 1;1H)
    # OSC, DCS, SOS, PM, APC to BEL or ST (a terminal swallows an unterminated one: here, to the line's end)
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"  # other escapes: ESC c (reset), ESC ( B (charset), ESC 7 (save cursor)
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_OPEN_KEY = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_END_KEY = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")


def strip_control(text: str) -> str:
    """``text`` without terminal control sequences and control characters (tab and newline stay; ``\\r\\n``
    becomes ``\\n``)."""
    return _CONTROLS.sub("", _SEQUENCES.sub("", text.replace("\r\n", "\n")))


def safe_text(text: str) -> str:
    """``text`` stripped (:func:`strip_control`), then redacted (:func:`my_llm.redact_secrets`): for printing.

    In that order, so that an escape sequence inside a key cannot hide it from the scanner.
    """
    return redact_secrets(strip_control(text))


class SafeStream:
    """Prints streamed text through ``write`` a whole line at a time, redacted and stripped.

    ``feed(piece)`` as tokens come; ``close()`` at the end (also after Ctrl+C) prints what is left.
    """

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self._pending = ""

    def feed(self, piece: str) -> None:
        self._pending += piece
        cut = self._pending.rfind("\n") + 1
        if not cut:
            return
        opened = [match.end() for match in _OPEN_KEY.finditer(self._pending, 0, cut)]
        if opened and not _END_KEY.search(self._pending, opened[-1]):
            return  # inside a private-key block: wait for its END line
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        self.write(safe_text(ready))

    def close(self) -> None:
        if self._pending:
            ready, self._pending = self._pending, ""
            self.write(safe_text(ready))
