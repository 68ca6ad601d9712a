"""Stateful resources are protected from deletion (mandatory in prod through pack config)."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_policies.catalog import STATEFUL_TYPES
from mlops_policies.model import Resource, Rule


def stateful_protected(resource: Resource) -> Iterator[str]:
    if resource.type in STATEFUL_TYPES and not resource.protect:
        yield "stateful resource is not protected from deletion (protect: true)"


RULES = (
    Rule(
        name="stateful-protected",
        description="Resources that hold data or keys are protected from deletion.",
        level="mandatory",
        resource=stateful_protected,
        remediation="Deploy prod stacks, where the platform sets protect and retainOnDelete.",
    ),
)
