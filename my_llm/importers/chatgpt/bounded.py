"""The items of a JSON array, built one at a time from ``ijson``'s events within limits of depth and size.

``ijson.items`` keeps a prefix string per nesting level (``item.item.item...``), so its memory grows with
the square of the depth: a 120 KB file of nested brackets needs more than 8 GB. Here the array is read
with ``ijson.basic_parse`` (events without prefixes, C backend) and each item is built by a small builder
that refuses an item nesting deeper than ``Limits.depth`` or spanning more than ``Limits.item_bytes``,
before building more of it. Memory is then bounded by one item of at most ``item_bytes`` (about 4 bytes of
Python objects per byte of a real conversation, at worst about 24 for a flood of empty objects) plus the
events of one chunk (:data:`CHUNK_BYTES`).

Why these limits:

- depth 256: a conversation nests about 10 levels (conversation -> mapping -> node -> message ->
  content/metadata -> a few levels of lists and objects); the message tree is flat (nodes name their
  parent and children by id), so long conversations nest no deeper. 256 is 25 times that, costs nothing
  to build, and stays far below Python's recursion limit for the code that walks a conversation.
- 64 MiB per item: the largest real conversations are a few MB (long chats, canvas documents rewritten
  many times); 64 MiB is over 10 times that, and about 250 MB of Python objects for a real conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import ijson

MAX_DEPTH = 256
MAX_ITEM_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 16 * 1024
"""Bytes read and parsed at a time. ``basic_parse`` turns a whole chunk into event tuples before yielding the
first; with ijson's default 64 KiB, thousands of them outlive Python's youngest GC generation, are promoted,
and set off ten times more collections (about a third of the parse time). 16 KiB avoids that."""
_REAL_DEPTH = "where a real conversation nests about 10"


@dataclass(frozen=True)
class Limits:
    """What one item of the array may take.

    Attributes:
        depth: arrays and objects nested inside each other in one item, the item itself being level 1.
        item_bytes: bytes of the file one item may span (its JSON text, and whitespace before it).
    """

    depth: int = MAX_DEPTH
    item_bytes: int = MAX_ITEM_BYTES


LIMITS = Limits()
"""The limits :func:`array_items` applies when given none (tests set smaller ones)."""


class ItemRefused(Exception):
    """An item over a limit.

    Attributes:
        problem: what is wrong, as a sentence fragment (``nests arrays and objects more than 256 levels deep, ...``).
        partial: what was built of the item when it was refused (an incomplete dict or list), or None
            when nothing was (so a caller may still find its id, when the id came first).
    """

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.partial: Any = None


class _SizedReader:
    """``handle``'s bytes, refusing to read on once the current item has spanned more than ``limit`` bytes.

    The builder sets ``item_start`` to ``read_bytes`` whenever an item ends. The check runs before each read,
    when every event of the bytes read so far has been built: the current item then spans at least
    ``read_bytes - item_start`` bytes. So an item of at most ``limit`` bytes is never refused, and a larger one
    is refused within one chunk (:data:`CHUNK_BYTES`) past the limit.
    """

    __slots__ = ("handle", "item_start", "limit", "read_bytes")

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self.handle, self.limit = handle, limit
        self.read_bytes = self.item_start = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of ``handle``. Raises ItemRefused: the current item is over the limit."""
        if self.read_bytes - self.item_start > self.limit:
            mib = self.limit / (1024 * 1024)
            raise ItemRefused(f"is larger than {mib:g} MiB, where the largest real conversations are a few MB")
        data = self.handle.read(size)
        self.read_bytes += len(data)
        return data


def array_items(handle: BinaryIO, limits: Limits | None = None) -> Iterator[Any]:
    """Yield the items of the JSON array ``handle`` holds, built one at a time (numbers as floats).

    ``handle`` must be at the array's ``[`` (the caller has checked it is one). The bytes after the array
    are read too, so trailing garbage raises like bad JSON anywhere.

    Raises:
        ItemRefused: an item over ``limits`` (default :data:`LIMITS`); the items before it were yielded.
        ijson.JSONError: bad or truncated JSON; the items before it were yielded.
        OSError, EOFError, ...: whatever ``handle.read`` raises.
    """
    limits = limits or LIMITS
    reader = _SizedReader(handle, limits.item_bytes)
    events = ijson.basic_parse(reader, buf_size=CHUNK_BYTES, use_float=True)
    next(events, None)  # the array's start_array (the caller has checked the first byte is "[")
    yield from _build(events, reader, limits.depth)


def _build(events: Iterator[tuple[str, Any]], reader: _SizedReader, max_depth: int) -> Iterator[Any]:
    """The builder: ``events`` after the array's start; yields each item of the array as it ends.

    ``stack`` holds the containers of the item being built, outermost first, ``top`` the innermost (None
    between items). A container is put into its parent when it starts (under the last ``map_key`` for an
    object), so one ``key`` is enough. Branches are ordered by how often exports take them (keys, then
    scalars). The hot loop of an import: keep it flat.

    Raises:
        ItemRefused: an item nests deeper than ``max_depth``, or the reader refused it (``partial`` set).
    """
    stack: list[Any] = []
    top: Any = None
    top_is_dict = False
    key = None
    try:
        for event, value in events:
            if event == "map_key":
                key = value
            elif value is not None or event == "null":  # a scalar
                if top_is_dict:
                    top[key] = value
                elif top is not None:
                    top.append(value)
                else:
                    reader.item_start = reader.read_bytes
                    yield value
            elif event == "start_map" or event == "start_array":
                container: Any = {} if event == "start_map" else []
                if top is not None:
                    if len(stack) >= max_depth:
                        raise ItemRefused(f"nests arrays and objects more than {max_depth} levels deep, {_REAL_DEPTH}")
                    if top_is_dict:
                        top[key] = container
                    else:
                        top.append(container)
                stack.append(container)
                top, top_is_dict = container, event == "start_map"
            elif stack:  # end_map or end_array; with an empty stack, the array's own end
                done = stack.pop()
                if stack:
                    top = stack[-1]
                    top_is_dict = type(top) is dict
                else:
                    top, top_is_dict = None, False
                    reader.item_start = reader.read_bytes
                    yield done
    except ItemRefused as refused:
        refused.partial = stack[0] if stack else None
        raise
