"""Trigger kinds: the built-ins (``sql``, ``email``), kinds registered in code, and plugins found through the
entry point group ``my_llm.triggers``.

A plugin package declares, in its ``setup.cfg``::

    [options.entry_points]
    my_llm.triggers =
        ticket = my_ticket_plugin:TicketTrigger.from_table

where the object is a factory taking a :class:`my_llm.triggers.TriggerTable` and returning a
:class:`my_llm.triggers.Trigger` (subclass :class:`my_llm.triggers.PatternTrigger` for the common options).
A ``[[trigger]]`` table with ``kind = "ticket"`` then builds one. Entry points are read when a kind is
first asked for and not registered in code, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

from my_llm.triggers.base import TriggerConfigError
from my_llm.triggers.config import Factory, TriggerConfig, read_config
from my_llm.triggers.mail import EmailTrigger
from my_llm.triggers.sql import SqlTrigger

ENTRY_POINT_GROUP = "my_llm.triggers"


class Registry:
    """Kinds by name. ``kinds`` are registered in code (they win over entry points of the same name).

    Args:
        kinds: ``{kind: factory}``; the built-ins when None (see :func:`builtin_kinds`).
        use_entry_points: also look kinds up in the ``my_llm.triggers`` entry point group.
    """

    def __init__(self, kinds: Mapping[str, Factory] | None = None, use_entry_points: bool = True) -> None:
        self._kinds: dict[str, Factory] = dict(builtin_kinds() if kinds is None else kinds)
        self.use_entry_points = use_entry_points

    def register(self, kind: str, factory: Factory) -> None:
        """Add (or replace) a kind."""
        self._kinds[kind] = factory

    def factory(self, kind: str) -> Factory | None:
        """The factory of ``kind``: registered in code, else the entry point of that name, else None.

        Raises:
            TriggerConfigError: the entry point exists but cannot be loaded (the plugin's import fails).
        """
        if kind in self._kinds:
            return self._kinds[kind]
        if not self.use_entry_points:
            return None
        for point in entry_points(group=ENTRY_POINT_GROUP, name=kind):
            try:
                factory = point.load()
            except (ImportError, AttributeError) as error:
                message = f"The trigger plugin {point.value!r} (kind {kind!r}) failed to load: {error}"
                raise TriggerConfigError(message) from error
            self._kinds[kind] = factory
            return factory
        return None

    def kinds(self) -> list[str]:
        """Every kind available: registered ones and installed entry points, sorted."""
        names = set(self._kinds)
        if self.use_entry_points:
            names |= {point.name for point in entry_points(group=ENTRY_POINT_GROUP)}
        return sorted(names)


def builtin_kinds() -> dict[str, Factory]:
    """``{"sql": SqlTrigger.from_table, "email": EmailTrigger.from_table}``."""
    return {"sql": SqlTrigger.from_table, "email": EmailTrigger.from_table}


def load_config(
    path: Path, registry: Registry | None = None, environ: Mapping[str, str] | None = None
) -> TriggerConfig:
    """Read a triggers TOML file with ``registry`` (built-ins and entry points when None).

    Raises:
        TriggerConfigError: see :func:`my_llm.triggers.config.read_config`.
    """
    return read_config(path, registry or Registry(), environ)
