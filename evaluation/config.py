"""Read a promptfoo-style YAML config (a subset of promptfoo's format) into plain dataclasses.

Supported, as promptfoo documents it (https://www.promptfoo.dev/docs/configuration/guide/):

- ``description``; ``prompts``: strings, ``file://path`` (a text file, relative to the config) or
  ``{raw|id, label}``; placeholders ``{{var}}`` rendered by Jinja2 (Nunjucks' syntax for what we support;
  the ``dump`` filter is JSON like Nunjucks'); ``providers``: model specs (``openai:gpt-4o-mini``, ``local``,
  any ``init_chat_model`` spec) or ``{id, label, config: {apiBaseUrl}}``; ``tests``: ``description``,
  ``vars`` (a list value expands into one test per value, as in promptfoo), ``assert``, ``options``
  (``provider``: the judge); ``defaultTest``: the same keys, merged into every test.

Anything else (a key, an assertion type, ``file://`` tests) raises :class:`EvalConfigError` naming it:
a config that runs here runs the same as in promptfoo, never silently less.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from evaluation.errors import EvalConfigError

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
}
NEGATABLE = {"equals", "contains", "icontains", "regex", "is-json", "contains-json", "python", "similar"}


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
    prompts = tuple(_prompt(item, base) for item in _as_list(data.get("prompts"), "prompts"))
    providers = tuple(_provider(item) for item in _as_list(data.get("providers"), "providers"))
    if not prompts or not providers:
        raise EvalConfigError("The eval config needs at least one prompt and one provider.")
    default = data.get("defaultTest") or {}
    _check_test(default, "defaultTest")
    raw_tests = data.get("tests") or [{}]
    if isinstance(raw_tests, str):
        raise EvalConfigError(f"tests: {raw_tests!r} (tests from a file) is not supported; list the tests inline.")
    tests = []
    for position, raw in enumerate(_as_list(raw_tests, "tests")):
        _check_test(raw, f"tests[{position}]")
        for variables in _expand_vars({**(default.get("vars") or {}), **(raw.get("vars") or {})}):
            asserts = [*(default.get("assert") or []), *(raw.get("assert") or [])]
            where = f"tests[{position}]"
            judge = ((raw.get("options") or {}).get("provider")) or ((default.get("options") or {}).get("provider"))
            tests.append(
                TestCase(
                    index=len(tests),
                    description=str(raw.get("description") or default.get("description") or ""),
                    vars=variables,
                    asserts=tuple(_assertion(item, where) for item in asserts),
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


def _prompt(item: Any, base: Path) -> Prompt:
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
        return Prompt(label or item, text)
    return Prompt(label or item, item)


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


def _assertion(item: Any, where: str) -> Assertion:
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
    if base in ("is-json", "contains-json") and item.get("value") is not None:
        raise EvalConfigError(f"{kind} with a JSON schema value (in {where}) is not supported; drop the value.")
    threshold = item.get("threshold")
    return Assertion(
        type=kind,
        value=item.get("value"),
        threshold=None if threshold is None else float(threshold),
        provider=_provider_spec(item["provider"]) if item.get("provider") else None,
        metric=item.get("metric"),
        weight=float(item.get("weight", 1.0)),
    )
