"""Stateful resources are protected from deletion (mandatory in prod through pack config)."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_policies.catalog import STATEFUL_TYPES
from mlops_policies.model import Resource


def stateful_protected(resource: Resource) -> Iterator[str]:
    if resource.type in STATEFUL_TYPES and not resource.protect:
        yield "stateful resource is not protected from deletion (protect: true)"


RESOURCE_CHECKS = {"stateful-protected": (stateful_protected,)}
