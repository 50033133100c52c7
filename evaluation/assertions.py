"""Check one output against one assertion; every check gives an :class:`AssertionResult` (pass, score, reason).

Semantics follow promptfoo's docs (https://www.promptfoo.dev/docs/configuration/expected-outputs/): ``equals``
(exact, or equal JSON when the value is not a string), ``contains``/``icontains`` (substring),
``contains-any``/``contains-all`` and their ``icontains-`` forms (a list, or comma-separated text),
``starts-with``, ``regex``, ``is-json``, ``contains-json`` (some JSON object or array inside the text; with a
JSON schema as value, one that validates), ``python`` and ``javascript`` (see :mod:`evaluation.sandbox`),
``similar`` (cosine of embeddings >= threshold, default 0.75), ``llm-rubric`` (a judge model answers ``{"pass",
"score", "reason"}``), ``cost`` (USD <= threshold) and ``latency`` (milliseconds <= threshold). ``not-`` inverts
the checks promptfoo lets you invert.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema

from evaluation.config import Assertion
from evaluation.sandbox import run_javascript_assertion, run_python_assertion
from my_llm import ModelCallError

SIMILAR_DEFAULT = 0.75
RUBRIC_PROMPT = """You are grading output according to a user-specified rubric. If the statement in the rubric \
is true, then the output passes the test. Respond only with a JSON object of this shape:
{{"reason": "<one sentence>", "pass": true or false, "score": <number from 0.0 to 1.0>}}

<Output>
{output}
</Output>
<Rubric>
{rubric}
</Rubric>"""


@dataclass(frozen=True)
class AssertionResult:
    """What one assertion said: its ``type``, ``passed``, ``score`` (0..1), ``reason`` (why it failed)."""

    type: str
    passed: bool
    score: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "pass": self.passed, "score": self.score, "reason": self.reason}


class Graders(Protocol):
    """What model-backed assertions need: embeddings for ``similar``, a judge for ``llm-rubric``."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    def judge(self, spec: str | None, prompt: str) -> str: ...


@dataclass(frozen=True)
class Observation:
    """One output and what it is checked with: vars, the rendered prompt, cost in USD (None: unknown),
    latency in ms."""

    output: str
    vars: dict[str, Any]
    prompt: str
    cost_usd: float | None
    latency_ms: float


def check(assertion: Assertion, seen: Observation, graders: Graders, judge: str | None = None) -> AssertionResult:
    """``assertion`` over ``seen``; ``judge`` is the test's judge spec (the assertion's own wins)."""
    checker = _CHECKS[assertion.base_type]
    try:
        passed, score, reason = checker(assertion, seen, graders, assertion.provider or judge)
    except (_Failed, ModelCallError) as failed:  # a judge or embedder that failed fails the assertion
        passed, score, reason = False, 0.0, str(failed)
    if assertion.negated:
        passed, score = not passed, 1.0 - score
        reason = "" if passed else f"expected not to hold: {assertion.base_type} {_short(assertion.value)}"
    return AssertionResult(assertion.type, passed, round(score, 4), "" if passed else reason)


class _Failed(Exception):
    """An assertion that could not be evaluated (bad value, sandbox error): it fails with this reason."""


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _verdict(passed: bool, reason: str) -> tuple[bool, float, str]:
    return passed, 1.0 if passed else 0.0, reason


def _text_value(assertion: Assertion, seen: Observation) -> str:
    if assertion.value is None:
        raise _Failed(f"{assertion.type} needs a value")
    return str(assertion.value)


def _equals(assertion, seen, graders, judge):
    if isinstance(assertion.value, (dict, list)):
        try:
            return _verdict(json.loads(seen.output) == assertion.value, "output is not that JSON value")
        except ValueError:
            return _verdict(False, "output is not JSON")
    expected = _text_value(assertion, seen)
    return _verdict(seen.output == expected, f"expected exactly {_short(expected)!r}")


