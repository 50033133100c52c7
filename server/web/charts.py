"""Stacked bar charts rendered on the server to inline SVG with matplotlib (its SVG backend, no pyplot, no
display, no network): text stays text (``svg.fonttype = none``) so the page is searchable and small."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence

_RC_LOCK = threading.Lock()  # matplotlib's rcParams are process-wide: one chart at a time
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
COLORS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#718096", "#e53e3e")


def stacked_bars_svg(
    chart_id: str, days: Sequence[str], series: dict[str, Sequence[float]], order: Sequence[str], y_label: str
) -> str:
    """An ``<svg>`` element (no XML prologue) of one bar per day, stacked by ``order``'s keys of ``series``
    (each a value per day), with a legend; ``chart_id`` salts the element ids so that several charts can be
    inlined in one page, and names each bar's group ``bar-<chart_id>-<n>-<day>`` (``n``: the index in
    ``order``). About 10 KB per 30 days."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    with _RC_LOCK, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": chart_id, "font.size": 9}):
        figure = Figure(figsize=(9, 3.2), dpi=96, layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        positions = range(len(days))
        bottom = [0.0] * len(days)
        for n, name in enumerate(order):
            values = [float(v) for v in series[name]]
            bars = axes.bar(positions, values, bottom=bottom, label=name, color=COLORS[n % len(COLORS)], width=0.8)
            for bar, day in zip(bars, days, strict=True):
                bar.set_gid(f"bar-{chart_id}-{n}-{day}")
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        step = max(1, len(days) // 10)
        axes.set_xticks(list(positions)[::step], [day[5:] for day in days[::step]])
        axes.set_ylabel(y_label)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:,.6g}"))
        axes.set_xlim(-0.6, len(days) - 0.4)
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", color="#e2e8f0")
        axes.set_axisbelow(True)
        if order:
            axes.legend(loc="upper left", frameon=False, fontsize=8)
        else:
            axes.text(0.5, 0.5, "no requests in this range", transform=axes.transAxes, ha="center", color="#718096")
            axes.set_ylim(0, 1)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    return _PROLOGUE.sub("", buffer.getvalue(), count=1)
