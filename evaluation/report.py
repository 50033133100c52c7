"""Results of a run: a summary per prompt x provider, a rich table, a JSON document and a self-contained
HTML page (outputs side by side per test, failing assertions highlighted; no script, no external file)."""

from __future__ import annotations

import html
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.assertions import AssertionResult
from evaluation.config import EvalConfig, Prompt, Provider, TestCase
from evaluation.runner import CaseResult, EvalRun

if TYPE_CHECKING:
    from my_llm import Record


@dataclass(frozen=True)
class Summary:
    """One prompt x provider: cases, passed, tokens (in + out, None when unknown), USD (None when
    unknown), p50 latency in ms, cached replies."""

    prompt_id: str
    provider: str
    cases: int
    passed: int
    tokens: int | None
    cost_usd: float | None
    p50_latency_ms: float | None
    cached: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0


def summarise(run: EvalRun) -> list[Summary]:
    """A :class:`Summary` per prompt x provider, in the config's order."""
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for result in run.results:
        groups.setdefault((result.prompt.id, result.provider.label), []).append(result)
    summaries = []
    for (prompt_id, provider), results in groups.items():
        responses = [result.response for result in results if result.response]
        tokens = [(r.get("input_tokens"), r.get("output_tokens")) for r in responses]
        known_tokens = all(a is not None and b is not None for a, b in tokens)
        costs = [r.get("cost_usd") for r in responses]
        latencies = [float(r["latency_ms"]) for r in responses if r.get("latency_ms") is not None]
        summaries.append(
            Summary(
                prompt_id,
                provider,
                len(results),
                sum(result.passed for result in results),
                sum(a + b for a, b in tokens) if known_tokens else None,
                round(sum(costs), 8) if costs and None not in costs else None,
                round(statistics.median(latencies), 1) if latencies else None,
                sum(bool(r.get("cached")) for r in responses),
            )
        )
    return summaries


def render_table(run: EvalRun):
    """A ``rich.table.Table`` of the summaries (unknown tokens or cost show as ``unknown``)."""
    from rich.table import Table

    table = Table(title=f"{run.config.description} (run {run.run_id[:8]})")
    for column in ("prompt", "provider", "pass rate", "tokens", "USD", "p50 ms", "cached"):
        table.add_column(column, overflow="fold")
    for s in summarise(run):
        rate = f"{s.passed}/{s.cases} ({s.pass_rate:.0%})"
        table.add_row(
            _clip(s.prompt_id, 50),
            s.provider,
            f"[green]{rate}[/]" if s.passed == s.cases else f"[red]{rate}[/]",
            "unknown" if s.tokens is None else str(s.tokens),
            "unknown" if s.cost_usd is None else f"{s.cost_usd:.6f}",
            "-" if s.p50_latency_ms is None else f"{s.p50_latency_ms:.0f}",
            str(s.cached),
        )
    return table


def to_json(run: EvalRun) -> dict[str, Any]:
    """The run as JSON-ready data: ``run_id``, ``config``, ``summary`` (one per prompt x provider),
    ``results`` (one per case: prompt, provider, test index and vars, output, usage, assertions, pass)."""
    return {
        "run_id": run.run_id,
        "config": {"name": run.config.name, "description": run.config.description},
        "failures": run.failures,
        "summary": [{**s.__dict__, "pass_rate": s.pass_rate} for s in summarise(run)],
        "results": [
            {
                **result.metadata(run.run_id),
                "description": result.test.description,
                "vars": result.test.vars,
                "prompt": result.rendered,
                "response": result.response,
            }
            for result in run.results
        ],
    }


