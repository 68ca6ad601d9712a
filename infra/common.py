"""Cross-cutting interfaces every component takes the same way.

`Baseline` carries the stack-wide concerns (names, tags/labels, deletion
protection, placement); each cloud's key component exposes the same
`EncryptionKey` shape. Components take these, never loose keyword arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from infra.naming import Namer
from infra.settings import PlatformSettings


@dataclass(frozen=True)
class Baseline:
    """What every component of a stack shares."""

    namer: Namer
    tags: Mapping[str, str]
    protect: bool
    region: str

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> Baseline:
        return cls(
            namer=Namer(project="mlops", stack=settings.stack),
            tags=dict(settings.tags),
            protect=settings.protect,
            region=settings.region,
        )

    def child(self, parent: pulumi.Resource, **extra: object) -> pulumi.ResourceOptions:
        """Options for a stateless child: parented, nothing else inherited."""
        return pulumi.ResourceOptions(parent=parent, **extra)  # type: ignore[arg-type]

    def stateful(self, parent: pulumi.Resource, **extra: object) -> pulumi.ResourceOptions:
        """Options for a child that holds data or identity: protected and retained in prod."""
        return pulumi.ResourceOptions(
            parent=parent,
            protect=self.protect,
            retain_on_delete=self.protect,
            **extra,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class EncryptionKey:
    """A customer-managed key: `id` is what services reference (ARN, key id or resource id)."""

    id: pulumi.Output[str]
    resource: pulumi.Resource


@dataclass(frozen=True)
class PrivateNetwork:
    """Where a workload runs without a public address, the same shape on every cloud:
    the network, its private workload subnets (one per zone on AWS, one regional
    subnet on GCP and Azure) and the zones workloads spread over."""

    id: pulumi.Output[str]
    subnet_ids: Sequence[pulumi.Output[str]]
    zones: pulumi.Output[list[str]]
    resource: pulumi.Resource
