"""Run every prompt x provider x test of a config with bounded concurrency; log each call as records.

Workers (a thread pool of ``concurrency``) render the prompt, ask the provider (through the cache, with
retries on rate limits) and check the assertions; the calling thread collects results in completion order,
logs them and reports progress, so the log is written by one thread only.

Each call becomes two records in the namespace ``eval-<config name>`` (session: the run id): the prompt
(``human``) and the output (``ai``, with model and usage). Both carry ``metadata.eval``:
``{"run_id", "prompt_id", "provider", "test_index", "test_description", "vars", "latency_ms", "pass", "cached",
"assertions": [{"type", "pass", "score", "reason"}]}``, so the results land in BigQuery with everything else
(and the server's eval page can rebuild the report from the log alone).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from evaluation.assertions import AssertionResult, Observation, check
from evaluation.config import EvalConfig, Prompt, Provider, TestCase
from evaluation.models import Models
from my_llm import ChatHistory, MyLLMError, namespace_from_name


@dataclass(frozen=True)
class CaseResult:
    """One prompt x provider x test: the rendered ``prompt``, the ``response`` dict (see
    :class:`evaluation.models.Models`), the assertion results, and ``error`` when the call failed."""

    prompt: Prompt
    provider: Provider
    test: TestCase
    rendered: str
    response: dict[str, Any]
    assertions: tuple[AssertionResult, ...]
    error: str = ""

    @property
    def passed(self) -> bool:
        """True when the call worked and every assertion passed."""
        return not self.error and all(result.passed for result in self.assertions)

    def metadata(self, run_id: str) -> dict[str, Any]:
        """The record's ``metadata.eval``."""
        return {
            "run_id": run_id,
            "prompt_id": self.prompt.id,
            "provider": self.provider.label,
            "test_index": self.test.index,
            "test_description": self.test.description or None,
            "vars": self.test.vars,
            "latency_ms": self.response.get("latency_ms"),
            "pass": self.passed,
            "cached": bool(self.response.get("cached")),
            "error": self.error or None,
            "assertions": [result.to_dict() for result in self.assertions],
        }


@dataclass
class EvalRun:
    """A finished run: its ``run_id``, ``config``, and ``results`` in prompt x provider x test order."""

    run_id: str
    config: EvalConfig
    results: list[CaseResult] = field(default_factory=list)

    @property
    def failures(self) -> int:
        """How many cases failed (an assertion, or the call)."""
        return sum(not result.passed for result in self.results)


def eval_namespace(config: EvalConfig) -> str:
    """``eval-<config name>``, made a valid namespace."""
    return namespace_from_name(f"eval-{config.name}")


def run_case(models: Models, prompt: Prompt, provider: Provider, test: TestCase) -> CaseResult:
    """Render, call, check one case; a failed call is a failed case (its error kept), never an exception."""
    rendered = prompt.render(test.vars)
    try:
        response = models.complete(provider.spec, rendered, test.vars, provider.base_url)
    except MyLLMError as error:
        return CaseResult(prompt, provider, test, rendered, {}, (), error=str(error))
    seen = Observation(
        response["output"], test.vars, rendered, response.get("cost_usd"), float(response.get("latency_ms") or 0)
    )
    results = tuple(check(assertion, seen, models, test.judge) for assertion in test.asserts)
    return CaseResult(prompt, provider, test, rendered, response, results)


def run_eval(
    config: EvalConfig,
    models: Models,
    *,
    concurrency: int = 4,
    history: ChatHistory | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> EvalRun:
    """Run every case of ``config``; log each to ``history`` (default: a :class:`my_llm.ChatHistory` of
    namespace ``eval-<name>``, session = run id, source ``live``) and call ``on_result`` as each finishes.

    Raises:
        MyLLMError: a provider cannot be built (unknown spec, missing package) or the log cannot be written.
    """
    run_id = uuid.uuid4().hex
    for provider in config.providers:  # fail fast on a spec that cannot be built, before any call
        models.chat(provider.spec, provider.base_url)
    history = history or ChatHistory(eval_namespace(config), session_id=run_id)
    cases = [(p, v, t) for p in config.prompts for v in config.providers for t in config.tests]
    run = EvalRun(run_id, config)
    done: dict[int, CaseResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(run_case, models, *case): position for position, case in enumerate(cases)}
        for future in as_completed(futures):
            result = future.result()
            done[futures[future]] = result
            _log(history, result, run_id)
            if on_result is not None:
                on_result(result)
    run.results = [done[position] for position in range(len(cases))]
    history.flush()
    return run


def _log(history: ChatHistory, result: CaseResult, run_id: str) -> None:
    metadata = {"eval": result.metadata(run_id)}
    usage = None
    if result.response:
        usage = {key: result.response.get(key) for key in ("input_tokens", "output_tokens", "cost_usd")}
    records = [
        history.new_record("human", result.rendered, metadata=metadata),
        history.new_record(
            "ai",
            result.response.get("output", "") if not result.error else f"[error] {result.error}",
            model=result.response.get("model"),
            usage=usage,
            metadata=metadata,
        ),
    ]
    history.add_records(records)
