"""The triggers TOML file: read, validated, every error naming the file, line and key.

Shape (keys of each kind in :mod:`my_llm.triggers.sql` and :mod:`my_llm.triggers.mail`)::

    ledger = "triggers.ledger.sqlite"          # optional; default $MESSAGE_HISTORY/.triggers/ledger.sqlite
    subscription = "my-llm-{namespace}-triggers"  # optional; the Pub/Sub subscription per namespace

    [[trigger]]
    name = "shop"                              # optional, unique; the ledger keys on it: keep it stable
    kind = "sql"                               # or "email", or a plugin's kind
    namespaces = ["analytics"]
    database = "sqlite:///data/shop.db"        # relative paths are relative to this file's folder

A kind's factory reads its table through :class:`TriggerTable`, whose getters raise
:class:`TriggerConfigError` with the location, and which refuses keys nobody read (a typo such as
``alow = [...]`` must not silently widen or narrow what runs).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from my_llm.errors import InvalidNamespaceError
from my_llm.record import validate_namespace
from my_llm.triggers.base import Common, Trigger, TriggerConfigError
from my_llm.triggers.patterns import UNTIL, Pattern

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_REQUIRED = object()
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TABLE_HEADER = re.compile(r"^\s*\[\[\s*trigger\s*\]\]")
_ANY_HEADER = re.compile(r"^\s*\[")
COMMON_KEYS = ("name", "kind", "namespaces", "prefix", "pattern", "until", "sources", "max_age_s", "max_per_message")
TOP_KEYS = ("ledger", "subscription", "trigger")
DEFAULT_SUBSCRIPTION = "my-llm-{namespace}-triggers"


@dataclass(frozen=True)
class ConfigSource:
    """The file's path and lines, to say where a key is (tomllib reports no positions)."""

    path: Path
    lines: tuple[str, ...]

    def trigger_line(self, index: int) -> int | None:
        """1-based line of the ``index``-th (0-based) ``[[trigger]]`` header."""
        headers = [number for number, line in enumerate(self.lines, 1) if _TABLE_HEADER.match(line)]
        return headers[index] if index < len(headers) else None

    def key_line(self, index: int | None, key: str) -> int | None:
        """1-based line of ``key = ...`` in the ``index``-th trigger table (None: the top of the file)."""
        start = 0 if index is None else (self.trigger_line(index) or 0)
        assignment = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if _ANY_HEADER.match(line):  # the next table: the key is not in this one
                return None
            if assignment.match(line):
                return number
        return None

    def where(self, index: int | None, key: str | None) -> str:
        """``path:line: [[trigger]] #n, key "k"`` (the parts that are known)."""
        line = self.key_line(index, key) if key else None
        if line is None and index is not None:
            line = self.trigger_line(index)
        place = f"{self.path}:{line}" if line else str(self.path)
        table = "" if index is None else f" [[trigger]] #{index + 1}"
        return f"{place}:{table}{f', key {key!r}' if key else ''}"


