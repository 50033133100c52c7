"""Benchmark: HumanEval pass@1, single shot and with create-script's feedback loop.

    .venv/bin/python benchmarks/codegen.py --data ../shared/data/humaneval/HumanEval.jsonl.gz \
        [--limit N] [--model SPEC] [--max-retries 2] [--max-tokens N] [--timeout 10] [--keep DIR] \
        [--unsafe-no-sandbox]

HumanEval (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): 164 problems, each a
signature with a docstring (``prompt``) and a ``check(candidate)`` function (``test``). Each problem goes
through :func:`code_generation.generate_script` as a user's task would: the model is asked for
``solution.py`` from the prompt alone (``show_tests=False``); the test file is the problem's own ``check``,
run in the sandbox (bubblewrap, the module and the tests in separate sandboxes: generated code cannot read the
test file nor forge its result); on failure the model sees only the trimmed output of that run (the failing assertion),
with aider's "the tests are correct" message, up to ``--max-retries`` times (Self-Debugging, Chen et al.
2023; Reflexion, Shinn et al. 2023).

pass@1_single is the share of problems solved by the first request, which is a single shot (same prompt,
same sampling as a separate single-shot run would use); pass@1_loop the share solved within
``1 + max_retries`` requests. Both in percent. mean_rounds = requests per problem; usd = total cost
(null when the model has no price). Before testing, the prompt's imports and helper functions are put
back in front of the reply's code, and a reply that is only the function body is appended to the prompt,
as HumanEval's own harness does (it runs prompt + completion).

Prints one row per problem, then as the last line one JSON object:
    {"n", "model", "pass@1_single", "pass@1_loop", "mean_rounds", "usd"}

Published reference points (../shared/data/README.md): Reflexion with GPT-4 91% (self-written tests and
feedback); Qwen2.5-Coder-0.5B-Instruct about 62% single shot, 1.5B about 71%. The bundled SmolLM2-135M
proves the harness runs offline; expect it near 0.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from code_generation import Generation, LoopOptions, SandboxLimits, generate_script, limit_reply_tokens
from code_generation.extract import defined_names
from my_llm import PubSubChatMessageHistory, Settings, default_chat_spec, get_chat_model, model_label


@dataclass(frozen=True)
class Outcome:
    """One problem's result."""

    task_id: str
    single: bool
    loop: bool
    rounds: int
    best: str  # the best attempt's "passed/total" and the first clause of its failure reason
    cost_usd: float | None
    seconds: float


def load_problems(path: Path, limit: int | None) -> list[dict]:
    """The first ``limit`` problems (all when None) of a HumanEval ``.jsonl`` or ``.jsonl.gz`` file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        problems = [json.loads(line) for line in lines if line.strip()]
    return problems[:limit] if limit else problems


def check_as_pytest(problem: dict) -> str:
    """The problem's ``check`` as a pytest file importing the candidate from ``solution``."""
    entry = problem["entry_point"]
    return (
        f"from solution import *  # noqa: F403  (check may use the prompt's helpers)\n"
        f"from solution import {entry}\n\n{problem['test']}\n\n\ndef test_check():\n    check({entry})\n"
    )


def task_text(problem: dict) -> str:
    """What the model is asked: complete the function, signature and docstring given."""
    return (
        f"Complete the function `{problem['entry_point']}` so that it does what its docstring says. "
        "Reply with the whole function and the imports it needs; do not repeat the docstring:\n"
        f"```python\n{problem['prompt'].rstrip()}\n```"
    )


