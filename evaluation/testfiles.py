"""Tests from files, read the way promptfoo reads them (https://www.promptfoo.dev/docs/configuration/test-cases):

- ``tests: file://tests.csv`` (or ``.yaml``/``.yml``/``.json``, a glob such as ``file://cases/*.yaml``, or a
  list mixing such files and inline tests). A YAML/JSON file holds a list of tests (or one test).
- CSV (promptfoo's ``src/csv.ts``): every column is a var, except ``__expected``, ``__expected1``, ... (one
  assertion each, in promptfoo's shorthand ``[not-]type[(threshold)][:value]``; text that is no assertion
  is ``equals``), ``__description`` and ``__metric``. Other ``__`` columns (``__prefix``, ``__suffix``,
  ``__threshold``, ``__providerOutput``) raise :class:`EvalConfigError` naming them.
- A var whose value is ``file://path`` is that file: text as is, ``.json``/``.yaml``/``.yml`` parsed;
  scripts (``.py``, ``.js``, ...) are refused, as they would run code on load.

Paths are relative to the config's folder. One deliberate difference: the shorthand's value loses its
leading spaces (``contains: Hello`` checks ``Hello``, as promptfoo's docs write it).
"""

from __future__ import annotations

import csv
import glob
import json
import re
from pathlib import Path
from typing import Any

import yaml

from evaluation.errors import EvalConfigError

FILE_PREFIX = "file://"
CSV_DESCRIPTION, CSV_METRIC = "__description", "__metric"
SCRIPT_SUFFIXES = {".py", ".js", ".ts", ".mjs", ".cjs", ".rb", ".sh"}
# promptfoo's assertion types (its BaseAssertionTypes), so that shorthand naming one we do not support is an
# error naming it rather than a silent ``equals``.
PROMPTFOO_TYPES = (
    "answer-relevance bleu classifier contains contains-all contains-any contains-html contains-json "
    "contains-sql contains-xml context-faithfulness context-recall context-relevance conversation-relevance "
    "cost equals factuality finish-reason g-eval gleu guardrails icontains icontains-all icontains-any "
    "is-html is-json is-refusal is-sql is-valid-function-call is-valid-openai-function-call "
    "is-valid-openai-tools-call is-xml javascript latency levenshtein llm-rubric max-score meteor "
    "model-graded-closedqa model-graded-factuality moderation perplexity perplexity-score pi python regex "
    "rouge-n ruby select-best similar starts-with trace-span-count trace-span-duration webhook word-count"
).split()
_SHORTHAND = re.compile(
    r"^(not-)?(" + "|".join(sorted(map(re.escape, PROMPTFOO_TYPES), key=len, reverse=True)) + r")"
    r"(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$"
)
_SPLIT_TYPES = {"contains-all", "contains-any", "icontains-all", "icontains-any"}
_THRESHOLD_TYPES = {"similar", "cost", "latency", "levenshtein", "rouge-n", "starts-with", "answer-relevance"}


def read_tests(value: Any, base: Path) -> list[Any]:
    """The raw tests of a config's ``tests`` value: inline mappings kept, ``file://`` entries read.

    Raises:
        EvalConfigError: a file that is missing, unreadable, of an unsupported kind or badly shaped.
    """
    if value is None:
        return [{}]
    tests: list[Any] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and item.startswith(FILE_PREFIX):
            for path in _expand(item, base):
                tests.extend(_tests_in(path))
        elif isinstance(item, str):
            raise EvalConfigError(f"tests: {item!r} is neither a test mapping nor a file://path.")
        else:
            tests.append(item)
    return tests


def _expand(reference: str, base: Path) -> list[Path]:
    pattern = str(base / reference.removeprefix(FILE_PREFIX))
    if glob.has_magic(pattern):
        found = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        if not found:
            raise EvalConfigError(f"tests: {reference} matches no file (looked for {pattern}).")
        return found
    return [Path(pattern)]