class TriggerTable:
    """One ``[[trigger]]`` table as a kind's factory reads it.

    Args:
        source: the file (for error locations).
        index: 0-based position of the table in the file.
        data: the table as tomllib parsed it.
        environ: where ``*_env`` keys (secrets) are looked up; ``os.environ`` when None.
        default_name: the name used when the table has none.
    """

    def __init__(
        self,
        source: ConfigSource,
        index: int,
        data: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        default_name: str = "",
    ) -> None:
        self.source, self.index, self.data = source, index, dict(data)
        self.environ = os.environ if environ is None else environ
        self.folder = source.path.parent
        self.default_name = default_name
        self._read: set[str] = set()

    def error(self, message: str, key: str | None = None) -> TriggerConfigError:
        """A :class:`TriggerConfigError` saying ``path:line: [[trigger]] #n, key 'k': message``."""
        return TriggerConfigError(f"{self.source.where(self.index, key)}: {message}")

    def _get(self, key: str, default: Any, kinds: tuple[type, ...], shape: str) -> Any:
        self._read.add(key)
        if key not in self.data:
            if default is _REQUIRED:
                typo = difflib.get_close_matches(key, [name for name in self.data if name not in self._read], n=1)
                hint = f" (is {typo[0]!r} a typo?)" if typo else ""
                raise self.error(f"is missing{hint}: add {key} = {shape}", key)
            return default
        value = self.data[key]
        if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
            raise self.error(f"must be {shape}, not {value!r}", key)
        return value

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        """A string (``default`` when absent; absent and no default is an error)."""
        return self._get(key, default, (str,), "a string")

    def integer(self, key: str, default: Any = _REQUIRED, low: int = 0, high: int = 10**12) -> Any:
        """An integer from ``low`` to ``high``."""
        value = self._get(key, default, (int,), f"a whole number from {low} to {high}")
        if value is not None and not low <= value <= high:
            raise self.error(f"must be a whole number from {low} to {high}, not {value}", key)
        return value

    def number(self, key: str, default: Any = _REQUIRED, low: float = 0.0, high: float = 1e12) -> Any:
        """A number (int or float) from ``low`` to ``high``, as a float."""
        value = self._get(key, default, (int, float), f"a number from {low:g} to {high:g}")
        if value is not None and not low <= value <= high:
            raise self.error(f"must be a number from {low:g} to {high:g}, not {value}", key)
        return None if value is None else float(value)

    def flag(self, key: str, default: Any = _REQUIRED) -> Any:
        """A boolean (``true``/``false``)."""
        return self._get(key, default, (bool,), "true or false")

    def texts(self, key: str, default: Any = _REQUIRED, allow_empty: bool = False) -> Any:
        """A list of strings."""
        value = self._get(key, default, (list,), '["a", "list", "of strings"]')
        if value is default:
            return value
        if not all(isinstance(item, str) for item in value) or (not value and not allow_empty):
            raise self.error(f"must be a {'' if allow_empty else 'non-empty '}list of strings, not {value!r}", key)
        return list(value)

    def path(self, key: str, default: Any = _REQUIRED) -> Any:
        """A path; relative paths are relative to the config file's folder."""
        value = self.text(key, default)
        return None if value is None else (self.folder / Path(value).expanduser()).resolve()

    def secret(self, key: str) -> str | None:
        """The value of the environment variable named by ``key`` (e.g. ``password_env = "SMTP_PASSWORD"``)."""
        name = self.text(key, None)
        if name is None:
            return None
        if name not in self.environ:
            raise self.error(f"the environment variable {name} is not set", key)
        return self.environ[name]

    def common(self, default_prefix: str, default_until: str = "paragraph") -> Common:
        """The options every :class:`~my_llm.triggers.base.PatternTrigger` takes (see :class:`Common`)."""
        name = self.text("name", self.default_name)
        if not _NAME.fullmatch(name):
            raise self.error("must be 1 to 64 letters, digits, '-', '_' or '.'", "name")
        namespaces = self.texts("namespaces")
        try:
            checked = frozenset(validate_namespace(namespace) for namespace in namespaces)
        except InvalidNamespaceError as error:
            raise self.error(str(error), "namespaces") from None
        return Common(
            name=name,
            kind=self.text("kind"),
            namespaces=checked,
            pattern=self._pattern(default_prefix, default_until),
            sources=frozenset(self.texts("sources", ["live"])),
            max_age_s=self.number("max_age_s", 86_400.0, low=1.0),
            max_per_message=self.integer("max_per_message", 3, low=1, high=100),
        )

    def _pattern(self, default_prefix: str, default_until: str) -> Pattern:
        until = self.text("until", default_until)
        if until not in UNTIL:
            raise self.error(f"must be one of {', '.join(UNTIL)}, not {until!r}", "until")
        regex = self.text("pattern", None)
        if regex is None:
            prefix = self.text("prefix", default_prefix)
            if not prefix.strip():
                raise self.error("must not be blank", "prefix")
            return Pattern(prefix=prefix, until=until)
        if "prefix" in self.data:
            raise self.error("give prefix or pattern, not both", "pattern")
        try:
            return Pattern(regex=re.compile(regex), until=until)
        except re.error as error:
            raise self.error(f"is not a valid regular expression: {error}", "pattern") from None

    def finish(self) -> None:
        """Refuse keys no getter read (a typo must not silently change what runs)."""
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, sorted(self._read), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; this kind reads: {', '.join(sorted(self._read))}"
            raise self.error(f"unknown key{hint}", key)


