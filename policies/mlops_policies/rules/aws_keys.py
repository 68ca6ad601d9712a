"""Customer-managed keys rotate and carry an explicit policy."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_policies.model import Resource

KMS_KEY = "aws:kms/key:Key"
MAX_ROTATION_DAYS = 365


def key_rotation(resource: Resource) -> Iterator[str]:
    if resource.type != KMS_KEY:
        return
    props = resource.props
    if props.get("enableKeyRotation") is not True:
        yield "KMS key rotation is off"
    elif int(props.get("rotationPeriodInDays") or MAX_ROTATION_DAYS) > MAX_ROTATION_DAYS:
        yield f"KMS key rotates less often than every {MAX_ROTATION_DAYS} days"
    if not props.get("policy"):
        yield "KMS key has no explicit key policy (the default grants the whole account)"


RESOURCE_CHECKS = {"key-rotation": (key_rotation,)}
