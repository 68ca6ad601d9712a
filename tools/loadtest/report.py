"""A load test's report: `report.md` for reading, `per-second.csv` and
`latency.png` for looking (latency p50/p95 and errors, second by second),
beside the raw `requests.csv` the locust process wrote."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from tools.loadtest.stats import STATS_DOC, Sample, Second, Summary, per_second, summarize

REPORT = "report.md"
SAMPLES = "requests.csv"
SECONDS = "per-second.csv"
PLOT = "latency.png"
FILES = (REPORT, SAMPLES, SECONDS, PLOT)


@dataclass(frozen=True)
class RunFacts:
    """What was asked, as the report states it (no secrets)."""

    stack: str
    endpoint: str
    cloud: str
    region: str
    url: str
    signer: str
    payload: str
    payload_bytes: int
    content_type: str
    users: int
    spawn_rate: float
    duration_s: int
    started: str
    note: str = ""


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def render(facts: RunFacts, summary: Summary) -> str:
    lines = [
        f"# Load test: {facts.stack} / {facts.endpoint}",
        "",
        f"Started {facts.started}; {facts.cloud}, {facts.region}.",
        "",
        "| | |",
        "|---|---|",
        f"| Endpoint | `{facts.url}` |",
        f"| Signed with | {facts.signer} |",
        f"| Payload | `{facts.payload}`, {facts.payload_bytes} bytes, `{facts.content_type}` |",
        f"| Users | {facts.users} (spawned at {facts.spawn_rate:g}/s) |",
        f"| Duration | {facts.duration_s} s asked, {summary.span_s:.1f} s from first request "
        "to last response |",
        f"| Requests | {summary.requests} |",
        f"| Requests per second | {summary.rps:.1f} |",
        f"| Latency p50 | {_ms(summary.p50_ms)} ms |",
        f"| Latency p95 | {_ms(summary.p95_ms)} ms |",
        f"| Latency p99 | {_ms(summary.p99_ms)} ms |",
        f"| Latency min / max | {_ms(summary.min_ms)} / {_ms(summary.max_ms)} ms |",
        f"| Errors | {summary.errors} of {summary.requests} |",
        f"| Error rate | {100 * summary.error_rate:.2f}% |",
        "",
    ]
    if facts.note:
        lines += [f"**{facts.note}**", ""]
    if summary.error_kinds:
        lines += ["## Errors", "", "| Error | Requests |", "|---|---|"]
        lines += [f"| {kind.replace('|', '/')} | {count} |" for kind, count in summary.error_kinds]
        lines.append("")
    lines += [
        "## Latency over time",
        "",
        f"![p50 and p95 latency, requests and errors per second]({PLOT})",
        "",
        "## How the figures are computed",
        "",
        STATS_DOC,
        "",
        f"Files: `{SAMPLES}` (one row per request, in the order they completed: start "
        f"in seconds after the load started, latency in ms, HTTP status, 0 for no "
        f"response, and the error), "
        f"`{SECONDS}` (per second of the run: requests, errors, p50 and p95 latency), "
        f"`{PLOT}`.",
        "",
    ]
    return "\n".join(lines)


def write_seconds(path: Path, seconds: list[Second]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("second", "requests", "errors", "p50_ms", "p95_ms"))
        for s in seconds:
            p50 = "" if math.isnan(s.p50_ms) else f"{s.p50_ms:.3f}"
            p95 = "" if math.isnan(s.p95_ms) else f"{s.p95_ms:.3f}"
            writer.writerow((s.second, s.requests, s.errors, p50, p95))


def plot(path: Path, title: str, seconds: list[Second]) -> None:
    """p50 and p95 latency per second on the left axis; requests and errors per
    second on the right (errors as red bars)."""
    # The object API, not pyplot: no global figure state, no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    latency = figure.add_subplot()
    counts = latency.twinx()
    x = [s.second for s in seconds]
    counts.bar(x, [s.errors for s in seconds], width=0.8, color="tab:red", alpha=0.35)
    counts.plot(x, [s.requests for s in seconds], color="grey", linewidth=1, label="requests")
    latency.plot(x, [s.p50_ms for s in seconds], marker=".", color="tab:blue", label="p50")
    latency.plot(x, [s.p95_ms for s in seconds], marker=".", color="tab:orange", label="p95")
    # Latency lines in front of the bars.
    latency.set_zorder(counts.get_zorder() + 1)
    latency.patch.set_visible(False)
    latency.set_xlabel("seconds since the load started")
    latency.set_ylabel("latency (ms)")
    counts.set_ylabel("requests and errors per second")
    latency.set_ylim(bottom=0)
    counts.set_ylim(bottom=0, top=max([s.requests for s in seconds] + [1]) * 1.1)
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    latency.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not seconds:
        latency.text(0.5, 0.5, "no requests", ha="center", va="center", transform=latency.transAxes)
    handles = [
        *latency.get_legend_handles_labels()[0],
        *counts.get_legend_handles_labels()[0],
        Patch(color="tab:red", alpha=0.35, label="errors"),
    ]
    latency.legend(handles=handles, loc="upper left")
    latency.set_title(title)
    latency.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png")


def write(directory: Path, facts: RunFacts, samples: list[Sample]) -> Summary:
    summary = summarize(samples)
    seconds = per_second(samples)
    write_seconds(directory / SECONDS, seconds)
    plot(directory / PLOT, f"{facts.stack} / {facts.endpoint}: latency per second", seconds)
    (directory / REPORT).write_text(render(facts, summary))
    return summary
