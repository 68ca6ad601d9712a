"""Offline plan: run the real Pulumi program on mocks, no CLI and no cloud account.

    python -m tools.plan --out build/plan [--stack NAME ...]

Writes <out>/<stack>.json in the shape of `pulumi preview --json` (plus the
offline `policyViolations` list), <out>/<stack>.md, the report a pull
request shows, and <out>/<stack>.cost.json, the monthly cost of its endpoints
and pools (tools/cost.py). Exit status: 0 clean, 1 a mandatory policy
violation, 2 a settings error (one line on stderr, nothing written for that
stack).
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import json
import runpy
import sys
import time
import unittest.mock
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "policies")]

import pulumi  # noqa: E402
from pulumi.runtime import set_all_config, set_mocks  # noqa: E402
from pulumi.runtime.stack import wait_for_rpcs  # noqa: E402
from pulumi.runtime.sync_await import _sync_await  # noqa: E402

from infra.settings import PlatformSettings, SettingsError, load  # noqa: E402
from tools import cost, report, stackfiles  # noqa: E402
from tools.mockcloud import CloudMocks, RecordingMonitor, Registration  # noqa: E402
from tools.policy_run import Finding, evaluate  # noqa: E402

PROGRAM = ROOT / "infra" / "__main__.py"
PROJECT = "mlops"
# A plan imports the provider SDKs (thousands of classes) and builds one large
# graph of resources and outputs that lives until the plan is written. With
# Python's default thresholds the cycle collector walks all of it again every
# few hundred allocations, a third of a plan's time; these let it run rarely.
GC_THRESHOLDS = (50_000, 50, 100)


def tune_collector() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass
class StackPlan:
    stack: str
    settings: PlatformSettings
    registrations: list[Registration]
    outputs: dict[str, Any]
    findings: list[Finding]
    # The stack's config as the program read it, as `pulumi preview --json` shows it.
    config: dict[str, str] = field(default_factory=dict)

    @property
    def mandatory(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "mandatory"]

    @property
    def advisory(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "advisory"]

    def preview_json(self) -> dict[str, Any]:
        steps = [_step(r) for r in sorted(self.registrations, key=lambda r: r.urn)]
        return {
            "config": {key: _shown(value) for key, value in sorted(self.config.items())},
            "changeSummary": {"create": len(steps)},
            "policyViolations": [f.as_json() for f in self.findings],
            "steps": steps,
        }


def _shown(value: str) -> str:
    """A config value as the preview shows it: a secure value only as `[secret]`."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return "[secret]" if isinstance(decoded, dict) and set(decoded) == {"secure"} else value


def _step(reg: Registration) -> dict[str, Any]:
    return {
        "op": "create",
        "urn": reg.urn,
        "newState": {
            "aliases": reg.aliases,
            "custom": reg.custom,
            "dependencies": reg.dependencies,
            "inputs": _plain(reg.inputs),
            "parent": reg.parent,
            "propertyDependencies": reg.property_dependencies,
            "protect": reg.protect,
            "provider": reg.provider,
            "retainOnDelete": reg.retain_on_delete,
            "type": reg.type,
            "urn": reg.urn,
        },
    }


def _plain(value: Any) -> Any:
    """Whole numbers back to ints: the engine's wire format carries every number as a double."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _resolve(value: Any) -> Any:
    if isinstance(value, pulumi.Output):
        return _resolve(_sync_await(value.future()))
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(v) for v in value]
    return value


def plan_values(stack: str, values: dict[str, Any]) -> StackPlan:
    """Plan a stack from config values (as a stack file holds them, defaults merged)."""
    config = stackfiles.as_engine_strings(values)
    # Validate first, exactly as the program will: a bad file plans nothing.
    settings = load(stack, config)
    # A fresh context per stack: the SDK keeps its root resource and config in ContextVars.
    return contextvars.Context().run(_run_program, stack, settings, config)


def _alias_urn_unused(*_args: Any) -> Any:
    """Stands in for `pulumi.resource.collapse_alias_to_urn` while planning offline.

    The SDK turns every alias of every resource into a URN output when the
    resource is constructed, for children to inherit when the engine cannot take
    alias specs. The mock monitor takes them (the specs are what the plan
    records), so those outputs are never read; azure-native gives each resource
    a type alias per API version, over a thousand a stack, and computing them
    was a third of an Azure plan's time. Not even an output is made for them."""
    return ""


