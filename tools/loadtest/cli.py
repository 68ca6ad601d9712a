"""`make loadtest STACK=<stack> ENDPOINT=<name> PAYLOAD=<file>`: load-test one
deployed endpoint and write build/loadtest/<stack>-<endpoint>/.

Exit status: 0 the run made at least one successful request; 1 none succeeded
(the report is still written) or the load generator failed; 2 a refused option,
a settings error, no Pulumi CLI or no such output, or credentials that cannot
sign; 130 interrupted (the report covers what ran).
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tools import stackfiles
from tools.loadtest import options, report, signing, stats, target
from tools.loadtest.options import LoadTestError, RunConfig

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_OUT = ROOT / "build" / "loadtest"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.loadtest", description=__doc__.splitlines()[0]
    )
    p.add_argument("--stack", action="append", default=[], help="the stack (exactly one)")
    p.add_argument("--endpoint", help="the endpoint's name under mlops:endpoints")
    p.add_argument("--payload", help="the file each request sends (JSON or raw bytes)")
    p.add_argument("--content-type", help="default: from the payload's extension")
    p.add_argument("--users", help=f"concurrent users, {options.USERS[0]} to {options.USERS[1]}")
    p.add_argument("--spawn-rate", help="users started per second")
    p.add_argument("--duration", help="seconds of load")
    p.add_argument("--url", help="call this address instead of the cloud's (still signed)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where <stack>-<endpoint>/ goes")
    return p


@dataclass(frozen=True)
class Plan:
    """The options, checked."""

    stack: str
    endpoint: str
    payload: Path
    content_type: str
    users: int
    spawn_rate: float
    duration: int

    @property
    def label(self) -> str:
        return f"{self.stack}/{self.endpoint}"


def plan(args: argparse.Namespace) -> Plan:
    """Every option checked before anything is read or run."""
    if len(args.stack) != 1 or not args.stack[0]:
        raise LoadTestError(
            "make loadtest needs exactly one stack: "
            "make loadtest STACK=<name> ENDPOINT=<name> PAYLOAD=<file>"
        )
    if not args.endpoint:
        raise LoadTestError("ENDPOINT (--endpoint): required, an endpoint under mlops:endpoints")
    users = options.users(args.users)
    rate = options.spawn_rate(args.spawn_rate)
    duration = options.duration(args.duration)
    payload, content_type = options.payload(args.payload, args.content_type)
    stack = stackfiles.stack_name(args.stack[0])
    return Plan(stack, args.endpoint, payload, content_type, users, rate, duration)


def _locust(config: RunConfig) -> tuple[int, bool]:
    """Run the locust process to the end; (exit status, interrupted)."""
    command = [sys.executable, "-m", "tools.loadtest.run"]
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, text=True)
    assert process.stdin is not None
    process.stdin.write(config.to_json())
    process.stdin.close()
    try:
        return process.wait(), False
    except KeyboardInterrupt:
        # The process got the same interrupt: it stops its users and keeps its rows.
        return process.wait(), True


def main(argv: list[str] | None = None, signer: Mapping[str, Any] | None = None) -> int:
    """`signer` replaces the cloud's signer spec (tests: a `static` one)."""
    args = parser().parse_args(argv)
    try:
        checked = plan(args)
        found = target.resolve(checked.stack, checked.endpoint, args.url)
    except LoadTestError as error:
        print(error, file=sys.stderr)
        return error.status
    spec = dict(signer) if signer is not None else found.signer
    directory = Path(args.out) / f"{checked.stack}-{checked.endpoint}"
    directory.mkdir(parents=True, exist_ok=True)
    for name in report.FILES:
        (directory / name).unlink(missing_ok=True)
    facts = _facts(checked, found, spec)
    print(
        f"{checked.label}: {checked.users} users for {checked.duration} s against {facts.url}",
        file=sys.stderr,
    )
    status, interrupted = _locust(
        RunConfig(
            url=found.url,
            name=checked.endpoint,
            label=checked.label,
            payload=str(checked.payload.resolve()),
            content_type=checked.content_type,
            users=checked.users,
            spawn_rate=checked.spawn_rate,
            duration=checked.duration,
            samples=str((directory / report.SAMPLES).resolve()),
            signer=spec,
        )
    )
    samples = stats.read_samples(directory / report.SAMPLES)
    if status == 2 and not samples:
        return 2  # could not sign: the locust process said why, nothing ran
    facts = replace(facts, note=_note(status, interrupted))
    return _conclude(
        checked.label, directory, report.write(directory, facts, samples), status, interrupted
    )


def _facts(checked: Plan, found: target.Target, spec: Mapping[str, Any]) -> report.RunFacts:
    return report.RunFacts(
        stack=checked.stack,
        endpoint=checked.endpoint,
        cloud=found.cloud,
        region=found.region,
        url=target.redacted(found.url),
        signer=signing.describe(spec),
        payload=checked.payload.name,
        payload_bytes=checked.payload.stat().st_size,
        content_type=checked.content_type,
        users=checked.users,
        spawn_rate=checked.spawn_rate,
        duration_s=checked.duration,
        started=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def _note(status: int, interrupted: bool) -> str:
    if interrupted:
        return "Interrupted: the figures cover the requests made until then."
    if status != 0:
        return (
            f"The load generator failed (exit status {status}): the figures cover what it recorded."
        )
    return ""


def _conclude(
    label: str, directory: Path, summary: stats.Summary, status: int, interrupted: bool
) -> int:
    """One line on how it went, and the exit status."""
    where = directory / report.REPORT
    line = (
        f"{label}: {summary.requests} requests, {summary.rps:.1f}/s, "
        f"p50 {summary.p50_ms:.1f} ms, p95 {summary.p95_ms:.1f} ms, "
        f"p99 {summary.p99_ms:.1f} ms, {100 * summary.error_rate:.2f}% errors -> {where}"
    )
    if interrupted:
        print(f"{line} (interrupted)", file=sys.stderr)
        return 130
    if status != 0:
        print(f"{line}; the load generator failed (exit status {status})", file=sys.stderr)
        return 1
    if summary.successes == 0:
        common = summary.error_kinds[0][0] if summary.error_kinds else "none was made"
        print(
            f"{label}: no request succeeded ({summary.requests} requests, "
            f"most common error: {common}); see {where}",
            file=sys.stderr,
        )
        return 1
    print(line)
    return 0
