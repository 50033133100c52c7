"""Click parameter types the my-llm command modules share (``cli``, ``cli_bigquery``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import click

from my_llm import parse_time

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class SinceType(click.ParamType):
    """A point in time: ISO 8601 (``2026-11-21``, ``2026-11-21T10:00Z``) or an age (``30m``, ``2h``, ``7d``)."""

    name = "TIME"

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        relative = _RELATIVE.fullmatch(text)
        if relative:
            amount, unit = relative.groups()
            return datetime.now(timezone.utc) - timedelta(**{_UNITS[unit]: int(amount)})
        try:
            return parse_time(text)
        except ValueError:
            self.fail(
                f"{value!r} is neither an ISO 8601 time (2026-11-21T10:00Z) nor an age (30m, 2h, 7d).", param, ctx
            )


SINCE = SinceType()