def _contains(assertion, seen, graders, judge):
    expected = _text_value(assertion, seen)
    return _verdict(expected in seen.output, f"does not contain {_short(expected)!r}")


def _icontains(assertion, seen, graders, judge):
    expected = _text_value(assertion, seen)
    return _verdict(expected.lower() in seen.output.lower(), f"does not contain {_short(expected)!r} (any case)")


def _regex(assertion, seen, graders, judge):
    pattern = _text_value(assertion, seen)
    try:
        found = re.search(pattern, seen.output) is not None
    except re.error as error:
        raise _Failed(f"bad regex {pattern!r}: {error}") from error
    return _verdict(found, f"does not match /{_short(pattern)}/")


def _terms(assertion: Assertion) -> list[str]:
    value = assertion.value
    if value is None:
        raise _Failed(f"{assertion.type} needs a value")
    terms = [str(v) for v in value] if isinstance(value, list) else [t.strip() for t in str(value).split(",")]
    return [term for term in terms if term]


def _contains_any(assertion, seen, graders, judge, fold=False):
    text = seen.output.lower() if fold else seen.output
    terms = _terms(assertion)
    found = any((t.lower() if fold else t) in text for t in terms)
    return _verdict(found, f"contains none of {_short(terms)}")


def _contains_all(assertion, seen, graders, judge, fold=False):
    text = seen.output.lower() if fold else seen.output
    missing = [t for t in _terms(assertion) if (t.lower() if fold else t) not in text]
    return _verdict(not missing, f"does not contain {_short(missing)}")


def _starts_with(assertion, seen, graders, judge):
    expected = _text_value(assertion, seen)
    return _verdict(seen.output.startswith(expected), f"does not start with {_short(expected)!r}")


def _schema_error(value: Any, schema: dict[str, Any]) -> str:
    """The first way ``value`` breaks ``schema`` (its JSON path and message), or "" when it validates."""
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    return "" if error is None else f"at {error.json_path}: {error.message}"


def _is_json(assertion, seen, graders, judge):
    try:
        value = json.loads(seen.output)
    except ValueError:
        return _verdict(False, "output is not valid JSON")
    if isinstance(assertion.value, dict):
        problem = _schema_error(value, assertion.value)
        return _verdict(not problem, f"the JSON does not match the schema {problem}")
    return _verdict(True, "")


def _json_objects(text: str) -> list[Any]:
    """Every JSON object or array that starts at a ``{`` or ``[`` of ``text`` (promptfoo's contains-json)."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while True:
        starts = [index for index in (text.find("{", position), text.find("[", position)) if index >= 0]
        if not starts:
            return found
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
            found.append(value)
            position = end
        except ValueError:
            position = start + 1


def _contains_json(assertion, seen, graders, judge):
    found = _json_objects(seen.output)
    if not found:
        return _verdict(False, "output contains no JSON object or array")
    if isinstance(assertion.value, dict):
        problems = [_schema_error(value, assertion.value) for value in found]
        return _verdict("" in problems, f"no JSON in the output matches the schema ({problems[0]})")
    return _verdict(True, "")


def _scripted(language: str, runner: Callable[..., tuple[Any, str]]):
    """A ``python`` or ``javascript`` check: run the value in the sandbox and read what it returned."""

    def check_script(assertion, seen, graders, judge):
        code = _text_value(assertion, seen)
        value, error = runner(code, seen.output, {"vars": seen.vars, "prompt": seen.prompt})
        if error:
            raise _Failed(error)
        if isinstance(value, dict):
            score = float(value.get("score", 1.0 if value.get("pass") else 0.0))
            passed = bool(value["pass"]) if "pass" in value else _score_passes(score, assertion.threshold)
            return passed, score, str(value.get("reason") or f"{language} returned {_short(value)}")
        if isinstance(value, bool):
            return _verdict(value, f"{language} returned false: {_short(code)}")
        if isinstance(value, (int, float)):
            passed = _score_passes(float(value), assertion.threshold)
            return passed, float(value), f"{language} score {value} below threshold"
        raise _Failed(f"{language} returned {_short(value)}, not a bool, number or object")

    return check_script


def _score_passes(score: float, threshold: float | None) -> bool:
    return score >= threshold if threshold is not None else score > 0


def cosine(left: Sequence[float], right: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when one is all zeros)."""
    dot = sum(a * b for a, b in zip(left, right, strict=True))
    norms = math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right))
    return dot / norms if norms else 0.0


