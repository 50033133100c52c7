"""What the usage page shows, from records (pure functions, no I/O): tokens and USD per day and model, the
costliest conversations, and the seed's "API or our own GPU?" comparison (:func:`my_llm.bigquery.compare_costs`,
the one ``my-llm usage --gpu-hourly`` prints).

Only AI replies count (they carry the usage: ``input_tokens``, ``output_tokens``, ``cost_usd``); a reply
without ``cost_usd`` is a request at an unknown price: counted, its USD taken as 0. Days are UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from my_llm import Record, parse_time
from my_llm.bigquery import CostComparison, UsageReport, compare_costs

DEFAULT_GPU_HOURLY = 4.05  # one A100 80GB rented by the hour, USD (the seed's figure)
TOP_CONVERSATIONS = 10


@dataclass(frozen=True)
class DailyByModel:
    """Per-day series for a stacked chart: ``days`` (ISO dates, every day of the range, oldest first),
    ``models`` (costliest first), and per model one value per day: ``tokens`` (input + output) and ``usd``."""

    days: list[str]
    models: list[str]
    tokens: dict[str, list[int]]
    usd: dict[str, list[float]]

    def today(self, day: str) -> tuple[int, float]:
        """Tokens and USD of ``day`` over every model ((0, 0.0) outside the range)."""
        if day not in self.days:
            return 0, 0.0
        index = self.days.index(day)
        return sum(series[index] for series in self.tokens.values()), sum(s[index] for s in self.usd.values())


@dataclass(frozen=True)
class ConversationCost:
    """One conversation's requests, tokens (input + output) and USD in the range."""

    namespace: str
    id: str
    requests: int
    tokens: int
    cost_usd: float
    unknown_price_requests: int


def replies_in_range(records: Iterable[Record], start: date, end: date) -> list[Record]:
    """The AI replies of ``records`` created on days ``start`` <= day <= ``end`` (UTC)."""
    low, high = start.isoformat(), end.isoformat()
    return [r for r in records if r.role == "ai" and low <= r.created_at[:10] <= high]


def _tokens(record: Record) -> int:
    usage = record.usage or {}
    return (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)


def _usd(record: Record) -> float:
    return float((record.usage or {}).get("cost_usd") or 0.0)


def daily_by_model(replies: Sequence[Record], start: date, end: date) -> DailyByModel:
    """Tokens and USD per day (``start`` to ``end`` inclusive) and model (``unknown`` when unnamed)."""
    days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    tokens: dict[str, list[int]] = {}
    usd: dict[str, list[float]] = {}
    for record in replies:
        slot = index.get(record.created_at[:10])
        if slot is None:
            continue
        model = record.model or "unknown"
        tokens.setdefault(model, [0] * len(days))[slot] += _tokens(record)
        usd.setdefault(model, [0.0] * len(days))[slot] += _usd(record)
    models = sorted(tokens, key=lambda name: (-sum(usd[name]), -sum(tokens[name]), name))
    return DailyByModel(days, models, tokens, usd)


def top_conversations(replies: Sequence[Record], limit: int = TOP_CONVERSATIONS) -> list[ConversationCost]:
    """The ``limit`` conversations (namespace, session) with the highest USD, then the most tokens."""
    totals: dict[tuple[str, str], list] = {}
    for record in replies:
        row = totals.setdefault((record.namespace, record.session_id), [0, 0, 0.0, 0])
        row[0] += 1
        row[1] += _tokens(record)
        row[2] += _usd(record)
        row[3] += (record.usage or {}).get("cost_usd") is None
    rows = [ConversationCost(ns, sid, n, tok, usd, unknown) for (ns, sid), (n, tok, usd, unknown) in totals.items()]
    return sorted(rows, key=lambda row: (-row.cost_usd, -row.tokens, row.id))[:limit]


def first_questions(records: Iterable[Record], conversations: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The first human turn (80 characters) of each (namespace, session) in ``conversations``."""
    found: dict[tuple[str, str], str] = {}
    for record in records:
        key = (record.namespace, record.session_id)
        if record.role == "human" and key in conversations and key not in found:
            found[key] = record.content[:80]
    return found


def comparison(
    replies: Sequence[Record], start: date, end: date, gpu_hourly: float, now: datetime | None = None
) -> CostComparison:
    """The seed's comparison over the range: requests per hour measured from the start of ``start`` (or the
    range's first request, when later: a server installed last week is not idle for the month before) to
    the end of ``end`` or ``now``, whichever is first; API USD per hour at that rate against ``gpu_hourly``; and
    the rate (requests/hour) at which they cost the same (from the mean USD of a priced request; None when
    no request is priced)."""
    now = now or datetime.now(timezone.utc)
    since = datetime.combine(start, time.min, timezone.utc)
    if replies:
        since = max(since, min(parse_time(r.created_at) for r in replies))
    until = min(datetime.combine(end + timedelta(days=1), time.min, timezone.utc), now)
    priced = [r for r in replies if (r.usage or {}).get("cost_usd") is not None]
    totals = {
        "requests": len(replies),
        "priced_requests": len(priced),
        "cost_usd": sum(_usd(r) for r in priced),
        "first_at": None,
        "last_at": None,
    }
    report = UsageReport(by="day", since=since, engine="logbook", rows=[], totals=totals)
    return compare_costs(report, gpu_hourly, now=max(until, since))
