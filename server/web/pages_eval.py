"""The eval pages (issue 19's results "on the server"): ``/eval`` lists the runs of ``my-llm eval`` found in the
log, newest first; ``/eval/run?ns=&id=`` shows one run with the outputs side by side and the failing assertions
highlighted, which is :func:`evaluation.report.to_html` (the CLI's report) rebuilt from the run's records by
:func:`evaluation.report.run_from_records`; ``/eval/run/report.html`` gives that page as a file.

Where runs come from: ``my-llm eval`` logs each call as two records in the namespace ``eval-<config name>``,
session = run id, ``metadata.eval`` holding the scores (:mod:`evaluation.runner`); the server reads every
``eval-*`` namespace under its ``MESSAGE_HISTORY``.

Who sees them: eval namespaces belong to no user (the CLI writes them, not a user's key), and they hold
prompts and outputs of a team's test configs, not anyone's conversations; so they are team-wide: **every
signed-in user sees every eval run**, as every user sees every registered repository. An eval config that
must stay private belongs on another server (or another ``MESSAGE_HISTORY``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from evaluation.report import run_from_records, summarise, to_html
from my_llm import Record
from server.deps import ServerState, State
from server.web.auth import PageError, PageUser
from server.web.templating import render

router = APIRouter(include_in_schema=False)
PREFIX = "eval-"
Text = Annotated[str, Query(min_length=1, max_length=200)]


@dataclass(frozen=True)
class RunListing:
    """One eval run in the list: namespace, run id, first and last record times (UTC ISO 8601), cases,
    failing cases, and the prompt ids and provider labels it compared."""

    namespace: str
    run_id: str
    started_at: str
    finished_at: str
    cases: int
    failures: int
    prompts: tuple[str, ...]
    providers: tuple[str, ...]


def _eval_records(state: ServerState, namespace: str) -> list[Record]:
    return [r for r in state.logbook.records(namespace) if isinstance(r.metadata.get("eval"), dict)]


def list_runs(state: ServerState) -> list[RunListing]:
    """Every eval run in every ``eval-*`` namespace, newest first (by its last record)."""
    runs = []
    for namespace in state.logbook.user_namespaces(prefix=PREFIX):
        sessions: dict[str, list[Record]] = {}
        for record in _eval_records(state, namespace):
            sessions.setdefault(record.session_id, []).append(record)
        for run_id, records in sessions.items():
            answers = [r.metadata["eval"] for r in records if r.role == "ai"]
            times = sorted(r.created_at for r in records)
            runs.append(
                RunListing(
                    namespace,
                    run_id,
                    times[0],
                    times[-1],
                    len(answers),
                    sum(not m.get("pass") for m in answers),
                    tuple(dict.fromkeys(str(m.get("prompt_id", "")) for m in answers)),
                    tuple(dict.fromkeys(str(m.get("provider", "")) for m in answers)),
                )  # fmt: skip
            )
    return sorted(runs, key=lambda run: run.finished_at, reverse=True)


def _run_records(state: ServerState, namespace: str, run_id: str) -> list[Record]:
    if not namespace.startswith(PREFIX) or namespace not in state.logbook.user_namespaces(prefix=PREFIX):
        return []
    return [r for r in _eval_records(state, namespace) if r.session_id == run_id]


async def _run_or_404(state: ServerState, namespace: str, run_id: str):
    records = await anyio.to_thread.run_sync(_run_records, state, namespace, run_id)
    if not records:
        raise PageError(404, f"No eval run {run_id!r} in {namespace!r}.")
    return run_from_records(records, namespace), records


@router.get("/eval")
async def eval_page(request: Request, user: PageUser, state: State) -> Response:
    """The eval runs, newest first: config (namespace), when, cases, failures, prompts and providers."""
    runs = await anyio.to_thread.run_sync(list_runs, state)
    return render(request, "eval.html", user, runs=runs)


@router.get("/eval/run")
async def eval_run(request: Request, user: PageUser, state: State, ns: Text, id: Text) -> Response:
    """One run: its summary per prompt x provider and the report (outputs side by side, failing assertions
    highlighted) in a sandboxed frame; 404 when there is no such run."""
    run, records = await _run_or_404(state, ns, id)
    times = sorted(r.created_at for r in records)
    return render(request, "eval_run.html", user, namespace=ns, run=run, summaries=summarise(run),
                  report=to_html(run), started_at=times[0], finished_at=times[-1])  # fmt: skip


@router.get("/eval/run/report.html")
async def eval_report(_request: Request, user: PageUser, state: State, ns: Text, id: Text) -> Response:
    """The run's self-contained HTML report (what ``my-llm eval --output r.html`` writes), as a download."""
    run, _records = await _run_or_404(state, ns, id)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{ns}-{id[:8]}")
    headers = {
        "Content-Disposition": f'attachment; filename="{name}.html"',
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(to_html(run), headers=headers)
