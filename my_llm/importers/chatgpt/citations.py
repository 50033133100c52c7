"""Citation markers in assistant text: replaced by what the export says they stand for, never left behind.

ChatGPT writes citations into the text as markers and lists what they stand for in the message's
``metadata``. The shapes real exports carry (the ``pionxzh/chatgpt-exporter`` types in ``src/api.ts`` and
``src/utils/citations.ts``; the export excerpt in ``Laumss/loominary`` issue 17)::

    text: "Lyon is sunny.\\ue200cite\\ue202turn0search4\\ue201"       (2024-: private-use markers)
          "\\ue203a highlighted span\\ue204"                           (a range: the text is kept)
          "Lyon is sunny 【3†source】."                                (2023-2024: "tether_og")
    metadata.content_references = [{"matched_text": "\\ue200cite\\ue202turn0search4\\ue201",
        "type": "grouped_webpages" | "webpage" | "hidden" | "file" | "alt_text" | "sources_footnote" | ...,
        "alt": "([Lyon weather](https://example.org/lyon))" | "" | None,
        "items": [{"title", "url", "attribution", "supporting_websites": [...]}], "sources": [...],
        "fallback_items": [...], "safe_urls": [str], "name": str (files), "title", "url",
        "start_idx": int, "end_idx": int}, ...]
    metadata.citations = [{"start_ix": int, "end_ix": int, "citation_format_type": "tether_og",
        "metadata": {"type": "webpage", "title", "url", "text", "extra": {"cited_message_idx": int}}}]

A reference replaces its ``matched_text`` (longest first) when that text is a marker (it holds a character
of the U+E200-U+E2FF block or is a ``【...】`` marker: plain text such as the blank ``matched_text`` of a
``sources_footnote`` is never touched). The replacement: nothing for ``hidden``; else ``alt`` (empty
``[label]()`` links reduced to their label); else ``([title](url), ...)`` from the items, sources, file name,
title/url or safe URLs; else nothing. A ``【n†...】`` marker without a reference takes the ``citations`` entry
whose ``start_ix:end_ix`` it spans. Markers nothing explains are removed (an ``entity`` marker keeps its
label; one cut short, as in an interrupted answer, goes up to the next blank), spans keep their text, and
every other character of the U+E200-U+E2FF block is dropped. A marker replaced by nothing takes the blanks
before it along when punctuation, a blank or the end follows, so "sunny <marker>." becomes "sunny.".
"""

from __future__ import annotations

import json
import re
from typing import Any

MARKER_BLOCK = re.compile("[\ue200-\ue2ff]")
_OLD_MARKER = r"【\d+(?::\d+)?†[^】\n]{0,200}】"
_COMPOSITE = "\ue200[^\ue200\ue201]*\ue201"
_SPAN = "\ue203([^\ue203\ue204]*)\ue204"
_UNCLOSED = "\ue200[^\ue200\ue201\\s]*"  # cut short (an interrupted answer): up to the next blank
_STRAY = "[\ue200-\ue2ff]+"
_EMPTY_LINK = re.compile(r"\[([^\]]*)\]\(\)")
_BEFORE_GAP = re.compile(r"[\s.,;:!?)\]]")
MAX_SOURCES = 50