def _tests_in(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise EvalConfigError(f"Cannot read the tests file {path}: {error}") from error
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return csv_tests(text, where=path.name)
    if suffix in (".yaml", ".yml", ".json"):
        try:
            data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as error:
            raise EvalConfigError(f"The tests file {path} does not parse: {error}") from error
        return data if isinstance(data, list) else [data]
    raise EvalConfigError(f"Tests file {path.name}: only .csv, .yaml, .yml and .json test files are supported.")


def csv_tests(text: str, where: str = "CSV") -> list[dict[str, Any]]:
    """Tests from CSV text (header row = var names and ``__`` columns), one per row, as raw mappings.

    Raises:
        EvalConfigError: an unsupported ``__`` column (named), a shorthand of an unsupported kind.
    """
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    special = [c for c in columns if c.startswith("__")]
    unsupported = [c for c in special if not c.startswith("__expected") and c not in (CSV_DESCRIPTION, CSV_METRIC)]
    if unsupported:
        raise EvalConfigError(
            f"{where}: unsupported column(s) {', '.join(unsupported)} (supported: vars, __expected[N], "
            "__description, __metric)."
        )
    tests = []
    for number, row in enumerate(reader, start=2):
        variables = {k: v for k, v in row.items() if k is not None and not k.startswith("__")}
        metric = row.get(CSV_METRIC) or None
        asserts = []
        for column in (c for c in columns if c.startswith("__expected")):
            cell = row.get(column) or ""
            if cell.strip():
                asserts.append({**assertion_from_string(cell, f"{where} line {number}"),
                                **({"metric": metric} if metric else {})})  # fmt: skip
        test: dict[str, Any] = {"vars": variables, "assert": asserts}
        if row.get(CSV_DESCRIPTION):
            test["description"] = row[CSV_DESCRIPTION]
        tests.append(test)
    return tests


def assertion_from_string(expected: str, where: str = "CSV") -> dict[str, Any]:
    """promptfoo's assertion shorthand (``src/csv.ts``) as a raw assertion mapping: ``contains: x``,
    ``not-icontains:x``, ``similar(0.9):x``, ``contains-any: a, b``, ``javascript: expr``, ``fn:``/``eval:``
    (javascript), ``grade:`` (llm-rubric), ``python: expr``; anything else is ``equals`` the whole text.

    Raises:
        EvalConfigError: a ``file://`` script assertion (not supported), named with ``where``.
    """
    for prefix, kind in (("javascript:", "javascript"), ("fn:", "javascript"), ("eval:", "javascript"),
                         ("grade:", "llm-rubric"), ("python:", "python")):  # fmt: skip
        if expected.startswith(prefix):
            return {"type": kind, "value": expected[len(prefix) :].strip()}
    if expected.startswith(FILE_PREFIX):
        raise EvalConfigError(f"{where}: assertions from files ({expected}) are not supported; write them inline.")
    match = _SHORTHAND.match(expected)
    if not match:
        return {"type": "equals", "value": expected}
    negation, kind, threshold, value = match.groups()
    value = (value or "").lstrip()
    raw: dict[str, Any] = {"type": f"{negation or ''}{kind}"}
    if kind in _SPLIT_TYPES:
        raw["value"] = [part.strip() for part in value.split(",")]
    elif value or kind not in ("is-json", "contains-json", "cost", "latency"):
        raw["value"] = value
    if kind in _THRESHOLD_TYPES and kind not in ("cost", "latency"):
        raw["threshold"] = float(threshold) if threshold else (0.8 if kind == "similar" else 0.75)
    elif threshold:
        raw["threshold"] = float(threshold)
    return raw


def resolve_var(value: Any, base: Path, where: str) -> Any:
    """A var's value, with ``file://path`` replaced by the file (text, or parsed JSON/YAML); lists
    element-wise.

    Raises:
        EvalConfigError: a missing file, or a script (it would run code on load), named with ``where``.
    """
    if isinstance(value, list):
        return [resolve_var(item, base, where) for item in value]
    if not isinstance(value, str) or not value.startswith(FILE_PREFIX):
        return value
    path = base / value.removeprefix(FILE_PREFIX)
    if path.suffix.lower() in SCRIPT_SUFFIXES:
        raise EvalConfigError(f"{where}: var file {path.name} is a script; only data files are supported as vars.")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise EvalConfigError(f"{where}: cannot read the var file {path}: {error}") from error
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise EvalConfigError(f"{where}: the var file {path} does not parse: {error}") from error
    return text
