"""The one place rules become CrossGuard policies. The pack (policies/__main__.py)
and the offline run (tools/policy_run.py) both call `crossguard_policies()`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlops_policies.exemptions import exemption_for
from mlops_policies.model import Level, Resource, Rule
from mlops_policies.rules import RULES

PACK_NAME = "mlops-guardrails"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
LEVELS: dict[str, EnforcementLevel] = {
    "mandatory": EnforcementLevel.MANDATORY,
    "advisory": EnforcementLevel.ADVISORY,
    "disabled": EnforcementLevel.DISABLED,
}


def from_validation_args(args: ResourceValidationArgs) -> Resource:
    return Resource(
        type=args.resource_type,
        urn=args.urn,
        name=args.name,
        props=args.props,
        protect=bool(args.opts.protect),
    )


def from_policy_resource(resource: PolicyResource) -> Resource:
    return Resource(
        type=resource.resource_type,
        urn=resource.urn,
        name=resource.name,
        props=resource.props,
        protect=bool(resource.opts.protect),
        property_dependencies={
            prop: tuple(dep.urn for dep in deps)
            for prop, deps in (resource.property_dependencies or {}).items()
        },
    )


def _metadata(rule: Rule) -> dict[str, Any]:
    schema = None
    if rule.config_properties:
        schema = PolicyConfigSchema(properties=dict(rule.config_properties))
    return {
        "name": rule.name,
        "description": rule.description,
        "enforcement_level": LEVELS[rule.level],
        "remediation_steps": rule.remediation or None,
        "config_schema": schema,
    }


def _resource_policy(rule: Rule) -> Policy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        resource = from_validation_args(args)
        if exemption_for(rule.name, resource):
            return
        for _urn, message in rule.findings([resource], args.get_config()):
            report(message, None)

    return ResourceValidationPolicy(validate=validate, **_metadata(rule))


def _stack_policy(rule: Rule) -> Policy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources = [from_policy_resource(r) for r in args.resources]
        by_urn = {r.urn: r for r in resources}
        for urn, message in rule.findings(resources):
            if not exemption_for(rule.name, by_urn.get(urn)):
                report(message, urn)

    return StackValidationPolicy(validate=validate, **_metadata(rule))


def crossguard_policies() -> list[Policy]:
    """A rule with relational checks needs the whole stack; the others run per resource."""
    return [_stack_policy(r) if r.stack_checks else _resource_policy(r) for r in RULES]


def _pack_config(environment: str) -> Mapping[str, Any]:
    return json.loads((CONFIG_DIR / f"{environment}.json").read_text())


def environment_settings(environment: str) -> dict[str, dict[str, Any]]:
    """Each rule's settings in the environment's pack config (all but the level),
    as the engine hands them to the policy (`args.get_config()`)."""
    found: dict[str, dict[str, Any]] = {}
    for name, value in _pack_config(environment).items():
        if isinstance(value, dict):
            found[name] = {k: v for k, v in value.items() if k != "enforcementLevel"}
    return found


def environment_levels(environment: str) -> dict[str, Level]:
    """Each rule's enforcement level once the environment's pack config is applied,
    as `pulumi preview --policy-pack-config policies/config/<env>.json` applies it."""
    levels: dict[str, Level] = {rule.name: rule.level for rule in RULES}
    for name, value in _pack_config(environment).items():
        if isinstance(value, dict):
            level = value.get("enforcementLevel", levels.get(name, "mandatory"))
        else:
            level = value
        if level not in LEVELS or (name != "all" and name not in levels):
            raise ValueError(f"policies/config/{environment}.json: {name}: unknown policy or level")
        if name == "all":
            levels = dict.fromkeys(levels, level)
        else:
            levels[name] = level
    return levels
