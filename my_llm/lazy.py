"""Lazy package faces (PEP 562): a face lists its public names and the module each lives in, and a name's
module is imported the first time the name is used, so ``import my_llm`` (and ``my-llm --help``) does not
pay for LangChain, Chroma or onnxruntime. ``from my_llm import X`` works exactly as an eager import would.

Each face keeps a ``TYPE_CHECKING`` block with the same imports, for type checkers and import-linter (which
sees only static imports). The lowest room: it imports nothing of the project.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_face(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of the face ``package``.

    Args:
        package: the face's ``__name__``, e.g. ``"my_llm"``.
        names: public name -> dotted module that defines (or re-exports) it, e.g.
            ``{"Settings": "my_llm.config"}``.

    Returns:
        ``(__getattr__, __dir__)``. ``__getattr__(name)`` imports ``names[name]``, caches the value on the
        package (later look-ups are plain attribute reads) and returns it; a name not in ``names`` that is a
        subpackage or module of ``package`` is imported as one (``my_llm.history`` after ``import my_llm``).

    Raises:
        AttributeError: (from ``__getattr__``) for any other name, as a module without it would.
        ImportError: (from ``__getattr__``) when the defining module exists but fails to import.
    """

    def __getattr__(name: str) -> object:
        face = sys.modules[package]
        module = names.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
        elif not name.startswith("__"):
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as error:
                if error.name != f"{package}.{name}":
                    raise  # the submodule exists; something it imports is missing
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(face, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
