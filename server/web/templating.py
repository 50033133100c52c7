"""The pages' Jinja2 templates (``server/web/templates``, autoescaped) and :func:`render`, which gives every
template what the layout needs: the signed-in user, the CSRF token and the navigation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from server.deps import CurrentUser
from server.web.auth import csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# (path, label) of the layout's navigation bar, in order; a new page module adds its entry here.
NAV: tuple[tuple[str, str], ...] = (
    ("/code", "New code"),
    ("/history", "History"),
    ("/usage", "Usage"),
    ("/memory", "Memory"),
    ("/repos", "Repos"),
    ("/eval", "Eval"),
)


def format_usd(value: float | None) -> str:
    """USD to 6 decimals without trailing zeros (``$0.000123``, ``$4.05``); below that, ``< $0.000001``;
    ``unknown`` for None."""
    if value is None:
        return "unknown"
    if 0 < value < 0.0000005:
        return "< $0.000001"
    return f"${value:,.6f}".rstrip("0").rstrip(".")


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["usd"] = format_usd
templates.env.filters["thousands"] = lambda value: f"{value:,}"


def render(
    request: Request, template: str, user: CurrentUser | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """``templates/<template>`` rendered with ``context`` plus ``user``, ``csrf_token``, ``nav``, ``here`` (the
    path) and ``open_registration``; a ``Cache-Control: no-store`` header, as pages hold private data."""
    state = request.app.state.server
    values = {
        "user": user,
        "csrf_token": csrf_token(request),
        "nav": NAV,
        "here": request.url.path,
        "open_registration": state.config.open_registration,
        **context,
    }
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response
