"""The prompt guard of ``POST /v1/code``: refuse requests that are not coding tasks, and prompt-injection
attempts, with a reason. Cheap rules only for now (``MY_LLM_PROMPT_GUARD=rules``, the default; ``off``
turns it off); the chat model as a classifier (``model``) is not built yet.

The rules: an injection pattern anywhere refuses (instructions to ignore or reveal instructions, role-play
as an unrestricted model, "developer mode", DAN); otherwise a request needs a coding signal (a programming
word, a language, code-like text) to pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GUARD_MODES = ("off", "rules")

_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(instructions?|rules|prompts?|guidelines|directions)\b"
    r"|\b(system|hidden|initial)\s+prompt\b"
    r"|\b(reveal|print|show|repeat|leak)\b[^.\n]{0,30}\b(instructions|prompt|guidelines)\b"
    r"|\bdeveloper\s+mode\b|\bjailbr(eak|oken)\b|\bdo\s+anything\s+now\b|\bDAN\b"
    r"|\byou\s+are\s+(now|no\s+longer)\b|\b(pretend|act)\s+(to\s+be|you\s+are|as)\b[^.\n]{0,40}"
    r"\b(unfiltered|unrestricted|uncensored|evil|without\s+(rules|limits|restrictions))"
    r"|\b(no|without|bypass\w*)\s+(any\s+)?(restrictions|filters|safety|censorship|content\s+polic(y|ies))\b",
    re.IGNORECASE,
)
_CODING = re.compile(
    r"\b(code|coding|function|functions|method|class|classes|script|program|module|library|api|endpoint|"
    r"implement\w*|refactor\w*|debug\w*|bug|compile\w*|algorithm\w*|regex|regular\s+expression|parse|parser|"
    r"parsing|recursion|recursive|loop|array|list|dict\w*|hash\s*map|string|integer|json|csv|yaml|xml|sql|"
    r"query|database|unit\s+tests?|pytest|unittest|test\s+file|cli|command[- ]line|http|rest|server|sort\w*|"
    r"binary|linked\s+list|stack|queue|tree|graph|matrix|decorator|generator|iterator|async|thread\w*|"
    r"python|javascript|typescript|java|rust|golang|c\+\+|bash|shell|dataframe|pandas|numpy|return\w*|"
    r"variable|file|files|directory|fibonacci|prime|factorial|palindrome|docstring|exception|lambda)\b"
    r"|```|\bdef\s+\w+\(|\w+\(\w*\)|\.py\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Verdict:
    """The guard's answer: allowed, and why not when it is not."""

    allowed: bool
    reason: str = ""


def check_prompt(text: str, mode: str = "rules") -> Verdict:
    """Judge ``text`` (a description, plus its tests if any) under ``mode`` (``off`` or ``rules``)."""
    if mode == "off":
        return Verdict(True)
    found = _INJECTION.search(text)
    if found:
        return Verdict(False, f"This looks like a prompt-injection attempt ({found.group(0)!r}); it was refused.")
    if not _CODING.search(text):
        return Verdict(False, "This does not look like a coding task: /v1/code writes code from a description.")
    return Verdict(True)
