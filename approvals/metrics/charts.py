"""Server-side SVG bar charts for /metrics/: plain string building, every label escaped.

Workflow and owner names come from agents and admins, so each one goes through `_shown` (made
visible, then escaped) before it touches the markup, in text and in attributes alike. Each
chart is `<svg role="img">` with a `<title>` and `<desc>`; the page puts the same numbers in a
table beside it, and series differ by pattern as well as colour, so colour is never the only
signal.
"""

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape as escape_html
from django.utils.safestring import SafeString, mark_safe

from approvals.selectors.sla import AgeBucket, DayDecisions, Latency, SlaReport
from audit.jsontext import visible

WIDTH = 640
# Charts list at most this many workflows or owners (the busiest); the tables list them all.
MAX_BARS = 15
LABEL_CHARS = 26
INK, MUTED, GRID = "#16181d", "#555b66", "#d6d9df"
_CHART_ID = re.compile(r"^[a-z][a-z0-9-]*$")


def _shown(text) -> str:
    """Text for the markup: hidden characters written out (audit.jsontext.visible), escaped."""
    return escape_html(visible(text))


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str
    pattern: str = "solid"  # solid, hatch or dots: told apart without colour


MEDIAN = Series("median", "Median", "#0b5cad")
P90 = Series("p90", "90th percentile", "#0b5cad", "hatch")
EXPIRED = Series("expired", "Expired", "#555b66", "hatch")
OPEN = Series("open", "Open packets", "#0b5cad")
DECISION_SERIES = (
    Series("allow", "Allow", "#1d6b2f"),
    Series("block", "Block", "#a3211b", "hatch"),
    Series("skip", "Skip", "#555b66", "dots"),
)


