"""Read a promptfoo-style YAML config (a subset of promptfoo's format) into plain dataclasses.

Supported, as promptfoo documents it (https://www.promptfoo.dev/docs/configuration/guide/):

- ``description``; ``prompts``: strings, ``file://path`` (a text file, relative to the config) or
  ``{raw|id, label}``; placeholders ``{{var}}`` rendered by Jinja2 (Nunjucks' syntax for what we support;
  the ``dump`` filter is JSON like Nunjucks'); ``providers``: model specs (``openai:gpt-4o-mini``, ``local``,
  any ``init_chat_model`` spec) or ``{id, label, config: {apiBaseUrl}}``; ``tests``: ``description``,
  ``vars`` (a list value expands into one test per value, as in promptfoo; ``file://`` values are read),
  ``assert``, ``options`` (``provider``: the judge); ``defaultTest``: the same keys, merged into every test;
  tests from files (``file://tests.csv``, ``.yaml``, ``.json``, globs): see :mod:`evaluation.testfiles`.
- ``is-json``/``contains-json`` with a JSON schema as ``value`` (a mapping, JSON/YAML text or
  ``file://schema.json``), checked with ``jsonschema``.

Anything else (a key, an assertion type) raises :class:`EvalConfigError` naming it: a config that runs
here runs the same as in promptfoo, never silently less.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import yaml

from evaluation.errors import EvalConfigError
from evaluation.testfiles import FILE_PREFIX, read_tests, resolve_var

TOP_KEYS = {"description", "prompts", "providers", "tests", "defaultTest"}
TEST_KEYS = {"description", "vars", "assert", "options"}
OPTION_KEYS = {"provider"}
ASSERT_KEYS = {"type", "value", "threshold", "provider", "metric", "weight"}
PROVIDER_KEYS = {"id", "label", "config"}
PROVIDER_CONFIG_KEYS = {"apiBaseUrl"}
PROMPT_KEYS = {"id", "raw", "label"}
BASE_TYPES = {
    "equals",
    "contains",
    "icontains",
    "regex",
    "is-json",
    "contains-json",
    "python",
    "similar",
    "llm-rubric",
    "cost",
    "latency",
    "contains-any",
    "contains-all",
    "icontains-any",
    "icontains-all",
    "starts-with",
    "javascript",
}
NEGATABLE = BASE_TYPES - {"llm-rubric", "cost", "latency"}


@dataclass(frozen=True)
class Prompt:
    """A prompt template: ``id`` (its label, or the template itself) and ``raw`` (the Jinja2 text)."""

    id: str
    raw: str

    def render(self, variables: dict[str, Any]) -> str:
        """The prompt with ``variables`` filled in (an unknown variable renders empty, as in Nunjucks)."""
        return _ENV.from_string(self.raw).render(**variables)


@dataclass(frozen=True)
class Provider:
    """A model: ``spec`` for :func:`my_llm.get_chat_model`, ``label`` shown in results, ``base_url`` for an
    OpenAI-compatible server (promptfoo's ``config.apiBaseUrl``) or None for the environment's."""

    spec: str
    label: str
    base_url: str | None = None


@dataclass(frozen=True)
class Assertion:
    """One check on an output: ``type`` (``not-`` prefix allowed where promptfoo allows it), ``value``,
    ``threshold``, ``provider`` (the judge, for ``llm-rubric``), ``metric`` and ``weight``."""

    type: str
    value: Any = None
    threshold: float | None = None
    provider: str | None = None
    metric: str | None = None
    weight: float = 1.0

    @property
    def base_type(self) -> str:
        return self.type.removeprefix("not-")

    @property
    def negated(self) -> bool:
        return self.type.startswith("not-")


@dataclass(frozen=True)
class TestCase:
    """A test: ``vars`` for the prompts, its ``asserts``, ``judge`` (a provider spec or None) and ``index``."""

    index: int
    description: str
    vars: dict[str, Any]
    asserts: tuple[Assertion, ...]
    judge: str | None = None


@dataclass(frozen=True)
class EvalConfig:
    """A whole config: ``name`` (the file's stem), ``description``, prompts, providers and tests."""

    name: str
    description: str
    prompts: tuple[Prompt, ...]
    providers: tuple[Provider, ...]
    tests: tuple[TestCase, ...]
    path: Path | None = field(default=None, compare=False)


_ENV = jinja2.Environment(autoescape=False, keep_trailing_newline=True)
_ENV.filters["dump"] = lambda value, indent=None: json.dumps(value, indent=indent, ensure_ascii=False)
_ENV.filters["load"] = lambda text: json.loads(text) if isinstance(text, str) else text  # promptfoo's JSON.parse
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


def load_config(path: Path) -> EvalConfig:
    """Read and check the YAML config at ``path``.

    Raises:
        EvalConfigError: unreadable or not YAML, an unknown key or assertion type (named), a missing prompt
            file, no prompts or no providers.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise EvalConfigError(f"Cannot read the eval config {path}: {error}") from error
    return parse_config(data, path.parent, name=path.stem, path=path)


def parse_config(data: Any, base: Path, *, name: str = "eval", path: Path | None = None) -> EvalConfig:
    """:func:`load_config` on already-parsed YAML; ``base`` is where ``file://`` paths are relative to."""
    if not isinstance(data, dict):
        raise EvalConfigError("The eval config must be a mapping with prompts, providers and tests.")
    _check_keys(data, TOP_KEYS, "the config")
    prompts = tuple(prompt for item in _as_list(data.get("prompts"), "prompts") for prompt in _prompts(item, base))
    providers = tuple(_provider(item) for item in _as_list(data.get("providers"), "providers"))
    if not prompts or not providers:
        raise EvalConfigError("The eval config needs at least one prompt and one provider.")
    default = data.get("defaultTest") or {}
    _check_test(default, "defaultTest")
    tests = []
    for position, raw in enumerate(read_tests(data.get("tests"), base)):
        where = f"tests[{position}]"
        _check_test(raw, where)
        merged = {**(default.get("vars") or {}), **(raw.get("vars") or {})}
        for variables in _expand_vars({name: resolve_var(value, base, where) for name, value in merged.items()}):
            asserts = [*(default.get("assert") or []), *(raw.get("assert") or [])]
            judge = ((raw.get("options") or {}).get("provider")) or ((default.get("options") or {}).get("provider"))
            tests.append(
                TestCase(
                    index=len(tests),
                    description=str(raw.get("description") or default.get("description") or ""),
                    vars=variables,
                    asserts=tuple(_assertion(item, where, base) for item in asserts),
                    judge=_provider_spec(judge) if judge else None,
                )
            )
    description = str(data.get("description") or name)
    return EvalConfig(name, description, prompts, providers, tuple(tests), path)


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise EvalConfigError(
            f"Unsupported key(s) in {where}: {', '.join(unknown)} (supported: {', '.join(sorted(allowed))})."
        )


def _check_test(raw: Any, where: str) -> None:
    if not isinstance(raw, dict):
        raise EvalConfigError(f"{where} must be a mapping (vars, assert, description, options).")
    _check_keys(raw, TEST_KEYS, where)
    if raw.get("options") is not None:
        _check_keys(raw["options"], OPTION_KEYS, f"{where}.options")
    if raw.get("vars") is not None and not isinstance(raw["vars"], dict):
        raise EvalConfigError(f"{where}.vars must be a mapping of names to values (vars files are not supported).")


def _as_list(value: Any, where: str) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _expand_vars(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """promptfoo's rule: a list value makes one test per element (the product over every list var)."""
    names = list(variables)
    choices = [value if isinstance(value, list) else [value] for value in variables.values()]
    return [dict(zip(names, combination, strict=True)) for combination in itertools.product(*choices)]


def _prompts(item: Any, base: Path) -> list[Prompt]:
    """The prompts of one ``prompts`` entry: one, or several from a text file whose prompts are separated
    by lines of ``---`` (as promptfoo splits them)."""
    label = None
    if isinstance(item, dict):
        _check_keys(item, PROMPT_KEYS, "a prompt")
        label, item = item.get("label"), item.get("raw") or item.get("id")
    if not isinstance(item, str) or not item:
        raise EvalConfigError(f"A prompt must be a string or file://path, not {item!r}.")
    if item.startswith("file://"):
        file = base / item.removeprefix("file://")
        if file.suffix not in ("", ".txt", ".md", ".j2", ".njk"):
            raise EvalConfigError(f"Prompt file {file.name}: only text prompt files are supported (not {file.suffix}).")
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise EvalConfigError(f"Cannot read the prompt file {file}: {error}") from error
        parts = [part.strip("\n") for part in _SEPARATOR.split(text) if part.strip()]
        if len(parts) <= 1:
            return [Prompt(label or item, text)]
        return [Prompt(f"{label or item} #{number}", part) for number, part in enumerate(parts, start=1)]
    return [Prompt(label or item, item)]


def _provider_spec(item: Any) -> str:
    if isinstance(item, dict):
        return _provider(item).spec
    if not isinstance(item, str) or not item:
        raise EvalConfigError(f"A provider must be a model spec such as openai:gpt-4o-mini or local, not {item!r}.")
    return item


def _provider(item: Any) -> Provider:
    if not isinstance(item, dict):
        spec = _provider_spec(item)
        return Provider(spec, spec)
    _check_keys(item, PROVIDER_KEYS, f"provider {item.get('id')!r}")
    config = item.get("config") or {}
    _check_keys(config, PROVIDER_CONFIG_KEYS, f"provider {item.get('id')!r} config")
    spec = _provider_spec(item.get("id"))
    return Provider(spec, str(item.get("label") or spec), config.get("apiBaseUrl"))


def _assertion(item: Any, where: str, folder: Path) -> Assertion:
    if not isinstance(item, dict) or "type" not in item:
        raise EvalConfigError(f"An assertion in {where} must be a mapping with a type, not {item!r}.")
    _check_keys(item, ASSERT_KEYS, f"an assertion in {where}")
    kind = str(item["type"])
    base = kind.removeprefix("not-")
    if base not in BASE_TYPES or (kind != base and base not in NEGATABLE):
        raise EvalConfigError(
            f"Unsupported assertion type {kind!r} in {where} (supported: {', '.join(sorted(BASE_TYPES))}, "
            f"and not- before {', '.join(sorted(NEGATABLE))})."
        )
    value = item.get("value")
    if kind.removeprefix("not-") in ("is-json", "contains-json") and value not in (None, ""):
        value = _json_schema(value, f"{kind} in {where}", folder)
    threshold = item.get("threshold")
    return Assertion(
        type=kind,
        value=value,
        threshold=None if threshold is None else float(threshold),
        provider=_provider_spec(item["provider"]) if item.get("provider") else None,
        metric=item.get("metric"),
        weight=float(item.get("weight", 1.0)),
    )


def _json_schema(value: Any, where: str, folder: Path) -> dict[str, Any]:
    """The JSON schema an ``is-json``/``contains-json`` value gives: a mapping, JSON or YAML text, or
    ``file://schema.json`` (relative to the config).

    Raises:
        EvalConfigError: unreadable, not a mapping, or not a valid schema (``jsonschema``'s check), named.
    """
    if isinstance(value, str) and value.startswith(FILE_PREFIX):
        value = resolve_var(value, folder, where)
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise EvalConfigError(f"The JSON schema of {where} does not parse: {error}") from error
    if not isinstance(value, dict):
        raise EvalConfigError(f"The value of {where} must be a JSON schema (a mapping), not {value!r}.")
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as error:
        raise EvalConfigError(f"The JSON schema of {where} is invalid: {error.message}") from error
    return value
