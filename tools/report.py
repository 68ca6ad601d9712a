"""The Markdown summary of one stack's plan: what a pull-request comment shows."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from mlops_policies.catalog import NAME_PROPERTY, STATEFUL_TYPES

from tools.cost import HOURS_PER_MONTH, CostLine, CostReport, Total, estimate, money

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


UNKNOWN_PRICE = "price unknown"


def _hourly(amount: float | None, currency: str) -> str:
    return UNKNOWN_PRICE if amount is None else money(amount, currency, places=4)


def _monthly(amount: float | None, currency: str) -> str:
    return UNKNOWN_PRICE if amount is None else money(amount, currency)


def _spot(line: CostLine, currency: str) -> str:
    if not line.spot:
        return "—"
    if line.spot_hourly is None:
        return "spot price unknown"
    discount = line.spot_discount
    off = f" ({discount:.0%} off)" if discount is not None else ""
    return money(line.spot_hourly, currency, places=4) + off


def _cost_total(total: Total, currency: str) -> str:
    if total.amount is None:
        return UNKNOWN_PRICE
    amount = money(total.amount, currency)
    return f"at least {amount} (partial)" if total.partial else amount


def _cost(cost: CostReport) -> list[str]:
    """Endpoints and pools priced at min and max scale, with the table's source and date."""
    currency = cost.currency
    lines = [
        "### Cost",
        "",
        f"Compute of every endpoint replica and pool node, {HOURS_PER_MONTH} hours a month, "
        f"{currency}; spot pools at their spot price, GCP nodes as machine plus accelerators, "
        "TPU slices per chip.",
        "",
    ]
    if not cost.lines:
        lines += ["No endpoints or accelerator pools: no compute to price.", ""]
    else:
        lines += [
            "| name | kind | type | replicas / nodes | on-demand per hour | spot per hour "
            "| a month at min | a month at max |",
            "|---|---|---|--:|--:|--:|--:|--:|",
        ]
        for line in cost.lines:
            machine = f"`{line.type}`" + (f" + {line.accelerator}" if line.accelerator else "")
            lines.append(
                f"| `{line.name}` | {line.kind} | {machine} | {line.min_count} to {line.max_count} "
                f"| {_hourly(line.on_demand_hourly, currency)} | {_spot(line, currency)} "
                f"| {_monthly(line.monthly_at_min, currency)} "
                f"| {_monthly(line.monthly_at_max, currency)} |"
            )
        lines += [
            "",
            f"**Total a month: {_cost_total(cost.at_min, currency)} at min scale, "
            f"{_cost_total(cost.at_max, currency)} at max scale.**",
            "",
        ]
    if cost.missing:
        lines += ["Totals are partial; no price for:", "", *(f"- {m}" for m in cost.missing), ""]
    prices = cost.prices
    lines += [f"Prices: `{prices.file}`, taken {prices.taken}, from {prices.source}.", ""]
    for role, catalog in (("endpoint", prices.endpoint), ("pool", prices.pool)):
        as_of = f", figures as of {catalog.as_of}" if catalog.as_of else ""
        copied = f", copied from {catalog.copied_from}" if catalog.copied_from else ""
        lines.append(f"- {role} prices: {catalog.service}, {catalog.source}{as_of}{copied}")
    return [*lines, ""]


def _outputs(outputs: dict[str, Any]) -> list[str]:
    lines = ["| output | value |", "|---|---|"]
    for key in sorted(outputs):
        value = json.dumps(outputs[key], sort_keys=True)
        lines.append(f"| {key} | `{value}` |")
    return lines


def render(plan: StackPlan, cost: CostReport | None = None) -> str:
    regs = plan.registrations
    cost = cost if cost is not None else estimate(plan.settings)
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
        *_cost(cost),
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
