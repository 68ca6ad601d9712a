"""Every taggable resource carries the platform's ownership and cost tags."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_policies.catalog import REQUIRED_TAGS, TAG_PROPERTY
from mlops_policies.model import Resource


def required_tags(resource: Resource) -> Iterator[str]:
    prop = TAG_PROPERTY.get(resource.type)
    if prop is None:
        return
    present = resource.props.get(prop) or {}
    missing = [key for key in REQUIRED_TAGS if not present.get(key)]
    if missing:
        yield f"{prop} missing: {', '.join(missing)}"


RESOURCE_CHECKS = {"required-tags": (required_tags,)}
