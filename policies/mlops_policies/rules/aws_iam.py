"""Least privilege in every policy document: no Allow to every principal, no `*` action."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlops_policies.catalog import POLICY_DOCUMENT_PROPERTY
from mlops_policies.model import Resource, as_list
from mlops_policies.rules.aws_storage import statements


def _wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in as_list(v) for v in principal.values())
    return False


def least_privilege(resource: Resource) -> Iterator[str]:
    prop = POLICY_DOCUMENT_PROPERTY.get(resource.type)
    if prop is None:
        return
    for index, statement in enumerate(statements(resource.props.get(prop))):
        # A Deny naming every principal restricts; only grants are checked.
        if statement.get("Effect") != "Allow":
            continue
        label = statement.get("Sid") or f"statement {index}"
        if _wildcard_principal(statement.get("Principal")):
            yield f"{label} allows every principal ('*')"
        wildcards = [a for a in as_list(statement.get("Action")) if "*" in str(a)]
        if wildcards:
            yield f"{label} allows wildcard actions {sorted(wildcards)}"
        if statement.get("NotAction") is not None:
            yield f"{label} allows by NotAction, which grants everything not listed"


RESOURCE_CHECKS = {"iam-least-privilege": (least_privilege,)}
