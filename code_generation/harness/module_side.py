"""The module side: import the generated module and answer the tests side's requests about it.

Requests (each ``{"op": ..., "target": <ref>, ...}``; values as :mod:`.wire` encodes them):

- ``import {name}`` -> ``{"module": <ref>, "names": [...]}`` (its ``__all__``, else its public names);
- ``getattr {target, name}``, ``setattr {target, name, value}``, ``call {target, args, kwargs}``;
- ``op {target, name, args}`` for ``len bool iter next getitem setitem delitem str repr hash eq ne lt le gt ge
  isinstance``.

What the module prints during a request is captured and sent with the reply (``out``, ``err``), so the tests
side's capture (pytest's ``capsys``) sees it; an exception is sent as its type, its nearest built-in base, its
arguments and its traceback. Objects that are not plain data stay here and travel as references.

This code shares its interpreter with the generated module, which can change any of it: the tests side
trusts nothing it receives beyond its being plain data.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import operator
import os
import socket
import sys
import traceback
from typing import Any

from .wire import Channel, Codec, WireError

MAX_TEXT = 20_000
_NO_ARGS, _NO_KWARGS = {"t": "list", "v": []}, {"t": "dict", "v": []}
_OPS = {
    "len": len, "bool": bool, "iter": iter, "next": next, "getitem": operator.getitem,
    "setitem": operator.setitem, "delitem": operator.delitem, "str": str, "repr": repr, "hash": hash,
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
    "ge": operator.ge, "isinstance": isinstance,
}  # fmt: skip


def builtin_base(kind: type) -> type:
    """The first built-in exception class in ``kind``'s MRO."""
    return next(c for c in kind.__mro__ if c.__module__ == "builtins" and issubclass(c, BaseException))


def public_names(module: Any) -> list[str]:
    """``module.__all__`` when it is a list of names, else every name not starting with ``_``."""
    names = getattr(module, "__all__", None)
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        return list(names)
    return [name for name in vars(module) if not name.startswith("_")]


class Callback:
    """A callable of the tests side (a ``key=`` function, say): calling it asks the tests side to call it."""

    def __init__(self, server: Server, number: int) -> None:
        self.server, self.number = server, number

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        codec = self.server.codec
        reply = self.server.channel.request(
            {"op": "call", "target": {"t": "cb", "id": self.number},
             "args": codec.encode(list(args)), "kwargs": codec.encode(kwargs)}
        )  # fmt: skip
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            kind = getattr(builtins, str(error.get("builtin")), Exception)
            kind = kind if isinstance(kind, type) and issubclass(kind, Exception) else Exception
            raise kind(str(error.get("message", "")))
        return codec.decode(reply.get("ok"))

    def __repr__(self) -> str:
        return f"<callable from the tests #{self.number}>"


class Server:
    """Holds the objects handed out as references and answers requests on ``sock``."""

    def __init__(self, sock: socket.socket) -> None:
        self.objects: dict[int, Any] = {}
        self.numbers: dict[int, int] = {}  # id(object) -> reference number
        self.callbacks: dict[int, Callback] = {}
        self.codec = Codec(self.export, self.resolve)
        self.channel = Channel(sock, self.handle)

    def export(self, value: Any) -> dict:
        """A reference to ``value`` (kept alive here); exception classes carry their built-in base."""
        if isinstance(value, Callback):
            return {"t": "cb", "id": value.number}
        if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == "builtins":
            return {"t": "builtin_exc", "name": value.__name__}
        number = self.numbers.get(id(value))
        if number is None:
            number = self.numbers[id(value)] = len(self.objects) + 1
            self.objects[number] = value
        if isinstance(value, type) and issubclass(value, BaseException):
            parent = next((c for c in value.__mro__[1:] if c.__module__ != "builtins"), None)
            return {"t": "exc_class", "id": number, "name": value.__name__, "builtin": builtin_base(value).__name__,
                    "parent": self.export(parent) if parent is not None else None}  # fmt: skip
        return {"t": "ref", "id": number, "repr": _safe(repr, value)[:200]}

    def resolve(self, tag: dict) -> Any:
        """The object a reference from the tests side stands for."""
        if tag["t"] == "cb":
            number = int(tag["id"])
            return self.callbacks.setdefault(number, Callback(self, number))
        if tag["t"] == "builtin_exc":
            return getattr(builtins, str(tag["name"]))
        if int(tag["id"]) not in self.objects:
            raise WireError(f"no object {tag['id']!r} here")
        return self.objects[int(tag["id"])]

    def handle(self, request: dict) -> dict:
        """Run one request with the module's output captured; the reply holds the value or the error."""
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                reply = {"ok": self.codec.encode(self._run(request))}
        except BaseException as error:  # everything, SystemExit included, goes back as the call's error
            reply = {"error": self.describe(error)}
        reply.update({"out": out.getvalue()[-MAX_TEXT:], "err": err.getvalue()[-MAX_TEXT:]})
        return reply

    def _run(self, request: dict) -> Any:
        op, decode = request.get("op"), self.codec.decode
        args, kwargs = request.get("args", _NO_ARGS), request.get("kwargs", _NO_KWARGS)
        if op == "import":
            module = importlib.import_module(str(request["name"]))
            return {"module": module, "names": public_names(module)}
        target = decode(request.get("target"))
        if op == "getattr":
            return getattr(target, str(request["name"]))
        if op == "setattr":
            return setattr(target, str(request["name"]), decode(request.get("value")))
        if op == "call":
            return target(*decode(args), **decode(kwargs))
        if op == "op" and request.get("name") in _OPS:
            return _OPS[request["name"]](target, *decode(args))
        raise WireError(f"an unknown request {op!r}")

    def describe(self, error: BaseException) -> dict:
        """Type, built-in base, arguments, message, and the traceback's frames in the work folder's files (the
        generated module's and the user's; none of this harness or of the standard library)."""
        kind = type(error)
        work = os.getcwd() + os.sep
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(work)]
        text = "".join(traceback.format_list(frames)) if frames else ""
        info: dict[str, Any] = {
            "type": kind.__qualname__,
            "builtin": builtin_base(kind).__name__,
            "message": _safe(str, error)[:MAX_TEXT],
            "traceback": (text + "".join(traceback.format_exception_only(kind, error)))[-MAX_TEXT:] if text else "",
        }
        if kind.__module__ != "builtins":
            info["class"] = self.export(kind)
        with contextlib.suppress(Exception):
            info["args"] = self.codec.encode(tuple(error.args))
        return info


def _safe(show: Any, value: Any) -> str:
    try:
        return str(show(value))
    except Exception as error:  # a broken __repr__ or __str__ is the module's problem, not the wire's
        return f"<{type(value).__name__} object ({type(error).__name__} in {show.__name__})>"


def main(argv: list[str]) -> None:
    """``module --channel FD``: serve requests until the tests side closes the connection."""
    channel_fd = int(argv[argv.index("--channel") + 1])
    os.set_inheritable(channel_fd, False)
    sys.path.insert(0, os.getcwd())
    server = Server(socket.socket(fileno=channel_fd))
    server.channel.serve()
