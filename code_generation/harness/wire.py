"""The wire between the tests side and the module side: frames, values, requests.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON (an object), at most
:data:`MAX_FRAME` bytes. A request is ``{"id": n, "op": ..., ...}``, its reply ``{"re": n, "ok": value}`` or
``{"re": n, "error": {...}}``; either side may send a request while it waits for a reply (a callback), so
:meth:`Channel.request` serves the other side's requests until its own reply comes.

Values are plain data, rebuilt on arrival by :meth:`Codec.decode` without running any code of the sender:
``None``, ``bool``, ``int``, ``float``, ``str`` as JSON; everything else as ``{"t": tag, ...}``: ``list``,
``tuple``, ``set``, ``frozenset``, ``dict`` (any hashable keys), ``bytes``, ``complex``, big ints,
namedtuples, ``Decimal``, ``Fraction``, ``datetime``/``date``/``time``/``timedelta`` and paths. Subclasses of
these travel as the base type (a ``Counter`` arrives as a ``dict``, an ``IntEnum`` member as an ``int``).
Any other object is not sent: the sender's ``export`` hook turns it into a reference (``ref``, ``cb``,
``exc_class``) that the receiver's ``resolve`` hook turns into a stand-in. Nesting deeper than
:data:`MAX_DEPTH` is refused (so is a cycle).
"""

from __future__ import annotations

import base64
import collections
import datetime
import decimal
import fractions
import json
import pathlib
import socket
import struct
from collections.abc import Callable
from typing import Any

MAX_FRAME = 64 << 20
MAX_DEPTH = 100
_HEADER = struct.Struct(">I")
_SMALL_INT = 1 << 53
_SEQUENCES = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}
_TIMES = {"datetime": datetime.datetime, "date": datetime.date, "time": datetime.time}
_BY_STRING = {"decimal": decimal.Decimal, "fraction": fractions.Fraction, "path": pathlib.PurePath}


class WireError(Exception):
    """A frame or value that breaks the protocol (too large, too deep, malformed): the run cannot go on."""


class PeerGone(WireError):
    """The other side closed the connection (it exited or was killed)."""


