"""Benchmark: what ``my-llm eval`` adds per case, and how often the judge agrees with exact answers.

    .venv/bin/python benchmarks/eval.py [--cases 200] [--local-cases 8] [--judge local] [--dir DIR]

Prints a table, then one line of JSON. What is measured:

- Overhead: --cases test cases (1 prompt x 1 provider x N tests, three cheap assertions each: contains,
  regex, is-json) against the scripted OpenAI-compatible upstream (tests/test_eval_upstream.py, a real HTTP
  server in a child process that answers at once, or after 50 ms), at concurrency 1 and 8, cache off: wall
  time of ``run_eval`` (render, HTTP call through ChatOpenAI, assertions, two records logged per case), and
  ms per case. Then the same run again from a warm cache (no request).
- The bundled model: --local-cases cases on ``local`` (SmolLM2-135M in-process, one call at a time).
- Judge agreement: a labelled set of 16 (question, answer, expected) triples written here, half of the
  answers right and half wrong; the label is whether the answer contains the expected one (exact). The
  judge (--judge, default ``local``) grades ``llm-rubric: The output gives the answer "<expected>"``;
  agreement = share of cases where its pass equals the label, with its false pass and false fail counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.test_eval_upstream

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from evaluation import Assertion, Models, Observation, ResponseCache, check, parse_config, run_eval  # noqa: E402
from my_llm import Settings  # noqa: E402
from tests.test_eval_upstream import scripted_upstream  # noqa: E402

LABELLED = [  # (question, answer given, expected exact answer)
    ("What is the capital of France?", "The capital of France is Paris.", "Paris"),
    ("What is the capital of France?", "The capital of France is Lyon.", "Paris"),
    ("What is 7 times 8?", "7 times 8 is 56.", "56"),
    ("What is 7 times 8?", "7 times 8 is 54.", "56"),
    ("Which planet is closest to the Sun?", "Mercury is closest to the Sun.", "Mercury"),
    ("Which planet is closest to the Sun?", "Venus is closest to the Sun.", "Mercury"),
    ("Who wrote Hamlet?", "Hamlet was written by William Shakespeare.", "Shakespeare"),
    ("Who wrote Hamlet?", "Hamlet was written by Charles Dickens.", "Shakespeare"),
    ("What is the boiling point of water at sea level in Celsius?", "It boils at 100 degrees.", "100"),
    ("What is the boiling point of water at sea level in Celsius?", "It boils at 90 degrees.", "100"),
    ("What is the chemical symbol for gold?", "The symbol for gold is Au.", "Au"),
    ("What is the chemical symbol for gold?", "The symbol for gold is Ag.", "Au"),
    ("How many legs does a spider have?", "A spider has 8 legs.", "8"),
    ("How many legs does a spider have?", "A spider has 6 legs.", "8"),
    ("What is the largest ocean?", "The Pacific is the largest ocean.", "Pacific"),
    ("What is the largest ocean?", "The Atlantic is the largest ocean.", "Pacific"),
]


def _config(cases: int, provider: dict | str):
    asserts = [{"type": "contains", "value": "answer"}, {"type": "regex", "value": r"\d+"}, {"type": "not-is-json"}]
    data = {
        "description": "bench",
        "prompts": ["Question {{n}}: give the answer with a number."],
        "providers": [provider],
        "tests": [{"vars": {"n": n}, "assert": asserts} for n in range(cases)],
    }
    return parse_config(data, Path("."), name="bench")


def _timed_run(config, models, concurrency):
    started = time.perf_counter()
    run = run_eval(config, models, concurrency=concurrency)
    return time.perf_counter() - started, run


def overhead(folder: Path, cases: int) -> dict:
    result = {}
    rules = [{"match": "SLOWLY", "reply": "the answer is 42", "delay_s": 0.05}]
    with scripted_upstream(folder, rules, default="the answer is 42") as base_url:
        for delay in (0, 50):
            prefix = "SLOWLY " if delay else ""
            provider = {"id": "openai:gpt-4o-mini", "label": "scripted", "config": {"apiBaseUrl": base_url}}
            config = _config(cases, provider)
            config = config.__class__(**{**config.__dict__, "prompts": tuple(
                p.__class__(p.id, prefix + p.raw) for p in config.prompts)})  # fmt: skip
            for concurrency in (1, 8):
                models = Models(Settings.from_env(), ResponseCache(folder / "nocache", enabled=False))
                wall, run = _timed_run(config, models, concurrency)
                assert run.failures == 0, run.results[0]
                result[f"upstream{delay}ms_c{concurrency}_s"] = round(wall, 3)
                result[f"upstream{delay}ms_c{concurrency}_ms_per_case"] = round(1000 * wall / cases, 2)
        cache = ResponseCache(folder / f"cache-{time.time_ns()}")
        _timed_run(config, Models(Settings.from_env(), cache), 8)
        models = Models(Settings.from_env(), cache)
        wall, _ = _timed_run(config, models, 8)
        assert models.requests == 0
        result["cached_c8_s"] = round(wall, 3)
    return result


def local(folder: Path, cases: int) -> dict:
    if not cases:
        return {}
    models = Models(Settings.from_env(), ResponseCache(folder / "local", enabled=False))
    models.chat("local")  # load the model outside the timing
    wall, run = _timed_run(_config(cases, "local"), models, 1)
    return {"local_cases": cases, "local_s": round(wall, 2), "local_s_per_case": round(wall / cases, 2)}


def judge_agreement(folder: Path, judge: str) -> dict:
    models = Models(Settings.from_env(), ResponseCache(folder / "judge", enabled=False), judge=judge)
    agree = false_pass = false_fail = 0
    for question, answer, expected in LABELLED:
        label = expected.lower() in answer.lower()
        rubric = f'The output answers "{question}" with "{expected}".'
        verdict = check(Assertion("llm-rubric", rubric), Observation(answer, {}, question, None, 0.0), models)
        agree += verdict.passed == label
        false_pass += verdict.passed and not label
        false_fail += label and not verdict.passed
    n = len(LABELLED)
    return {"judge": judge, "judge_n": n, "judge_agreement": round(agree / n, 3), "false_pass": false_pass,
            "false_fail": false_fail}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--local-cases", type=int, default=8)
    parser.add_argument("--judge", default="local")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-eval-"))
    os.environ.setdefault("MESSAGE_HISTORY", str(folder / "message_history"))
    os.environ.setdefault("MY_LLM_PUBLISH", "off")
    result = {"cases": args.cases, **overhead(folder, args.cases), **local(folder, args.local_cases)}
    result.update(judge_agreement(folder, args.judge))
    table = Table(title="my-llm eval")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)
    print(json.dumps({"benchmark": "eval", **result}))


if __name__ == "__main__":
    main()