def _similar(assertion, seen, graders, judge):
    expected = assertion.value if isinstance(assertion.value, list) else [_text_value(assertion, seen)]
    threshold = SIMILAR_DEFAULT if assertion.threshold is None else assertion.threshold
    vectors = graders.embed([seen.output, *map(str, expected)])
    best = max(cosine(vectors[0], vector) for vector in vectors[1:])
    return best >= threshold, max(0.0, best), f"similarity {best:.3f} < {threshold}"


def parse_grading(reply: str) -> tuple[bool, float, str]:
    """A judge's reply as ``(pass, score, reason)``: the first JSON object with ``pass``, else a bare
    ``pass``/``fail``/``true``/``false`` word (small models seldom write clean JSON)."""
    for value in _json_objects(reply):
        if isinstance(value, dict) and "pass" in value:
            passed = value["pass"] in (True, "true", "True", "yes", 1)
            score = value.get("score", 1.0 if passed else 0.0)
            try:
                score = float(score)
            except (TypeError, ValueError):
                score = 1.0 if passed else 0.0
            return passed, score, str(value.get("reason") or "")
    words = re.findall(r"\b(pass|fail|true|false|yes|no)\b", reply.lower())
    if not words:
        return False, 0.0, f"the judge's reply was not a grading: {_short(reply)!r}"
    passed = words[0] in ("pass", "true", "yes")
    return passed, 1.0 if passed else 0.0, reply.strip()[:200]


def _llm_rubric(assertion, seen, graders, judge):
    rubric = _text_value(assertion, seen)
    passed, score, reason = parse_grading(graders.judge(judge, RUBRIC_PROMPT.format(output=seen.output, rubric=rubric)))
    if assertion.threshold is not None:
        passed = passed and score >= assertion.threshold
    return passed, score, reason or f"the judge says the rubric does not hold: {_short(rubric)}"


def _cost(assertion, seen, graders, judge):
    if assertion.threshold is None:
        raise _Failed("cost needs a threshold (USD)")
    if seen.cost_usd is None:
        return _verdict(False, "the cost is unknown (no price for this model)")
    return _verdict(seen.cost_usd <= assertion.threshold, f"cost ${seen.cost_usd:.6f} > ${assertion.threshold}")


def _latency(assertion, seen, graders, judge):
    if assertion.threshold is None:
        raise _Failed("latency needs a threshold (ms)")
    return _verdict(seen.latency_ms <= assertion.threshold, f"latency {seen.latency_ms:.0f} ms > {assertion.threshold}")


_CHECKS: dict[str, Callable[..., tuple[bool, float, str]]] = {
    "equals": _equals,
    "contains": _contains,
    "icontains": _icontains,
    "regex": _regex,
    "is-json": _is_json,
    "contains-json": _contains_json,
    "python": _scripted("python", run_python_assertion),
    "javascript": _scripted("javascript", run_javascript_assertion),
    "contains-any": _contains_any,
    "contains-all": _contains_all,
    "icontains-any": lambda *args: _contains_any(*args, fold=True),
    "icontains-all": lambda *args: _contains_all(*args, fold=True),
    "starts-with": _starts_with,
    "similar": _similar,
    "llm-rubric": _llm_rubric,
    "cost": _cost,
    "latency": _latency,
}
