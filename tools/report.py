"""The Markdown summary of one stack's plan: what a pull-request comment shows."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from mlops_policies.catalog import NAME_PROPERTY, STATEFUL_TYPES

if TYPE_CHECKING:
    from infra.settings import EndpointSettings
    from tools.mockcloud import Registration
    from tools.plan import StackPlan


def _short(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _cloud_name(reg: Registration) -> str:
    """The resource's name in the cloud, or how it gets one."""
    prop = NAME_PROPERTY.get(reg.type)
    if prop is None:
        return "assigned by the cloud"
    value = reg.inputs.get(prop)
    return f"`{value}`" if isinstance(value, str) else "autonamed (suffix at create)"


def _policy_section(plan: StackPlan) -> list[str]:
    if not plan.findings:
        return ["All policies pass."]
    lines = ["| level | policy | resource | message |", "|---|---|---|---|"]
    for f in plan.findings:
        lines.append(f"| {f.level} | {f.policy} | `{_short(f.urn)}` | {f.message} |")
    return lines


def _model(endpoint: EndpointSettings) -> str:
    model = endpoint.model
    if model.registry_version is not None:
        return f"registry version {model.registry_version}"
    assert model.image is not None  # settings require one source
    pin = f":{model.image.tag}" if model.image.tag else f"@{model.image.digest}"
    return f"`{model.image.repository}{pin}`"


def _rollout(endpoint: EndpointSettings) -> str:
    rollout = endpoint.rollout
    if rollout.strategy == "canary":
        return f"canary {rollout.canary_percent}%, {rollout.wait_minutes} min bake"
    if rollout.strategy == "linear":
        return f"linear {rollout.linear_step_percent}% steps, {rollout.wait_minutes} min each"
    return "all at once"


def _endpoints(plan: StackPlan) -> list[str]:
    endpoints = plan.settings.endpoints
    if not endpoints:
        return []
    lines = [
        "### Endpoints",
        "",
        "| endpoint | model | instance type | replicas | autoscaling | rollout | capture |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in sorted(endpoints.items()):
        scaling = f"{e.autoscaling.metric} {e.autoscaling.target}"
        machine = f"`{e.instance_type}`"
        if e.accelerator is not None:
            machine += f" + {e.accelerator.count} x `{e.accelerator.type}`"
        replicas = f"{e.min_replicas} to {e.max_replicas}"
        lines.append(
            f"| `{name}` | {_model(e)} | {machine} | {replicas} "
            f"| {scaling} | {_rollout(e)} | {e.data_capture.percent}% |"
        )
    return [*lines, ""]


def _outputs(outputs: dict[str, Any]) -> list[str]:
    lines = ["| output | value |", "|---|---|"]
    for key in sorted(outputs):
        value = json.dumps(outputs[key], sort_keys=True)
        lines.append(f"| {key} | `{value}` |")
    return lines


def render(plan: StackPlan) -> str:
    regs = plan.registrations
    counts = Counter(r.type for r in regs)
    stateful = sorted((r for r in regs if r.type in STATEFUL_TYPES), key=lambda r: r.urn)
    s = plan.settings
    verdict = "FAIL" if plan.mandatory else "pass"
    lines = [
        f"## Plan: `{plan.stack}` ({s.cloud}, {s.environment}, {s.region})",
        "",
        f"**{len(regs)} resources** to create (the stack included, as `pulumi preview` "
        f"counts); policies: **{verdict}** "
        f"({len(plan.mandatory)} mandatory, {len(plan.advisory)} advisory violations).",
        "",
        "### Policy results",
        "",
        *_policy_section(plan),
        "",
        *_endpoints(plan),
        "### Stateful resources",
        "",
        "| resource | type | name in the cloud | protect | retainOnDelete |",
        "|---|---|---|---|---|",
        *(
            f"| `{r.name}` | `{r.type}` | {_cloud_name(r)} | {_yes(r.protect)} "
            f"| {_yes(r.retain_on_delete)} |"
            for r in stateful
        ),
        "",
        "<details><summary>Resources by type</summary>",
        "",
        "| type | count |",
        "|---|---|",
        *(f"| `{t}` | {n} |" for t, n in sorted(counts.items())),
        "",
        "</details>",
        "",
        "<details><summary>Stack outputs</summary>",
        "",
        *_outputs(plan.outputs),
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)
