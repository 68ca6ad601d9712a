"""Feed recorded resources to the CrossGuard policies through pulumi_policy's
public argument classes: the same rules, the same props, the same verdicts as
`pulumi preview --policy-pack policies --policy-pack-config policies/config/<env>.json`."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_policies.pack import crossguard_policies, environment_levels, environment_settings
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from tools.mockcloud import Registration


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    message: str
    urn: str

    def as_json(self) -> dict[str, str]:
        return {
            "enforcementLevel": self.level,
            "message": self.message,
            "policyName": self.policy,
            "urn": self.urn,
        }


def _options(reg: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=reg.protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=reg.parent or None,
    )


def _policy_resources(
    registrations: Sequence[Registration], props: Mapping[str, Any]
) -> list[PolicyResource]:
    by_urn: dict[str, PolicyResource] = {}
    for reg in registrations:
        by_urn[reg.urn] = PolicyResource(
            resource_type=reg.type,
            props=props[reg.urn],
            urn=reg.urn,
            name=reg.name,
            opts=_options(reg),
            provider=None,
            parent=None,
            dependencies=[],
            property_dependencies={},
        )
    for reg in registrations:
        resource = by_urn[reg.urn]
        resource.parent = by_urn.get(reg.parent)
        resource.dependencies = [by_urn[u] for u in reg.dependencies if u in by_urn]
        resource.property_dependencies = {
            prop: [by_urn[u] for u in urns if u in by_urn]
            for prop, urns in reg.property_dependencies.items()
        }
    return [by_urn[reg.urn] for reg in registrations]


def _settle(result: Any) -> None:
    if inspect.isawaitable(result):
        asyncio.get_event_loop().run_until_complete(result)


def evaluate(registrations: Sequence[Registration], environment: str) -> list[Finding]:
    levels = environment_levels(environment)
    settings = environment_settings(environment)
    resources = [r for r in registrations if r.type != "pulumi:pulumi:Stack"]
    # As the engine hands props to a policy: lists and maps behind read-only
    # proxies, made once per resource and read by every policy.
    props = {r.urn: unknown_checking_proxy(r.inputs) for r in resources}
    stack_resources: list[PolicyResource] | None = None
    findings: list[Finding] = []
    for policy in crossguard_policies():
        level = levels[policy.name]
        if level == "disabled":
            continue

        def report(message: str, urn: str | None, *, _p: str = policy.name, _u: str = "") -> None:
            findings.append(Finding(_p, levels[_p], message, urn or _u))

        if isinstance(policy, ResourceValidationPolicy):
            for reg in resources:
                args = ResourceValidationArgs(
                    reg.type,
                    props[reg.urn],
                    reg.urn,
                    reg.name,
                    _options(reg),
                    None,
                    config=settings.get(policy.name, {}),
                )
                _settle(policy.validate(args, lambda m, u, _u=reg.urn, _r=report: _r(m, u, _u=_u)))
        else:
            if stack_resources is None:
                stack_resources = _policy_resources(resources, props)
            _settle(policy.validate(StackValidationArgs(stack_resources), report))
    return sorted(findings, key=lambda f: (f.level != "mandatory", f.policy, f.urn, f.message))
