"""The prompts of the diagram loop, and the PlantUML source taken out of a model's reply.

The loop is create-script's (:mod:`code_generation.prompts`), with PlantUML's error report in place of failing
tests: the model sees its last diagram and the line PlantUML refused, and is asked for the whole diagram again.
"""

from __future__ import annotations

import re

from code_generation.extract import fenced_blocks

PLANTUML_TAGS = frozenset({"plantuml", "puml", "uml", "plant-uml"})
SYSTEM = (
    "You are an expert in UML who writes PlantUML. Reply with exactly one diagram in one ```plantuml fenced "
    "block: the first line @startuml, the last line @enduml. Use only standard PlantUML syntax for the diagram "
    "asked for (class, sequence, activity, use case or component). Do not use !include, !includeurl, !theme, "
    "sprites or images. No explanation outside the block."
)
REPLY_WITH_DIAGRAM = "Reply with the whole diagram in one ```plantuml block, from @startuml to @enduml."
_START = re.compile(r"^[ \t]*@start(uml)\b.*$", re.M)  # the diagrams asked for are all @startuml


def fenced(source: str) -> str:
    """``source`` in a ```plantuml block (how the loop shows the model its previous attempt)."""
    return f"```plantuml\n{source.rstrip()}\n```"


def diagram_request(description: str) -> str:
    """The first request: the scenario to draw."""
    return f"Draw this as a PlantUML diagram.\n\nScenario: {description.strip()}\n\n{REPLY_WITH_DIAGRAM}"


def feedback_request(feedback: str) -> str:
    """A retry request after PlantUML refused the diagram: its error (line, text, message) first."""
    return (
        f"PlantUML could not render that diagram:\n{feedback.strip()}\n\n"
        f"Fix the error (use plain, standard PlantUML syntax if unsure). {REPLY_WITH_DIAGRAM}"
    )


def no_diagram_request() -> str:
    """A retry request after a reply that held no diagram."""
    return f"Your reply held no PlantUML diagram (no @startuml ... @enduml). {REPLY_WITH_DIAGRAM}"


def _block_from(text: str) -> str:
    """The first ``@startuml ... @enduml`` block of ``text``; an ``@enduml`` cut off by the token limit is added."""
    start = _START.search(text)
    if start is None:
        return ""
    end = re.compile(rf"^[ \t]*@end{start[1]}\b.*$", re.M).search(text, start.end())
    if end is None:
        return text[start.start() :].rstrip() + f"\n@end{start[1]}\n"
    return text[start.start() : end.end()].strip() + "\n"


def extract_diagram(reply: str) -> str:
    """The PlantUML source of a model's ``reply`` ("" when it holds none; never raises).

    In order: the first fenced block holding a ``@startuml`` line; else ``@startuml ... @enduml`` in the bare
    text; else a block tagged ``plantuml``/``puml``/``uml`` without the markers, wrapped in them. A missing
    ``@enduml`` (a reply cut off by the token limit) is added. Other ``@start...`` words (``@startuil``) are
    not diagrams the loop asks for and count as none.
    """
    blocks = fenced_blocks(reply)
    for block in blocks:
        found = _block_from(block.text)
        if found:
            return found
    found = _block_from(reply)
    if found:
        return found
    for block in blocks:
        if block.language in PLANTUML_TAGS and block.text.strip():
            return f"@startuml\n{block.text.strip()}\n@enduml\n"
    return ""