Factory = Callable[[TriggerTable], Trigger]


class Kinds(Protocol):
    """What :func:`read_config` needs of a registry: ``factory(kind)`` (None when unknown) and ``kinds()``."""

    def factory(self, kind: str) -> Factory | None: ...

    def kinds(self) -> list[str]: ...


@dataclass(frozen=True)
class TriggerConfig:
    """A loaded triggers file.

    Attributes:
        path: the file.
        triggers: in file order; names unique.
        ledger: the ledger's path, or None for the default (see :meth:`ledger_path`).
        subscription: the Pub/Sub subscription id per namespace, with ``{namespace}`` in it.
    """

    path: Path
    triggers: tuple[Trigger, ...]
    ledger: Path | None = None
    subscription: str = DEFAULT_SUBSCRIPTION

    def namespaces(self) -> list[str]:
        """Every namespace some trigger watches, sorted."""
        return sorted({namespace for trigger in self.triggers for namespace in trigger.namespaces})

    def ledger_path(self, message_history: Path) -> Path:
        """The ledger file: ``ledger`` from the file, else ``<message_history>/.triggers/ledger.sqlite``."""
        return self.ledger or Path(message_history) / ".triggers" / "ledger.sqlite"


def read_config(path: Path, kinds: Kinds, environ: Mapping[str, str] | None = None) -> TriggerConfig:
    """Read and validate a triggers file; each table is built by ``kinds.factory(kind)``.

    Raises:
        TriggerConfigError: the file is missing or not TOML, or a key is missing, unknown or invalid (the
            message says ``path:line: [[trigger]] #n, key 'k': what is wrong``); an unknown kind; two
            triggers with one name; a factory's own error.
    """
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as error:
        raise TriggerConfigError(f"{path}: cannot read the triggers file: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"line (\d+)", str(error))
        raise TriggerConfigError(f"{path}{':' + line.group(1) if line else ''}: not valid TOML: {error}") from None
    source = ConfigSource(path, tuple(text.splitlines()))
    for key in data:
        if key not in TOP_KEYS:
            raise TriggerConfigError(
                f"{source.where(None, key)}: unknown key; the top level takes ledger, subscription"
            )
    tables = data.get("trigger", [])
    if not isinstance(tables, list):
        raise TriggerConfigError(f"{source.where(None, 'trigger')}: write each trigger as a [[trigger]] table")
    triggers = _build_all(source, tables, kinds, environ)
    subscription = data.get("subscription", DEFAULT_SUBSCRIPTION)
    if not isinstance(subscription, str) or "{namespace}" not in subscription:
        raise TriggerConfigError(f"{source.where(None, 'subscription')}: must be a string containing {{namespace}}")
    ledger = data.get("ledger")
    if ledger is not None and not isinstance(ledger, str):
        raise TriggerConfigError(f"{source.where(None, 'ledger')}: must be a path (a string)")
    ledger_path = (path.parent / Path(ledger).expanduser()).resolve() if ledger else None
    return TriggerConfig(path, tuple(triggers), ledger_path, subscription)


def _build_all(source: ConfigSource, tables: list, kinds: Kinds, environ: Mapping[str, str] | None) -> list[Trigger]:
    triggers: list[Trigger] = []
    seen_kinds: dict[str, int] = {}
    for index, data in enumerate(tables):
        kind = data.get("kind") if isinstance(data, dict) else None
        if not isinstance(kind, str):
            raise TriggerConfigError(f'{source.where(index, "kind")}: \'kind\' is missing: add kind = "sql" or "email"')
        factory = kinds.factory(kind)
        if factory is None:
            installed = ", ".join(kinds.kinds())
            raise TriggerConfigError(f"{source.where(index, 'kind')}: unknown kind {kind!r} (installed: {installed})")
        seen_kinds[kind] = seen_kinds.get(kind, 0) + 1
        default_name = kind if seen_kinds[kind] == 1 else f"{kind}-{seen_kinds[kind]}"
        table = TriggerTable(source, index, data, environ, default_name)
        trigger = factory(table)
        table.finish()
        if any(other.name == trigger.name for other in triggers):
            raise table.error(f"two triggers are named {trigger.name!r}: give each a unique name", "name")
        triggers.append(trigger)
    return triggers