def write_output(run: EvalRun, path: Path) -> None:
    """Write ``path`` as JSON (``.json``) or HTML (``.html``/``.htm``).

    Raises:
        ValueError: another suffix.
    """
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps(to_json(run), indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    elif path.suffix in (".html", ".htm"):
        path.write_text(to_html(run), encoding="utf-8")
    else:
        raise ValueError(f"--output must end in .json or .html, not {path.name!r}")


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:.4em;vertical-align:top;text-align:left}pre{white-space:pre-wrap;margin:0;
max-height:24em;overflow:auto}.pass{background:#eaffea}.fail{background:#ffecec}.bad{color:#b00;font-weight:bold}
.ok{color:#070}small{color:#555}"""


def to_html(run: EvalRun) -> str:
    """A self-contained HTML page: the summary, then one row per test with one column per prompt x
    provider (output, then each assertion; failing ones in bold red with their reason)."""
    esc = html.escape
    columns = [(p.id, v.label) for p in run.config.prompts for v in run.config.providers]
    by_cell = {(r.test.index, r.prompt.id, r.provider.label): r for r in run.results}
    head = "".join(f"<th>{esc(_clip(p, 80))}<br><small>{esc(v)}</small></th>" for p, v in columns)
    rows = []
    for test in run.config.tests:
        cells = []
        for prompt_id, provider in columns:
            result = by_cell.get((test.index, prompt_id, provider))
            if result is None:
                cells.append("<td></td>")
                continue
            checks = "".join(
                f'<li class="{"ok" if a.passed else "bad"}">{esc(a.type)} {a.score:g}'
                f"{'' if a.passed else ': ' + esc(a.reason)}</li>"
                for a in result.assertions
            )
            error = f'<p class="bad">{esc(result.error)}</p>' if result.error else ""
            output = esc(result.response.get("output", ""))
            verdict = "pass" if result.passed else "fail"
            cells.append(f'<td class="{verdict}"><pre>{output}</pre>{error}<ul>{checks}</ul></td>')
        label = esc(test.description or json.dumps(test.vars, ensure_ascii=False, default=str)[:200])
        rows.append(f"<tr><th>#{test.index}<br><small>{label}</small></th>{''.join(cells)}</tr>")
    summary = "".join(
        f"<tr><td>{esc(_clip(s.prompt_id, 80))}</td><td>{esc(s.provider)}</td>"
        f'<td class="{"ok" if s.passed == s.cases else "bad"}">{s.passed}/{s.cases}</td>'
        f"<td>{'unknown' if s.tokens is None else s.tokens}</td>"
        f"<td>{'unknown' if s.cost_usd is None else f'{s.cost_usd:.6f}'}</td>"
        f"<td>{'-' if s.p50_latency_ms is None else f'{s.p50_latency_ms:.0f}'}</td></tr>"
        for s in summarise(run)
    )
    title = esc(run.config.description)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head>'
        f"<body><h1>{title}</h1><p><small>run {esc(run.run_id)} &middot; {run.failures} failing case(s)</small></p>"
        "<table><tr><th>prompt</th><th>provider</th><th>passed</th><th>tokens</th><th>USD</th><th>p50 ms</th></tr>"
        f"{summary}</table><h2>Outputs</h2><table><tr><th>test</th>{head}</tr>{''.join(rows)}</table></body></html>"
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_from_records(records: Sequence[Record], namespace: str) -> EvalRun:
    """The run that ``records`` logged, rebuilt for :func:`to_html` / :func:`summarise` (what the server's eval
    page shows): ``records`` are one run's records of namespace ``eval-<name>`` (the same ``session_id``, each
    with ``metadata.eval`` as :mod:`evaluation.runner` writes it; other records are ignored).

    The log holds the outputs, usage, model, pass/fail and every assertion's type, pass, score and reason, but
    not the config: prompts are known by id, providers by label, tests by index (prompts and providers in order
    of first appearance: the config's order is not logged); each test has its logged description and vars
    (records written before those were logged: labelled with the first prompt rendered for it, and no latency,
    so p50 shows ``-``); the run's description is ``namespace``. A run with no ``metadata.eval`` record has no
    results.
    """
    logged = [r for r in records if isinstance(r.metadata.get("eval"), dict)]
    asked = {_case_key(r.metadata["eval"]): r.content for r in logged if r.role == "human"}
    answers = sorted(
        (r for r in logged if r.role == "ai"), key=lambda r: (_case_key(r.metadata["eval"])[2], r.created_at)
    )
    prompts = {key[0]: Prompt(key[0], "") for key in map(_case_key, (a.metadata["eval"] for a in answers))}
    providers = {key[1]: Provider(key[1], key[1]) for key in map(_case_key, (a.metadata["eval"] for a in answers))}
    tests: dict[int, TestCase] = {}
    for answer in answers:
        key = _case_key(answer.metadata["eval"])
        meta = answer.metadata["eval"]
        variables = meta.get("vars") if isinstance(meta.get("vars"), dict) else {}
        label = meta.get("test_description") or ("" if variables else _clip(asked.get(key, ""), 200))
        tests.setdefault(key[2], TestCase(key[2], str(label), variables, ()))
    config = EvalConfig(namespace.removeprefix("eval-"), namespace, tuple(prompts.values()), tuple(providers.values()),
                        tuple(tests[index] for index in sorted(tests)))  # fmt: skip
    results = [_case_from_record(answer, prompts, providers, tests, asked) for answer in answers]
    order = [(p.id, v.label, t.index) for p in config.prompts for v in config.providers for t in config.tests]
    position = {key: n for n, key in enumerate(order)}
    results.sort(key=lambda r: position[(r.prompt.id, r.provider.label, r.test.index)])
    return EvalRun(logged[0].session_id if logged else "", config, results)


def _case_key(meta: dict[str, Any]) -> tuple[str, str, int]:
    """(prompt id, provider label, test index) of a record's ``metadata.eval``."""
    return str(meta.get("prompt_id", "")), str(meta.get("provider", "")), int(meta.get("test_index") or 0)


def _case_from_record(answer: Record, prompts: dict, providers: dict, tests: dict, asked: dict) -> CaseResult:
    """One case from its ``ai`` record: the output, model and usage (no response when the call failed)."""
    meta = answer.metadata["eval"]
    key = _case_key(meta)
    response: dict[str, Any] = {}
    if not meta.get("error"):
        response = {"output": answer.content, "model": answer.model, **(answer.usage or {}),
                    "cached": bool(meta.get("cached")), "latency_ms": meta.get("latency_ms")}  # fmt: skip
    checks = tuple(
        AssertionResult(
            str(a.get("type", "")), bool(a.get("pass")), float(a.get("score") or 0.0), str(a.get("reason") or "")
        )
        for a in meta.get("assertions") or ()
        if isinstance(a, dict)
    )
    return CaseResult(prompts[key[0]], providers[key[1]], tests[key[2]], asked.get(key, ""), response, checks,
                      error=str(meta.get("error") or ""))  # fmt: skip
