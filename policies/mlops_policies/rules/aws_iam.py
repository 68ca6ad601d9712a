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


# role-trust

ROLE = "aws:iam/role:Role"
GITHUB_SUBJECT = "token.actions.githubusercontent.com:sub"


def _root(principal: Any) -> bool:
    """An account as principal: its root ARN or its bare account id."""
    values = (
        [v for k, v in principal.items() for v in as_list(v) if k == "AWS"]
        if isinstance(principal, Mapping)
        else []
    )
    return any(str(v).endswith(":root") or str(v).isdigit() for v in values)


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    condition = statement.get("Condition") or {}
    if not isinstance(condition, Mapping):
        return set()
    return {key for test in condition.values() if isinstance(test, Mapping) for key in test}


def role_trust(resource: Resource) -> Iterator[str]:
    """Who may assume a role is named exactly: never an account's root (which lets
    any principal of that account that IAM allows assume it) nor every
    principal, and a GitHub OIDC trust always pins the token's subject."""
    if resource.type != ROLE:
        return
    for index, statement in enumerate(statements(resource.props.get("assumeRolePolicy"))):
        if statement.get("Effect") != "Allow":
            continue
        label = statement.get("Sid") or f"statement {index}"
        principal = statement.get("Principal")
        if _root(principal):
            yield f"{label} trusts an account's root: any principal IAM allows there may assume it"
        if _wildcard_principal(principal):
            yield f"{label} trusts every principal ('*')"
        federated = principal.get("Federated") if isinstance(principal, Mapping) else None
        github = bool(federated) and "token.actions.githubusercontent.com" in str(federated)
        if github and GITHUB_SUBJECT not in _condition_keys(statement):
            yield f"{label} trusts GitHub Actions without pinning the token's subject"


RESOURCE_CHECKS = {"iam-least-privilege": (least_privilege,), "role-trust": (role_trust,)}
