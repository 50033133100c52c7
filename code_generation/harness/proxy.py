"""The tests side's stand-in for the generated module: ``import <module>`` in the test file gives a module
whose attributes live in the module side's process.

Plain values (see :mod:`.wire`) come back as real ``int``, ``list``, ``dict``...: an assertion such as
``add(1, 2) == 3`` compares objects this process built itself. Other objects come back as :class:`Proxy`
objects that forward attribute access, calls, iteration, ``len``, ``bool``, indexing, ``str``/``repr`` and
``hash``. Comparisons (``==``, ``<``, ...) are forwarded only between two proxies: compared with a plain value,
a proxy is only equal to itself, so an object whose ``__eq__`` always says yes cannot pass ``f() == 3``; for
the same reason there is no arithmetic on proxies and ``in`` iterates the proxy and compares here.
Exceptions come back as the same built-in class (``ValueError``), or as a local class of the same name
derived from it for the module's own exception classes, with the module side's traceback as a note.
Callables of the tests (``key=len``, a lambda) are passed as callbacks the module side can call.

Limits: ``isinstance(x, module.Class)`` works for proxies only; a proxy cannot be a base class, a context
manager or an operand of arithmetic; setting an attribute of the module stand-in (``monkeypatch``) does not
reach the module side; one thread at a time.
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.util
import socket
import sys
import types
from collections.abc import Callable
from typing import Any

from .wire import Channel, Codec, WireError

FORWARDED_DUNDERS = frozenset({"__name__", "__qualname__"})
# What pytest and unittest read from a test module besides tests (and names starting with pytest, test, Test, _):
# `from <module> import *` never binds them.
STAR_REFUSED = frozenset(
    {"setup_module", "teardown_module", "setup_function", "teardown_function", "setUpModule", "tearDownModule",
     "setup", "teardown", "load_tests"}
)  # fmt: skip


class RemoteError(Exception):
    """An exception of the generated code that is not a built-in ``Exception`` (``SystemExit``, say) or
    could not be rebuilt here."""


class Remote:
    """The connection to the module side: requests, references, exceptions, callbacks."""

    def __init__(self, sock: socket.socket, module_name: str) -> None:
        self.module_name = module_name
        self.codec = Codec(self.export, self.resolve)
        self.channel = Channel(sock, self.handle)
        self.proxies: dict[int, Proxy] = {}
        self.mirrors: dict[int, type] = {}
        self.callbacks: dict[int, Callable] = {}
        self._callback_numbers: dict[int, int] = {}

    def request(self, op: str, target: Proxy | None = None, **fields: Any) -> Any:
        """Send one request; echo what the module printed; return the value or raise the module's error."""
        message = {"op": op, **fields}
        if target is not None:
            message["target"] = {"t": "ref", "id": target._cs_ref}
        reply = self.channel.request(message)
        for stream, key in ((sys.stdout, "out"), (sys.stderr, "err")):
            if isinstance(reply.get(key), str) and reply[key]:
                stream.write(reply[key])
        if "error" in reply:
            raise self.exception(reply["error"])
        return self.codec.decode(reply.get("ok"))

    def call(self, target: Proxy, args: tuple, kwargs: dict) -> Any:
        return self.request("call", target, args=self.codec.encode(list(args)), kwargs=self.codec.encode(kwargs))

    def op(self, target: Proxy, name: str, *args: Any) -> Any:
        return self.request("op", target, name=name, args=self.codec.encode(list(args)))

    def export(self, value: Any) -> dict:
        """What the module side gets for a value that is not plain: its own object back, or a callback."""
        if isinstance(value, Proxy):
            return {"t": "ref", "id": value._cs_ref}
        if isinstance(value, type) and "_cs_ref" in vars(value):
            return {"t": "ref", "id": vars(value)["_cs_ref"]}
        if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == "builtins":
            return {"t": "builtin_exc", "name": value.__name__}
        if callable(value):
            number = self._callback_numbers.setdefault(id(value), len(self.callbacks) + 1)
            self.callbacks[number] = value
            return {"t": "cb", "id": number}
        raise TypeError(
            f"a {type(value).__name__} cannot be passed to the generated code, which runs in a sandbox of its "
            "own: pass plain data (numbers, strings, lists, dicts, ...) or a function"
        )

    def resolve(self, tag: dict) -> Any:
        """The local object for a reference tag: a proxy, an exception class, a callback of ours."""
        kind = tag["t"]
        if kind == "ref":
            number = int(tag["id"])
            if number not in self.proxies:
                self.proxies[number] = Proxy(self, number, str(tag.get("repr", "?"))[:200])
            return self.proxies[number]
        if kind == "exc_class":
            return self.mirror(tag)
        if kind == "builtin_exc":
            found = getattr(builtins, str(tag["name"]), None)
            if isinstance(found, type) and issubclass(found, BaseException):
                return found
            raise WireError(f"no built-in exception {tag['name']!r}")
        if int(tag["id"]) in self.callbacks:
            return self.callbacks[int(tag["id"])]
        raise WireError(f"no callback {tag['id']!r}")

    def mirror(self, tag: dict) -> type:
        """The local class standing for one of the module's exception classes (one per class)."""
        number = int(tag["id"])
        if number not in self.mirrors:
            parent = self.codec.decode(tag.get("parent")) if tag.get("parent") else None
            base = parent if isinstance(parent, type) else getattr(builtins, str(tag.get("builtin")), None)
            if not (isinstance(base, type) and issubclass(base, Exception)):
                base = RemoteError
            namespace = {"__module__": self.module_name, "_cs_ref": number}
            self.mirrors[number] = type(str(tag.get("name", "Error")), (base,), namespace)
        return self.mirrors[number]

    def exception(self, info: Any) -> BaseException:
        """The module's exception rebuilt here, its traceback as a note."""
        info = info if isinstance(info, dict) else {}
        message = str(info.get("message", ""))
        kind: Any = getattr(builtins, str(info.get("builtin")), None)
        if isinstance(info.get("class"), dict):
            try:
                kind = self.codec.decode(info["class"])
            except WireError:
                kind = None
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            kind, message = RemoteError, f"{info.get('type', 'an exception')}: {message}"
        try:
            args = self.codec.decode(info["args"]) if "args" in info and kind is not RemoteError else (message,)
            error = kind(*args)
        except Exception:  # arguments this class does not take: the message will do
            error = RemoteError(f"{info.get('type', 'an exception')}: {message}")
        if info.get("traceback"):
            where = "Traceback in the generated module's sandbox (most recent call last):"
            error.__notes__ = [*getattr(error, "__notes__", []), f"{where}\n{str(info['traceback']).rstrip()}"]
        return error

    def handle(self, request: dict) -> dict:
        """The module side's requests: only calls of the callbacks it was given."""
        try:
            target = self.codec.decode(request.get("target"))
            if request.get("op") != "call" or isinstance(target, Proxy) or not callable(target):
                raise TypeError("the generated code may only call the functions the tests gave it")
            args = self.codec.decode(request.get("args", {"t": "list", "v": []}))
            kwargs = self.codec.decode(request.get("kwargs", {"t": "dict", "v": []}))
            return {"ok": self.codec.encode(target(*args, **kwargs))}
        except Exception as error:
            base = next(c for c in type(error).__mro__ if c.__module__ == "builtins")
            return {"error": {"builtin": base.__name__, "message": str(error)}}


