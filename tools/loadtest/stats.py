"""The figures of a load test, from the requests it made (see `STATS_DOC`)."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("start_s", "latency_ms", "status", "error")

STATS_DOC = """\
Every request is recorded by the load generator itself, through locust's
`request` event (locust's own statistics, which round response times into
buckets, are not used): when it started, its latency as locust measured it
(from sending the request to the last byte of the response) and its HTTP
status. Every figure is computed from those rows (`requests.csv`):

- An error is a request with no response (status 0: refused, reset, timed
  out, not signed) or a status of 400 or more. Error rate = errors / requests.
- Latency percentiles are nearest-rank over every request, errors included, as
  locust counts them: pN is the smallest latency with at least N% of the
  requests at or below it.
- Requests per second = requests / the time from the first request's start to
  the last request's end.
- Per second (plot, `per-second.csv`): the requests that started in that
  second, their errors and their p50 and p95 latency."""

# `[Errno 111] Connection refused` out of urllib3's long wrapper messages.
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")


def error_text(status: int, exception: BaseException | None) -> str:
    """What went wrong, short enough to group requests by: `HTTP 503`,
    `ConnectionRefusedError: [Errno 111] Connection refused`, `ReadTimeout`."""
    if exception is None:
        return ""
    if status >= 400:
        return f"HTTP {status}"
    message = str(exception)
    found = _ERRNO.search(message)
    detail = found.group(0).strip() if found else (message.splitlines() or [""])[0]
    detail = detail[:120]
    return f"{type(exception).__name__}: {detail}" if detail else type(exception).__name__


@dataclass(frozen=True)
class Sample:
    """One request: its start (seconds after the load started), its latency in
    milliseconds, its HTTP status (0: no response) and what went wrong, if anything."""

    start_s: float
    latency_ms: float
    status: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def end_s(self) -> float:
        return self.start_s + self.latency_ms / 1000.0

    def row(self) -> list[str]:
        return [f"{self.start_s:.6f}", f"{self.latency_ms:.3f}", str(self.status), self.error]


def read_samples(path: Path) -> list[Sample]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [
            Sample(float(r["start_s"]), float(r["latency_ms"]), int(r["status"]), r["error"])
            for r in csv.DictReader(handle)
        ]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank: the ceil(p/100 * n)-th smallest value (the smallest for p = 0)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    requests: int
    errors: int
    span_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    error_kinds: tuple[tuple[str, int], ...]

    @property
    def successes(self) -> int:
        return self.requests - self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.span_s if self.span_s > 0 else 0.0


def summarize(samples: Sequence[Sample]) -> Summary:
    latencies = [s.latency_ms for s in samples]
    span = max(s.end_s for s in samples) - min(s.start_s for s in samples) if samples else 0.0
    kinds = Counter(s.error for s in samples if not s.ok)
    return Summary(
        requests=len(samples),
        errors=sum(kinds.values()),
        span_s=span,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        min_ms=min(latencies, default=math.nan),
        max_ms=max(latencies, default=math.nan),
        error_kinds=tuple(sorted(kinds.items(), key=lambda kind: (-kind[1], kind[0]))),
    )


@dataclass(frozen=True)
class Second:
    """The requests that started in one second of the run."""

    second: int
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float


def per_second(samples: Iterable[Sample]) -> list[Second]:
    """Every second from the first to the last start, empty ones included, so a
    stall shows as a gap rather than being skipped."""
    buckets: dict[int, list[Sample]] = {}
    for sample in samples:
        buckets.setdefault(math.floor(sample.start_s), []).append(sample)
    if not buckets:
        return []
    seconds = []
    for second in range(min(buckets), max(buckets) + 1):
        bucket = buckets.get(second, [])
        latencies = [s.latency_ms for s in bucket]
        seconds.append(
            Second(
                second=second,
                requests=len(bucket),
                errors=sum(1 for s in bucket if not s.ok),
                p50_ms=percentile(latencies, 50),
                p95_ms=percentile(latencies, 95),
            )
        )
    return seconds