def _no_stack_trace() -> Any:
    """Stands in for the SDK's `_get_stack_trace` while planning offline: it walks
    the interpreter's stack at every registration to tell the engine which line
    made the resource, which the plan does not record."""
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


def _run_program(stack: str, settings: PlatformSettings, config: dict[str, str]) -> StackPlan:
    set_all_config(config)
    monitor = RecordingMonitor(CloudMocks(settings.region, settings.gcp_project))
    # preview=False: mocks resolve every output, so policies read concrete values.
    set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    with (
        unittest.mock.patch.object(pulumi.resource, "collapse_alias_to_urn", _alias_urn_unused),
        unittest.mock.patch.object(pulumi.runtime.resource, "_get_stack_trace", _no_stack_trace),
    ):
        runpy.run_path(str(PROGRAM), run_name="__main__")
    _sync_await(wait_for_rpcs())
    root = pulumi.runtime.get_root_resource()
    outputs = _resolve(dict(getattr(root, "outputs", {})))
    findings = evaluate(monitor.registrations, settings.environment)
    return StackPlan(stack, settings, monitor.registrations, outputs, findings, dict(config))


def plan_stack(stack: str) -> StackPlan:
    return plan_values(stack, stackfiles.stack_values(stack))


# The cost estimate beside the plan: the plan itself keeps the shape of `pulumi preview --json`.
COST_SUFFIX = "cost.json"


def write(plan: StackPlan, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    body = json.dumps(plan.preview_json(), indent=2, sort_keys=True) + "\n"
    (out / f"{plan.stack}.json").write_text(body)
    estimate = cost.estimate(plan.settings)
    figures = json.dumps(estimate.as_json(), indent=2, sort_keys=True) + "\n"
    (out / f"{plan.stack}.{COST_SUFFIX}").write_text(figures)
    (out / f"{plan.stack}.md").write_text(report.render(plan, estimate))


def forget(out: Path, stack: str) -> None:
    """Remove a stack's plan files: a stack that fails to plan leaves none behind."""
    for suffix in ("json", "md", COST_SUFFIX):
        (out / f"{stack}.{suffix}").unlink(missing_ok=True)


def prune(out: Path, stacks: list[str]) -> None:
    """Remove the plans of stacks whose files no longer exist."""
    if out.is_dir():
        for path in sorted(out.glob("*.json")):
            if not path.name.endswith(f".{COST_SUFFIX}") and path.stem not in stacks:
                forget(out, path.stem)
        for path in sorted(out.glob(f"*.{COST_SUFFIX}")):
            if path.name.removesuffix(f".{COST_SUFFIX}") not in stacks:
                path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "plan")
    parser.add_argument(
        "--stack",
        action="append",
        help="stack name or stack file name/path (repeatable); default all",
    )
    args = parser.parse_args(argv)
    tune_collector()
    stacks = [stackfiles.stack_name(s) for s in args.stack or []] or stackfiles.stack_names()
    if not args.stack:
        prune(args.out, stacks)
    status = 0
    for stack in stacks:
        started = time.perf_counter()
        try:
            plan = plan_stack(stack)
        except (SettingsError, FileNotFoundError) as error:
            print(str(error), file=sys.stderr)
            forget(args.out, stack)
            status = 2
            continue
        write(plan, args.out)
        seconds = time.perf_counter() - started
        print(
            f"{stack}: {len(plan.registrations)} resources, "
            f"{len(plan.mandatory)} mandatory / {len(plan.advisory)} advisory violations, "
            f"{seconds:.1f} s"
        )
        for finding in plan.mandatory:
            print(
                f"  mandatory {finding.policy}: {finding.message} ({finding.urn})", file=sys.stderr
            )
        if plan.mandatory and status == 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