def prepared(problem: dict) -> Callable[[str], str]:
    """A ``prepare`` hook for the loop: the reply's code with the prompt's imports and the helper functions
    it lacks in front, or prompt + reply when the reply does not define the entry point (a bare body)."""
    prompt, entry = problem["prompt"], problem["entry_point"]
    tree = ast.parse(prompt)
    imports = [ast.get_source_segment(prompt, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    helpers = {
        node.name: ast.get_source_segment(prompt, node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name != entry
    }

    def prepare(code: str) -> str:
        names = defined_names(code)
        if entry not in names:
            return prompt + code
        missing = [source for name, source in helpers.items() if name not in names]
        return "\n".join([*(line for line in imports if line not in code), *missing, "", code])

    return prepare


def _best(generation: Generation) -> str:
    run = generation.best.run
    reason = (run.reason or ("tests failed" if run.failed else "")).split(":")[0]
    return f"{run.passed}/{run.passed + run.failed} {reason}".strip()


def solve(problem: dict, folder: Path, chat, history, options: LoopOptions) -> Outcome:
    """Run the loop on one problem in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_solution.py").write_text(check_as_pytest(problem), encoding="utf-8")
    started = time.monotonic()
    generation: Generation = generate_script(
        task_text(problem),
        folder / "solution.py",
        folder / "test_solution.py",
        chat,
        history,
        options,
        prepare=prepared(problem),
    )
    return Outcome(
        task_id=problem["task_id"],
        single=generation.attempts[0].run.ok,
        loop=generation.ok,
        rounds=generation.rounds,
        best=_best(generation),
        cost_usd=generation.usage.cost_usd,
        seconds=time.monotonic() - started,
    )


def print_table(console: Console, outcomes: list[Outcome]) -> None:
    table = Table("task", "single", "loop", "rounds", "best attempt", "s", title="HumanEval pass@1")
    for o in outcomes:
        single, loop = ("pass" if ok else "-" for ok in (o.single, o.loop))
        table.add_row(o.task_id, single, loop, str(o.rounds), o.best, f"{o.seconds:.0f}")
    console.print(table)


def summary(outcomes: list[Outcome], model: str) -> dict:
    """The final JSON object (pass@1 in percent)."""
    n = len(outcomes)
    costs = [o.cost_usd for o in outcomes]
    return {
        "n": n,
        "model": model,
        "pass@1_single": round(100 * sum(o.single for o in outcomes) / n, 1) if n else None,
        "pass@1_loop": round(100 * sum(o.loop for o in outcomes) / n, 1) if n else None,
        "mean_rounds": round(sum(o.rounds for o in outcomes) / n, 2) if n else None,
        "usd": None if None in costs else round(sum(costs), 6),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="HumanEval.jsonl.gz")
    parser.add_argument("--limit", type=int, default=None, help="first N problems only")
    parser.add_argument("--model", default=None, help="chat model spec [default: as create-script]")
    parser.add_argument("--max-retries", type=int, default=2, help="retries after the first attempt [2]")
    parser.add_argument("--max-tokens", type=int, default=None, help="reply limit per request [the model's]")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per test run [10]")
    parser.add_argument("--namespace", default="create_script-humaneval", help="memory namespace of the log")
    parser.add_argument("--keep", type=Path, default=None, help="keep each problem's folder (generation_N.txt) here")
    parser.add_argument(
        "--unsafe-no-sandbox", action="store_true", help="run generated code without bubblewrap (no isolation)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    console = Console(stderr=True)
    settings = Settings.from_env()
    spec = args.model or default_chat_spec(settings)
    chat = limit_reply_tokens(get_chat_model(spec, settings), args.max_tokens)
    history = PubSubChatMessageHistory(args.namespace, source="create_script", settings=settings)
    limits = SandboxLimits(timeout_s=args.timeout, cpu_s=max(1, int(args.timeout)))
    options = LoopOptions(
        max_retries=args.max_retries, limits=limits, show_tests=False, isolate=not args.unsafe_no_sandbox
    )
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="humaneval-") as scratch:
        root = args.keep or Path(scratch)
        for problem in load_problems(args.data, args.limit):
            outcome = solve(problem, root / problem["task_id"].replace("/", "_"), chat, history, options)
            outcomes.append(outcome)
            console.print(f"{outcome.task_id}: single {outcome.single}, loop {outcome.loop}, {outcome.rounds} round(s)")
    history.close()
    print_table(Console(), outcomes)
    print(json.dumps(summary(outcomes, model_label(spec))))


if __name__ == "__main__":
    main()