def send_frame(sock: socket.socket, message: dict) -> None:
    """Write ``message`` as one frame. Raises WireError when it is larger than :data:`MAX_FRAME`."""
    data = json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass")
    if len(data) > MAX_FRAME:
        raise WireError(f"a message of {len(data)} bytes is larger than {MAX_FRAME}")
    sock.sendall(_HEADER.pack(len(data)) + data)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise PeerGone("the other side of the sandbox closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> dict:
    """Read one frame. Raises PeerGone at end of stream, WireError for an oversized or malformed frame."""
    (size,) = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
    if size > MAX_FRAME:
        raise WireError(f"a frame of {size} bytes is larger than {MAX_FRAME}")
    try:
        message = json.loads(_read_exactly(sock, size).decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError) as error:
        raise WireError(f"a malformed frame: {error}") from None
    if not isinstance(message, dict):
        raise WireError("a frame that is not a JSON object")
    return message


class Codec:
    """Plain values to JSON and back; ``export(obj) -> tag`` for what is not plain, ``resolve(tag) -> obj``
    for the reference tags (``ref``, ``cb``, ``exc_class``, ``builtin_exc``) on arrival."""

    def __init__(self, export: Callable[[Any], dict], resolve: Callable[[dict], Any]) -> None:
        self.export = export
        self.resolve = resolve
        self._tuple_types: dict[tuple[str, tuple[str, ...]], type] = {}

    def encode(self, value: Any, depth: int = 0) -> Any:
        """JSON-ready form of ``value``. Raises WireError past :data:`MAX_DEPTH`."""
        if depth > MAX_DEPTH:
            raise WireError(f"a value nested deeper than {MAX_DEPTH} levels (or a cycle)")
        if value is None or type(value) in (bool, str, float):
            return value
        if isinstance(value, (bool, str, float)):  # a subclass travels as its base type
            return (
                bool(value)
                if isinstance(value, bool)
                else str.__str__(value)
                if isinstance(value, str)
                else float(value)
            )
        if isinstance(value, int):
            return int(value) if -_SMALL_INT < value < _SMALL_INT else {"t": "int", "v": format(int(value), "x")}
        if isinstance(value, tuple) and hasattr(type(value), "_fields"):
            return {"t": "ntuple", "name": type(value).__name__, "fields": [str(f) for f in type(value)._fields],
                    "v": [self.encode(item, depth + 1) for item in value]}  # fmt: skip
        for tag, kind in _SEQUENCES.items():
            if isinstance(value, kind):
                return {"t": tag, "v": [self.encode(item, depth + 1) for item in value]}
        if isinstance(value, dict):
            pairs = [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in dict.items(value)]
            return {"t": "dict", "v": pairs}
        return self._encode_other(value)

    def _encode_other(self, value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return {"t": "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
        if isinstance(value, complex):
            return {"t": "complex", "v": [value.real, value.imag]}
        for tag, kind in _BY_STRING.items():
            if isinstance(value, kind):
                return {"t": tag, "v": str(value)}
        if isinstance(value, datetime.timedelta):
            return {"t": "timedelta", "v": [value.days, value.seconds, value.microseconds]}
        for tag, kind in _TIMES.items():
            if isinstance(value, kind) and getattr(value, "tzinfo", None) is None:
                return {"t": tag, "v": value.isoformat()}
        return self.export(value)

    def decode(self, data: Any, depth: int = 0) -> Any:
        """The value ``data`` stands for. Raises WireError for anything malformed or too deep."""
        if depth > MAX_DEPTH:
            raise WireError(f"a value nested deeper than {MAX_DEPTH} levels")
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if not isinstance(data, dict) or not isinstance(data.get("t"), str):
            raise WireError(f"a malformed value: {str(data)[:80]}")
        try:
            return self._decode_tagged(data["t"], data, depth)
        except WireError:
            raise
        except (TypeError, ValueError, KeyError, ArithmeticError) as error:
            raise WireError(f"a malformed {data['t']!r} value: {error}") from None

    def _decode_tagged(self, tag: str, data: dict, depth: int) -> Any:
        if tag in _SEQUENCES:
            return _SEQUENCES[tag](self.decode(item, depth + 1) for item in _list(data["v"]))
        if tag == "dict":
            return {self.decode(k, depth + 1): self.decode(v, depth + 1) for k, v in _list(data["v"])}
        if tag == "ntuple":
            kind = self._tuple_type(str(data["name"]), tuple(str(f) for f in _list(data["fields"])))
            return kind(*(self.decode(item, depth + 1) for item in _list(data["v"])))
        if tag in _SIMPLE:
            return _SIMPLE[tag](data["v"])
        if tag in ("ref", "cb", "exc_class", "builtin_exc"):
            return self.resolve(data)
        raise WireError(f"an unknown value tag {tag!r}")

    def _tuple_type(self, name: str, fields: tuple[str, ...]) -> type:
        key = (name, fields)
        if key not in self._tuple_types:
            self._tuple_types[key] = collections.namedtuple(name, fields)  # validates the names
        return self._tuple_types[key]


_SIMPLE: dict[str, Callable[[Any], Any]] = {
    "int": lambda v: int(str(v), 16),
    "bytes": lambda v: base64.b64decode(str(v), validate=True),
    "complex": lambda v: complex(float(v[0]), float(v[1])),
    "decimal": lambda v: decimal.Decimal(str(v)),
    "fraction": lambda v: fractions.Fraction(str(v)),
    "path": lambda v: pathlib.Path(str(v)),
    "timedelta": lambda v: datetime.timedelta(int(v[0]), int(v[1]), int(v[2])),
    **{name: (lambda v, kind=kind: kind.fromisoformat(str(v))) for name, kind in _TIMES.items()},
}


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise WireError("a malformed value: a list was expected")
    return value


class Channel:
    """One end of the connection: :meth:`request` sends and waits, serving the other side meanwhile.

    ``handle(request) -> reply`` answers the other side's requests (it sets nothing but ``ok``/``error``;
    the channel adds ``re``). Not thread-safe: one request at a time.
    """

    def __init__(self, sock: socket.socket, handle: Callable[[dict], dict]) -> None:
        self.sock = sock
        self.handle = handle
        self._next_id = 0

    def request(self, message: dict) -> dict:
        """Send ``message`` and return its reply. Raises PeerGone or WireError."""
        self._next_id += 1
        number = self._next_id
        send_frame(self.sock, {**message, "id": number})
        while True:
            frame = recv_frame(self.sock)
            if "re" in frame:
                if frame["re"] != number:
                    raise WireError(f"a reply to request {frame['re']!r} while waiting for {number}")
                return frame
            self._answer(frame)

    def serve(self) -> None:
        """Answer requests until the other side closes the connection (returns then)."""
        while True:
            try:
                frame = recv_frame(self.sock)
            except PeerGone:
                return
            if "re" in frame:
                raise WireError("a reply when no request was made")
            self._answer(frame)

    def _answer(self, frame: dict) -> None:
        if "op" not in frame or "id" not in frame:
            raise WireError("a frame that is neither a request nor a reply")
        reply = {**self.handle(frame), "re": frame["id"]}
        try:
            send_frame(self.sock, reply)
        except WireError as error:  # too large: checked before anything is written
            send_frame(self.sock, {"re": frame["id"], "error": {"builtin": "ValueError", "message": str(error)}})