def _number(value: float) -> str:
    """One decimal at most, none when it is .0."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{_number(seconds)} s"
    if seconds < 3600:
        return f"{_number(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{_number(seconds / 3600)} h"
    return f"{_number(seconds / 86400)} d"


def format_share(share: float) -> str:
    return f"{_number(share * 100)}%"


def format_count(value: float) -> str:
    return str(round(value))


def _ticks(maximum: float, steps: Sequence[float]) -> list[float]:
    """Axis ticks from 0 in the smallest step that needs no more than four intervals."""
    if maximum <= 0:
        return [0, steps[0]]
    step = next((s for s in steps if maximum / s <= 4), None)
    if step is None:
        magnitude = 10 ** math.floor(math.log10(maximum / 4))
        step = next(m * magnitude for m in (1, 2, 5, 10) if maximum / (m * magnitude) <= 4)
    return [step * n for n in range(math.ceil(maximum / step) + 1)]


def count_ticks(maximum: float) -> list[float]:
    return _ticks(maximum, (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000))


def duration_ticks(maximum: float) -> list[float]:
    minute, hour, day = 60, 3600, 86400
    return _ticks(
        maximum,
        (
            *(1, 5, 15, 30),
            *(minute * m for m in (1, 2, 5, 10, 15, 30)),
            *(hour * h for h in (1, 2, 3, 6, 12)),
            *(day * d for d in (1, 2, 5, 10, 30)),
        ),
    )


def _label(text: str) -> str:
    """A label shortened for the chart, with the whole of it as a tooltip; both escaped."""
    short = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
    return f"{_shown(short)}<title>{_shown(text)}</title>"


def _fill(chart_id: str, series: Series) -> str:
    return series.colour if series.pattern == "solid" else f"url(#{chart_id}-{series.key})"


def _defs(chart_id: str, series: Sequence[Series]) -> str:
    patterns = []
    for s in series:
        if s.pattern == "hatch":
            marks = (
                f'<rect width="6" height="6" fill="{s.colour}" fill-opacity=".35"/>'
                f'<path d="M-1 1L1 -1M0 6L6 0M5 7L7 5" stroke="{s.colour}" stroke-width="1.6"/>'
            )
        elif s.pattern == "dots":
            marks = (
                f'<rect width="6" height="6" fill="#fff"/>'
                f'<circle cx="3" cy="3" r="1.4" fill="{s.colour}"/>'
            )
        else:
            continue
        patterns.append(
            f'<pattern id="{chart_id}-{s.key}" width="6" height="6" '
            f'patternUnits="userSpaceOnUse">{marks}</pattern>'
        )
    return f"<defs>{''.join(patterns)}</defs>" if patterns else ""


def _legend(chart_id: str, series: Sequence[Series], y: float) -> str:
    if len(series) < 2:
        return ""
    parts, x = [], 0.0
    for s in series:
        parts.append(
            f'<rect x="{x}" y="{y - 10}" width="14" height="12" fill="{_fill(chart_id, s)}" '
            f'stroke="{s.colour}"/><text x="{x + 20}" y="{y}">{_shown(s.label)}</text>'
        )
        x += 32 + 7.5 * len(s.label)
    return f'<g class="legend" aria-hidden="true">{"".join(parts)}</g>'


def _svg(chart_id: str, title: str, description: str, height: float, body: str) -> SafeString:
    if not _CHART_ID.match(chart_id):
        raise ValueError(f"chart ids are lowercase words and hyphens, not {chart_id!r}")
    return mark_safe(  # noqa: S308 - every label in body was escaped where it was written
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height:g}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-size="12" fill="{INK}">'
        f'<title id="{chart_id}-title">{_shown(title)}</title>'
        f'<desc id="{chart_id}-desc">{_shown(description)}</desc>{body}</svg>'
    )


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[Series],
    value_text: Callable[[float], str],
    ticks: Callable[[float], list[float]],
    bar_text: Callable[[str, int], str] | None = None,
) -> SafeString:
    """Horizontal bars: one group per row label, one bar per series, the value at its end."""
    label_w, value_w, bar_h, bar_gap, group_gap = 178, 76, 14, 3, 12
    plot_x, plot_w = label_w, WIDTH - label_w - value_w
    top = 30 if len(series) > 1 else 6
    group_h = len(series) * bar_h + (len(series) - 1) * bar_gap
    plot_h = len(rows) * (group_h + group_gap)
    axis = ticks(max((v for _, values in rows for v in values), default=0))
    scale = plot_w / (axis[-1] or 1)
    parts = [_defs(chart_id, series), _legend(chart_id, series, 14)]
    for tick in axis:
        x = plot_x + tick * scale
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="{GRID}"/>'
            f'<text x="{x:.1f}" y="{top + plot_h + 15}" text-anchor="middle" fill="{MUTED}">'
            f"{_shown(value_text(tick))}</text>"
        )
    for index, (label, values) in enumerate(rows):
        y0 = top + index * (group_h + group_gap) + group_gap / 2
        parts.append(
            f'<text x="{label_w - 8}" y="{y0 + group_h / 2 + 4:.1f}" '
            f'text-anchor="end">{_label(label)}</text>'
        )
        for n, (s, value) in enumerate(zip(series, values, strict=True)):
            y = y0 + n * (bar_h + bar_gap)
            width = max(value * scale, 0)
            text = bar_text(label, n) if bar_text else value_text(value)
            parts.append(
                f'<rect x="{plot_x}" y="{y:.1f}" width="{width:.1f}" height="{bar_h}" '
                f'fill="{_fill(chart_id, s)}" stroke="{s.colour}">'
                f"<title>{_shown(label)}, {_shown(s.label.lower())}: {_shown(text)}</title></rect>"
                f'<text x="{plot_x + width + 5:.1f}" y="{y + bar_h - 3:.1f}">{_shown(text)}</text>'
            )
    return _svg(chart_id, title, description, top + plot_h + 22, "".join(parts))


def stacked_columns(
    *,
    chart_id: str,
    title: str,
    description: str,
    columns: Sequence[tuple[str, str, Sequence[int]]],
    series: Sequence[Series],
) -> SafeString:
    """Vertical columns of stacked series; columns are (short label, full label, values)."""
    left, right, top, plot_h, bottom = 40, 8, 30, 170, 22
    plot_w = WIDTH - left - right
    slot = plot_w / max(len(columns), 1)
    bar_w = min(slot * 0.7, 36)
    axis = count_ticks(max((sum(values) for _, _, values in columns), default=0))
    scale = plot_h / (axis[-1] or 1)
    every = math.ceil(len(columns) / 12)
    parts = [_defs(chart_id, series), _legend(chart_id, series, 14)]
    for tick in axis:
        y = top + plot_h - tick * scale
        parts.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{format_count(tick)}</text>"
        )
    for index, (short, full, values) in enumerate(columns):
        x = left + index * slot + (slot - bar_w) / 2
        y = top + plot_h
        summary = ", ".join(f"{v} {s.label.lower()}" for s, v in zip(series, values, strict=True))
        bars = []
        for s, value in zip(series, values, strict=True):
            if not value:
                continue
            y -= value * scale
            bars.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{value * scale:.1f}" '
                f'fill="{_fill(chart_id, s)}" stroke="{s.colour}"/>'
            )
        parts.append(f"<g><title>{_shown(full)}: {_shown(summary)}</title>{''.join(bars)}</g>")
        # Counted from the last column, so today always has its label.
        if (len(columns) - 1 - index) % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 15}" text-anchor="middle" '
                f'fill="{MUTED}">{_shown(short)}</text>'
            )
    return _svg(chart_id, title, description, top + plot_h + bottom, "".join(parts))


def busiest(rows: Sequence[Latency]) -> list[Latency]:
    """The rows a chart shows: the MAX_BARS with most decisions, in name order."""
    chosen = sorted(rows, key=lambda row: -row.decided)[:MAX_BARS]
    return sorted(chosen, key=lambda row: row.name)


def latency_chart(rows: Sequence[Latency], *, chart_id: str, noun: str) -> SafeString:
    shown = busiest(rows)
    slowest = max(shown, key=lambda row: row.p90)
    return bar_chart(
        chart_id=chart_id,
        title=f"Time to decision by {noun}",
        description=(
            f"Median and 90th percentile time from request to decision for {len(shown)} "
            f"{noun}s; the slowest 90th percentile is {slowest.name} at "
            f"{format_duration(slowest.p90)}. The table beside the chart lists the numbers."
        ),
        rows=[(row.name, (row.median, row.p90)) for row in shown],
        series=(MEDIAN, P90),
        value_text=format_duration,
        ticks=duration_ticks,
    )


def expired_chart(rows: Sequence[Latency], *, chart_id: str) -> SafeString:
    shown = busiest(rows)
    by_name = {row.name: row for row in shown}
    return bar_chart(
        chart_id=chart_id,
        title="Expired packets by workflow",
        description=(
            f"Packets that reached their deadline undecided, for {len(shown)} workflows, "
            f"{sum(row.expired for row in shown)} in all. The table beside the chart lists "
            "the numbers and each workflow's share of its decisions."
        ),
        rows=[(row.name, (row.expired,)) for row in shown],
        series=(EXPIRED,),
        value_text=format_count,
        ticks=count_ticks,
        bar_text=lambda name, _: (
            f"{by_name[name].expired} · {format_share(by_name[name].expired_share)}"
        ),
    )


def age_chart(buckets: Sequence[AgeBucket], *, chart_id: str) -> SafeString:
    return bar_chart(
        chart_id=chart_id,
        title="Open packets by age",
        description=(
            f"{sum(b.count for b in buckets)} open packets counted by time since they were "
            "made: " + ", ".join(f"{b.label}: {b.count}" for b in buckets) + "."
        ),
        rows=[(bucket.label, (bucket.count,)) for bucket in buckets],
        series=(OPEN,),
        value_text=format_count,
        ticks=count_ticks,
    )


def day_chart(per_day: Sequence[DayDecisions], *, chart_id: str) -> SafeString:
    total = sum(day.total for day in per_day)
    return stacked_columns(
        chart_id=chart_id,
        title="Decisions per day",
        description=(
            f"Decisions on {len(per_day)} days, {total} in all, stacked by decision: allow, "
            "block, skip. The table beside the chart lists each day."
        ),
        columns=[
            (f"{day.day:%b} {day.day.day}", day.day.isoformat(), (day.allow, day.block, day.skip))
            for day in per_day
        ],
        series=DECISION_SERIES,
    )


def latency_rows(rows: Sequence[Latency]) -> list[dict]:
    """Table rows with the chart's numbers, formatted."""
    return [
        {
            "name": row.name,
            "decided": row.decided,
            "median": format_duration(row.median),
            "p90": format_duration(row.p90),
            "expired": row.expired,
            "expired_share": format_share(row.expired_share),
        }
        for row in rows
    ]


def sla_charts(report: SlaReport) -> dict[str, SafeString | None]:
    """Every chart on the page; None where there is nothing to draw."""
    return {
        "workflow": latency_chart(report.by_workflow, chart_id="chart-workflow", noun="workflow")
        if report.by_workflow
        else None,
        "owner": latency_chart(report.by_owner, chart_id="chart-owner", noun="owner")
        if report.by_owner
        else None,
        "expired": expired_chart(report.by_workflow, chart_id="chart-expired")
        if any(row.expired for row in report.by_workflow)
        else None,
        "ages": age_chart(report.open_ages, chart_id="chart-ages") if report.open else None,
        "days": day_chart(report.per_day, chart_id="chart-days")
        if any(day.total for day in report.per_day)
        else None,
    }
