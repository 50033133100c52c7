"""Benchmark: how often a chat model's PlantUML renders, on the first try and after PlantUML's errors are fed back.

    .venv/bin/python benchmarks/plantuml.py [--model SPEC ...] [--limit N] [--max-retries 2] [--max-tokens 400]

The scenarios are ``benchmarks/data/plantuml_scenarios.jsonl``: 20 written for this benchmark, 4 each of
class, sequence, activity, use-case and component diagrams, one short paragraph each that names the kind.
Each goes through :func:`code_generation.generate_diagram` as a user's request would: the model is asked for
the diagram, the source is rendered by the PlantUML jar in the sandbox (:mod:`code_generation.plantuml`), and
on an error the refused line and PlantUML's message go back to the model, up to ``--max-retries`` times.

Models: ``--model`` (repeatable); by default ``local`` (the bundled SmolLM2-135M-Instruct, in-process through
llama.cpp) and, when ``OPENAI_API_KEY`` is set, the default OpenAI model as well. "Rendered" means PlantUML
accepted the source and drew an SVG; nobody checks here that the picture shows the scenario.

Prints a line per scenario (stderr) and a table per model, then as the last line one JSON object:
    {"n", "max_retries", "models": [{"model", "first_try_pct", "after_retries_pct", "mean_rounds",
     "prompt_tokens", "completion_tokens", "usd", "seconds", "render_seconds", "by_kind": {kind: [first, after]},
     "reasons": {reason: count}}]}
(percentages of the scenarios; seconds = wall time of the whole run for that model; render_seconds = the
mean time of one render; usd null when the model has no price.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from code_generation import DiagramGeneration, DiagramOptions, generate_diagram, limit_reply_tokens, require_plantuml
from my_llm import PubSubChatMessageHistory, Settings, default_chat_spec, get_chat_model, model_label

DATA = Path(__file__).resolve().parent / "data" / "plantuml_scenarios.jsonl"


@dataclass(frozen=True)
class Outcome:
    """One scenario's result with one model."""

    id: str
    kind: str
    generation: DiagramGeneration
    seconds: float


def load_scenarios(path: Path, limit: int | None) -> list[dict]:
    """The first ``limit`` scenarios (all when None): ``{"id", "kind", "scenario"}`` per line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    scenarios = [json.loads(line) for line in lines if line.strip()]
    return scenarios[:limit] if limit else scenarios


def models(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The specs to measure: ``--model``s, else ``local`` plus OpenAI's default model when a key is set."""
    if args.model:
        return args.model
    specs = ["local"]
    if os.environ.get("OPENAI_API_KEY"):
        specs.append(default_chat_spec(settings))
    return specs


def _reason_kind(reason: str) -> str:
    """A reason without its line number, to count alike failures together."""
    return re.sub(r"\d+", "N", reason.split(":")[0]) or "ok"


def summary(spec: str, outcomes: list[Outcome], seconds: float) -> dict:
    """One model's figures for the JSON line."""
    n = len(outcomes)
    usage = [o.generation.usage for o in outcomes]
    costs = [u.cost_usd for u in usage]
    renders = [a.seconds for o in outcomes for a in o.generation.attempts if a.source]
    by_kind: dict[str, list[int]] = {}
    for o in outcomes:
        counts = by_kind.setdefault(o.kind, [0, 0])
        counts[0] += o.generation.first_try
        counts[1] += o.generation.ok
    reasons = Counter(_reason_kind(a.reason) for o in outcomes for a in o.generation.attempts if not a.ok)
    return {
        "model": model_label(spec),
        "first_try_pct": round(100 * sum(o.generation.first_try for o in outcomes) / n, 1) if n else None,
        "after_retries_pct": round(100 * sum(o.generation.ok for o in outcomes) / n, 1) if n else None,
        "mean_rounds": round(sum(o.generation.rounds for o in outcomes) / n, 2) if n else None,
        "prompt_tokens": sum(u.prompt_tokens for u in usage),
        "completion_tokens": sum(u.completion_tokens for u in usage),
        "usd": None if None in costs else round(sum(costs), 6),
        "seconds": round(seconds, 1),
        "render_seconds": round(sum(renders) / len(renders), 2) if renders else None,
        "by_kind": by_kind,
        "reasons": dict(reasons.most_common()),
    }


def print_table(console: Console, spec: str, outcomes: list[Outcome]) -> None:
    table = Table("scenario", "first try", "after retries", "rounds", "last reason", "tokens", "s", title=spec)
    for o in outcomes:
        g = o.generation
        first, after = ("yes" if ok else "-" for ok in (g.first_try, g.ok))
        reason = "" if g.ok else g.attempts[-1].reason[:50]
        table.add_row(o.id, first, after, str(g.rounds), reason, str(g.usage.total_tokens), f"{o.seconds:.0f}")
    console.print(table)


def run_model(spec: str, scenarios: list[dict], args: argparse.Namespace, settings: Settings) -> dict:
    """Run every scenario with one model; print its table; return its summary."""
    console = Console(stderr=True)
    chat = limit_reply_tokens(get_chat_model(spec, settings), args.max_tokens)
    history = PubSubChatMessageHistory(args.namespace, source="diagram", settings=settings)
    options = DiagramOptions(max_retries=args.max_retries)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    try:
        for scenario in scenarios:
            began = time.monotonic()
            generation = generate_diagram(scenario["scenario"], chat, history, options)
            outcomes.append(Outcome(scenario["id"], scenario["kind"], generation, time.monotonic() - began))
            reason = "" if generation.ok else f" ({generation.attempts[-1].reason})"
            console.print(f"{spec} {scenario['id']}: first try {generation.first_try}, "
                          f"rendered {generation.ok} in {generation.rounds} round(s){reason}")  # fmt: skip
    finally:
        history.close()
    seconds = time.monotonic() - started
    print_table(Console(), spec, outcomes)
    return summary(spec, outcomes, seconds)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="chat model spec, repeatable [local, + OpenAI with a key]")
    parser.add_argument("--data", type=Path, default=DATA, help="scenarios (.jsonl)")
    parser.add_argument("--limit", type=int, default=None, help="first N scenarios only")
    parser.add_argument("--max-retries", type=int, default=2, help="retries after the first attempt [2]")
    parser.add_argument("--max-tokens", type=int, default=400, help="reply limit per request [400]")
    parser.add_argument("--namespace", default="diagram-benchmark", help="memory namespace of the log")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    require_plantuml()
    settings = Settings.from_env()
    scenarios = load_scenarios(args.data, args.limit)
    results = [run_model(spec, scenarios, args, settings) for spec in models(args, settings)]
    print(json.dumps({"n": len(scenarios), "max_retries": args.max_retries, "models": results}))


if __name__ == "__main__":
    main()
