"""Usage: ``GET /v1/usage?from=&to=&group_by=day|model|user|namespace``: requests, tokens and USD from the
records (AI replies with usage); requests with an unknown price are counted apart. A user sees their own
usage (all their namespaces, labelled keys' included); an admin sees every user's (``user-*`` namespaces).
``group_by=user`` counts a labelled key's namespace as its user's; ``group_by=namespace`` keeps them apart."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query
from pydantic import BaseModel

from my_llm import Record
from server.deps import State, User, readable_namespaces
from server.users import user_of_namespace

router = APIRouter(tags=["usage"])


class UsageRow(BaseModel):
    """Totals of one group."""

    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unknown_price_requests: int


class UsageReport(BaseModel):
    """Rows by ``group_by`` over ``[from, to)`` (UTC), and the grand total."""

    group_by: str
    from_: str | None = None
    to: str | None = None
    rows: list[UsageRow]
    total: UsageRow


def _key(record: Record, group_by: str) -> str:
    if group_by == "day":
        return record.created_at[:10]
    if group_by == "model":
        return record.model or "unknown"
    if group_by == "user":
        return user_of_namespace(record.namespace) or record.namespace
    return record.namespace


def _add(row: UsageRow, record: Record) -> None:
    usage = record.usage or {}
    row.requests += 1
    row.input_tokens += usage.get("input_tokens") or 0
    row.output_tokens += usage.get("output_tokens") or 0
    if usage.get("cost_usd") is None:
        row.unknown_price_requests += 1
    else:
        row.cost_usd = round(row.cost_usd + usage["cost_usd"], 8)


def _bound(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def build_report(records: list[Record], group_by: str, start: date | None, end: date | None) -> UsageReport:
    """The report over the AI records of ``records`` created on days ``start`` <= day < ``end``."""
    rows: dict[str, UsageRow] = {}
    total = UsageRow(key="total", requests=0, input_tokens=0, output_tokens=0, cost_usd=0.0, unknown_price_requests=0)
    low, high = _bound(start), _bound(end)
    for record in records:
        day = record.created_at[:10]
        if record.role != "ai" or (low and day < low) or (high and day >= high):
            continue
        key = _key(record, group_by)
        row = rows.setdefault(key, UsageRow(key=key, requests=0, input_tokens=0, output_tokens=0, cost_usd=0.0,
                                            unknown_price_requests=0))  # fmt: skip
        _add(row, record)
        _add(total, record)
    return UsageReport(
        group_by=group_by, from_=low, to=high, rows=sorted(rows.values(), key=lambda r: r.key), total=total
    )


@router.get("/usage", response_model=UsageReport, summary="Requests, tokens and USD, grouped")
async def usage(
    user: User,
    state: State,
    from_: Annotated[date | None, Query(alias="from", description="first day (UTC), inclusive")] = None,
    to: Annotated[date | None, Query(description="last day (UTC), exclusive")] = None,
    group_by: Literal["day", "model", "user", "namespace"] = "day",
) -> UsageReport:
    """Usage of the signed-in user, or of every user for an admin."""

    def collect() -> list[Record]:
        namespaces = state.logbook.user_namespaces() if user.is_admin else readable_namespaces(state, user.name)
        return [record for namespace in namespaces for record in state.logbook.records(namespace)]

    records = await anyio.to_thread.run_sync(collect)
    return build_report(records, group_by, from_, to)
