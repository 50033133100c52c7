"""``my-llm eval``: promptfoo-style evaluations of prompts x providers x tests, logged as records.

    from evaluation import load_config, Models, ResponseCache, run_eval
    run = run_eval(load_config(Path("promptfooconfig.yaml")), Models(Settings.from_env(), ResponseCache(folder)))

See :mod:`evaluation.config` (the supported subset of promptfoo's format), :mod:`evaluation.assertions`,
:mod:`evaluation.sandbox` (python assertions under bubblewrap), :mod:`evaluation.models` (calls, retries,
cache), :mod:`evaluation.runner` (concurrency and records), :mod:`evaluation.report` (table, JSON, HTML),
:mod:`evaluation.cli` (``eval_command``). Sits above ``my_llm`` beside ``qna`` and ``code_generation``.
"""

from evaluation.assertions import AssertionResult, Observation, check, cosine, parse_grading
from evaluation.cache import ResponseCache, cache_key
from evaluation.config import Assertion, EvalConfig, Prompt, Provider, TestCase, load_config, parse_config
from evaluation.errors import EvalConfigError
from evaluation.models import Models, is_rate_limit, with_retries
from evaluation.report import summarise, to_html, to_json, write_output
from evaluation.runner import CaseResult, EvalRun, eval_namespace, run_eval

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
