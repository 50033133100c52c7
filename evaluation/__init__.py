"""``my-llm eval``: promptfoo-style evaluations of prompts x providers x tests, logged as records.

    from evaluation import load_config, Models, ResponseCache, run_eval
    run = run_eval(load_config(Path("promptfooconfig.yaml")), Models(Settings.from_env(), ResponseCache(folder)))

See :mod:`evaluation.config` (the supported subset of promptfoo's format), :mod:`evaluation.assertions`,
:mod:`evaluation.sandbox` (python assertions under bubblewrap), :mod:`evaluation.models` (calls, retries,
cache), :mod:`evaluation.runner` (concurrency and records), :mod:`evaluation.report` (table, JSON, HTML),
:mod:`evaluation.cli` (``eval_command``). Sits above ``my_llm`` beside ``qna`` and ``code_generation``.
"""

from typing import TYPE_CHECKING

from my_llm.lazy import lazy_face

if TYPE_CHECKING:
    from evaluation.assertions import AssertionResult, Observation, check, cosine, parse_grading
    from evaluation.cache import ResponseCache, cache_key
    from evaluation.config import Assertion, EvalConfig, Prompt, Provider, TestCase, load_config, parse_config
    from evaluation.errors import EvalConfigError
    from evaluation.models import Models, is_rate_limit, with_retries
    from evaluation.report import summarise, to_html, to_json, write_output
    from evaluation.runner import CaseResult, EvalRun, eval_namespace, run_eval

# Imported on first use (PEP 562, my_llm.lazy): importing this face costs nothing until a name is used.
_LAZY = {
    "Assertion": "evaluation.config",
    "AssertionResult": "evaluation.assertions",
    "CaseResult": "evaluation.runner",
    "EvalConfig": "evaluation.config",
    "EvalConfigError": "evaluation.errors",
    "EvalRun": "evaluation.runner",
    "Models": "evaluation.models",
    "Observation": "evaluation.assertions",
    "Prompt": "evaluation.config",
    "Provider": "evaluation.config",
    "ResponseCache": "evaluation.cache",
    "TestCase": "evaluation.config",
    "cache_key": "evaluation.cache",
    "check": "evaluation.assertions",
    "cosine": "evaluation.assertions",
    "eval_namespace": "evaluation.runner",
    "is_rate_limit": "evaluation.models",
    "load_config": "evaluation.config",
    "parse_config": "evaluation.config",
    "parse_grading": "evaluation.assertions",
    "run_eval": "evaluation.runner",
    "summarise": "evaluation.report",
    "to_html": "evaluation.report",
    "to_json": "evaluation.report",
    "with_retries": "evaluation.models",
    "write_output": "evaluation.report",
}

__all__ = [
    "Assertion",
    "AssertionResult",
    "CaseResult",
    "EvalConfig",
    "EvalConfigError",
    "EvalRun",
    "Models",
    "Observation",
    "Prompt",
    "Provider",
    "ResponseCache",
    "TestCase",
    "cache_key",
    "check",
    "cosine",
    "eval_namespace",
    "is_rate_limit",
    "load_config",
    "parse_config",
    "parse_grading",
    "run_eval",
    "summarise",
    "to_html",
    "to_json",
    "with_retries",
    "write_output",
]

__getattr__, __dir__ = lazy_face(__name__, _LAZY)