def _string(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _is_marker(text: str) -> bool:
    return bool(MARKER_BLOCK.search(text) or re.fullmatch(_OLD_MARKER, text))


def _sources_of(reference: dict[str, Any]) -> list[dict[str, str]]:
    """The ``{title, url}`` sources one reference names, in order, without duplicates."""
    found: list[dict[str, Any]] = []
    for item in _dicts(reference.get("items")):
        found += [item, *_dicts(item.get("supporting_websites"))]
    found += _dicts(reference.get("sources")) + _dicts(reference.get("fallback_items"))
    label = _string(reference.get("name")) or _string(reference.get("title"))  # files have a name, no URL
    if not found and (label or _string(reference.get("url"))):
        found.append({"title": label, "url": reference.get("url")})
    if not found:
        found = [{"url": url} for url in reference.get("safe_urls") or [] if isinstance(url, str)]
    return _deduplicated(found)


def _deduplicated(found: list[dict[str, Any]]) -> list[dict[str, str]]:
    sources, seen = [], set()
    for source in found:
        url = _string(source.get("url"))
        title = _string(source.get("attribution")) or _string(source.get("title")) or url
        if title and (url or title) not in seen:
            seen.add(url or title)
            sources.append({"title": title, "url": url} if url else {"title": title})
    return sources


def _linked(sources: list[dict[str, str]]) -> str:
    if not sources:
        return ""
    links = [f"[{source['title']}]({source['url']})" if "url" in source else source["title"] for source in sources]
    return f"({', '.join(links)})"


def _replacement(reference: dict[str, Any]) -> str:
    """What one ``content_references`` entry's marker becomes in the text."""
    if reference.get("type") == "hidden":
        return ""
    alt = _string(reference.get("alt"))
    if alt:
        return _EMPTY_LINK.sub(r"\1", alt)
    return _linked(_sources_of(reference))


def _old_citations(text: str, metadata: dict[str, Any]) -> dict[str, str]:
    """``【n†...】`` marker -> replacement, from ``metadata.citations`` (positions in ``text``)."""
    found: dict[str, str] = {}
    for citation in _dicts(metadata.get("citations")):
        start, end = citation.get("start_ix"), citation.get("end_ix")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            continue
        marker = text[start:end]
        cited = citation.get("metadata") if isinstance(citation.get("metadata"), dict) else {}
        if re.fullmatch(_OLD_MARKER, marker) and marker not in found:
            found[marker] = _linked(_deduplicated([cited]))
    return found


def _entity_label(marker: str) -> str:
    """An unexplained ``\\ue200entity\\ue202["kind","label",...]\\ue201`` keeps its label; other markers nothing."""
    kind, _, payload = marker.strip("\ue200\ue201").partition("\ue202")
    if kind != "entity":
        return ""
    try:
        decoded = json.loads(payload)
    except ValueError:
        return ""
    labels = [item for item in decoded[1:2] + decoded[:1] if isinstance(item, str)] if isinstance(decoded, list) else []
    return labels[0] if labels else ""


def resolve_citations(text: str, metadata: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """``text`` with its citation markers replaced (see the module docstring), and the sources it cites.

    ``metadata`` is the export message's ``metadata`` (``{}`` when absent). The sources are
    ``[{"title": str, "url": str}]`` (``url`` left out when there is none), from every reference and old-style
    citation, without duplicates, at most 50. Never raises on odd shapes: what is not a list or an object
    counts as absent.
    """
    references = {
        reference["matched_text"]: _replacement(reference)
        for reference in _dicts(metadata.get("content_references"))
        if isinstance(reference.get("matched_text"), str) and _is_marker(reference["matched_text"])
    }
    references = _old_citations(text, metadata) | references
    sources = _deduplicated(
        [source for reference in _dicts(metadata.get("content_references")) for source in _sources_of(reference)]
        + [c["metadata"] for c in _dicts(metadata.get("citations")) if isinstance(c.get("metadata"), dict)]
    )[:MAX_SOURCES]
    if not (references or MARKER_BLOCK.search(text) or "†" in text):
        return text, sources
    known = [re.escape(marker) for marker in sorted(references, key=len, reverse=True)]
    markers = "|".join([*known, _OLD_MARKER, _COMPOSITE, _UNCLOSED, _SPAN, _STRAY])  # the first that matches wins
    pattern = re.compile(rf"(?P<gap>[ \t]*)(?P<marker>{markers})")

    def substitute(found: re.Match[str]) -> str:
        marker = found["marker"]
        if marker in references:
            replacement = references[marker]
        elif marker.startswith("\ue203"):
            replacement = pattern.sub(substitute, marker[1:-1])
        else:
            replacement = _entity_label(marker) if marker.startswith("\ue200") else ""
        if replacement:
            return found["gap"] + replacement
        after = found.string[found.end() : found.end() + 1]
        return "" if not after or _BEFORE_GAP.match(after) else found["gap"]

    return MARKER_BLOCK.sub("", pattern.sub(substitute, text)), sources
