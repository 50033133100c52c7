"""Results of a run: a summary per prompt x provider, a rich table, a JSON document and a self-contained
HTML page (outputs side by side per test, failing assertions highlighted; no script, no external file)."""

from __future__ import annotations

import html
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.runner import CaseResult, EvalRun


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
