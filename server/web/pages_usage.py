"""The usage page, ``/usage?from=&to=&gpu=``: tokens and USD per day stacked by model over a range of days
(default the last 30, UTC, both ends included; at most ``MAX_DAYS``) as server-side SVG charts, the totals
per model (:func:`server.routes.usage.build_report`, as ``GET /v1/usage``), the costliest conversations, and
API spend per hour at the measured request rate against a GPU at ``gpu`` USD/hour (default 4.05, one A100
80GB) with the break-even request rate. A user sees their own namespaces; an admin sees every user's."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from server.deps import CurrentUser, ServerState, State
from server.routes.usage import build_report
from server.users import owns_namespace
from server.web.auth import PageError, PageUser, user_namespaces
from server.web.charts import stacked_bars_svg
from server.web.templating import render
from server.web.usage_data import (
    DEFAULT_GPU_HOURLY,
    comparison,
    daily_by_model,
    first_questions,
    replies_in_range,
    top_conversations,
)

router = APIRouter(include_in_schema=False)
DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_GPU_HOURLY = 10_000.0
Text = Annotated[str, Query(max_length=40)]


def _day(text: str, default: date, label: str) -> date:
    if not text.strip():
        return default
    try:
        return date.fromisoformat(text.strip())
    except ValueError as error:
        raise PageError(400, f"{label} {text!r} is not a date: use YYYY-MM-DD.") from error


def parse_range(start_text: str, end_text: str, gpu_text: str, today: date) -> tuple[date, date, float]:
    """The range (first and last day, included) and GPU price from the form's text; raises :class:`PageError`
    (400) for a bad date, a range backwards or over ``MAX_DAYS``, or a price not in (0, 10000]."""
    end = _day(end_text, today, "To")
    start = _day(start_text, end - timedelta(days=DEFAULT_DAYS - 1), "From")
    if start > end:
        raise PageError(400, f"The range starts ({start}) after it ends ({end}).")
    if (end - start).days + 1 > MAX_DAYS:
        raise PageError(400, f"The range covers more than {MAX_DAYS} days: choose a shorter one.")
    try:
        gpu = float(gpu_text) if gpu_text.strip() else DEFAULT_GPU_HOURLY
    except ValueError as error:
        raise PageError(400, f"GPU price {gpu_text!r} is not a number of USD per hour.") from error
    if not 0 < gpu <= MAX_GPU_HOURLY:  # also refuses nan and inf
        raise PageError(400, f"GPU price must be above 0 and at most {MAX_GPU_HOURLY:,.0f} USD per hour.")
    return start, end, gpu


def usage_context(
    state: ServerState, user: CurrentUser, start: date, end: date, gpu_hourly: float, now: datetime
) -> dict[str, Any]:
    """What ``usage.html`` shows (blocking: reads the logs and draws the charts; run it in a worker thread)."""
    namespaces = state.logbook.user_namespaces() if user.is_admin else user_namespaces(state, user)
    records = [record for namespace in namespaces for record in state.logbook.records(namespace)]
    replies = replies_in_range(records, start, end)
    daily = daily_by_model(replies, start, end)
    today_tokens, today_usd = daily.today(now.date().isoformat())
    top = top_conversations(replies)
    return {
        "start": start,
        "end": end,
        "gpu": gpu_hourly,
        "charts": {
            "usd": stacked_bars_svg("usd", daily.days, daily.usd, daily.models, "USD per day"),
            "tokens": stacked_bars_svg("tokens", daily.days, daily.tokens, daily.models, "tokens per day"),
        },
        "report": build_report(replies, "model", start, end + timedelta(days=1)),
        "top": [(row, owns_namespace(user.name, row.namespace)) for row in top],
        "titles": first_questions(records, {(row.namespace, row.id) for row in top}),
        "today": now.date().isoformat(),
        "today_tokens": today_tokens,
        "today_usd": today_usd,
        "compare": comparison(replies, start, end, gpu_hourly, now),
        "everyone": user.is_admin,
    }


@router.get("/usage")
async def usage(
    request: Request,
    user: PageUser,
    state: State,
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Text = "",
    gpu: Text = "",
) -> Response:
    """The usage page for the range and GPU price in the query (``from``, ``to``: YYYY-MM-DD; ``gpu``: USD/h)."""
    now = datetime.now(timezone.utc)
    start, end, gpu_hourly = parse_range(from_, to, gpu, now.date())
    context = await anyio.to_thread.run_sync(usage_context, state, user, start, end, gpu_hourly, now)
    return render(request, "usage.html", user, **context)