def _compare(name: str) -> Callable[[Proxy, Any], Any]:
    def compare(self: Proxy, other: Any) -> Any:
        if not isinstance(other, Proxy):
            return NotImplemented
        return self._cs_remote.op(self, name, other)

    compare.__name__ = f"__{name}__"
    return compare


class Proxy:
    """One object of the generated code, held by the module side (see the module's docstring)."""

    __slots__ = ("_cs_remote", "_cs_ref", "_cs_repr", "__weakref__")

    def __init__(self, remote: Remote, ref: int, text: str) -> None:
        object.__setattr__(self, "_cs_remote", remote)
        object.__setattr__(self, "_cs_ref", ref)
        object.__setattr__(self, "_cs_repr", text)

    def __getattr__(self, name: str) -> Any:
        if (name.startswith("__") and name not in FORWARDED_DUNDERS) or name.startswith(("_pytest", "_cs_")):
            raise AttributeError(name)
        return self._cs_remote.request("getattr", self, name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_cs_"):  # copy.copy rebuilding a proxy: the copy stands for the same object
            object.__setattr__(self, name, value)
        else:
            self._cs_remote.request("setattr", self, name=name, value=self._cs_remote.codec.encode(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._cs_remote.call(self, args, kwargs)

    def __iter__(self) -> Any:
        return self._cs_remote.op(self, "iter")

    def __next__(self) -> Any:
        return self._cs_remote.op(self, "next")

    def __len__(self) -> int:
        return self._cs_remote.op(self, "len")

    def __bool__(self) -> bool:
        value = self._cs_remote.op(self, "bool")
        if not isinstance(value, bool):
            raise TypeError("__bool__ should return bool")
        return value

    def __getitem__(self, key: Any) -> Any:
        return self._cs_remote.op(self, "getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._cs_remote.op(self, "setitem", key, value)

    def __delitem__(self, key: Any) -> None:
        self._cs_remote.op(self, "delitem", key)

    def __str__(self) -> str:
        return str(self._cs_remote.op(self, "str"))

    def __repr__(self) -> str:
        try:
            return str(self._cs_remote.op(self, "repr"))[:2000]
        except Exception:
            return self._cs_repr

    def __hash__(self) -> int:
        value = self._cs_remote.op(self, "hash")
        if not isinstance(value, int):
            raise TypeError("__hash__ should return an int")
        return value

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, Proxy) and self._cs_remote.op(obj, "isinstance", self) is True

    __eq__, __ne__, __lt__ = _compare("eq"), _compare("ne"), _compare("lt")
    __le__, __gt__, __ge__ = _compare("le"), _compare("gt"), _compare("ge")


class StandIn(types.ModuleType):
    """The test file's ``<module>``: attributes fetched from the module side; ``from <module> import *``
    binds the module's public names except those in :data:`STAR_REFUSED`, built-in names and names the
    importing module has bound already (its ``import math``, its helpers), so none can be replaced."""

    _cs_module: Proxy
    _cs_names: list

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name not in FORWARDED_DUNDERS or name.startswith("_cs_"):
            raise AttributeError(name)
        return getattr(self._cs_module, name)

    @property
    def __all__(self) -> list[str]:
        bound = sys._getframe(1).f_globals  # the module running `from <module> import *`
        return [
            name for name in self._cs_names
            if isinstance(name, str) and name.isidentifier() and name not in STAR_REFUSED
            and not name.startswith(("_", "pytest", "test", "Test")) and not hasattr(builtins, name)
            and name not in bound
        ]  # fmt: skip


class GeneratedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the generated module's name before any file of that name, and loads a :class:`StandIn`."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.remote.module_name:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin="the generated module's sandbox")

    def create_module(self, spec: Any) -> StandIn:
        return StandIn(spec.name)

    def exec_module(self, module: Any) -> None:
        """Import the module on the module side (its errors are raised here, with its traceback)."""
        found = self.remote.request("import", name=self.remote.module_name)
        if not isinstance(found, dict) or not isinstance(found.get("module"), Proxy):
            raise ImportError(f"the module side answered {str(found)[:80]} for {self.remote.module_name}")
        names = found.get("names")
        vars(module).update(_cs_module=found["module"], _cs_names=names if isinstance(names, list) else [])
