"""Everything an AWS stack provisions, wired from the settings model."""

from __future__ import annotations

from typing import Any

from infra.aws.context import AwsAccount
from infra.aws.endpoints import EndpointScope
from infra.aws.identity import PlatformRoles, PlatformRolesArgs
from infra.aws.key import PlatformKey, PlatformKeyArgs
from infra.aws.lake import DataLake, DataLakeArgs
from infra.aws.network import Network, NetworkArgs, network_outputs
from infra.aws.registry import (
    ContainerRegistry,
    ContainerRegistryArgs,
    ModelRegistry,
    ModelRegistryArgs,
)
from infra.common import Baseline
from infra.settings import PlatformSettings


def build_aws(settings: PlatformSettings) -> dict[str, Any]:
    baseline = Baseline.from_settings(settings)
    namer = baseline.namer
    account = AwsAccount.lookup(settings.region)
    key = PlatformKey(namer.name("key"), PlatformKeyArgs(baseline, account))
    roles = PlatformRoles(namer.name("roles"), PlatformRolesArgs(baseline, account))
    lake = DataLake(
        namer.name("lake"),
        DataLakeArgs(
            baseline=baseline, account=account, lake=settings.lake, encryption=key.encryption
        ),
    )
    containers = ContainerRegistry(
        namer.name("images"),
        ContainerRegistryArgs(
            baseline=baseline,
            settings=settings.registries.containers,
            encryption=key.encryption,
            roles=roles,
        ),
    )
    # Built after the services it reaches privately: its endpoint policies name them.
    network = Network(
        namer.name("network"),
        NetworkArgs(
            baseline=baseline,
            account=account,
            settings=settings.network,
            encryption=key.encryption,
            scope=EndpointScope(
                bucket_arns=list(lake.bucket_arns.values()),
                repository_arns=list(containers.repository_arns.values()),
                key_arn=key.key.arn,
            ),
            nat_per_zone=settings.environment == "prod",
        ),
    )
    outputs: dict[str, Any] = {
        **network_outputs(network),
        "keyArn": key.key.arn,
        "lakeBucketNames": lake.bucket_names,
        "lakeBucketArns": lake.bucket_arns,
        "containerRepositoryUrls": containers.repository_urls,
        "publisherRoleArn": roles.publisher.arn,
        "runtimeRoleArn": roles.runtime.arn,
    }
    if lake.logs is not None:
        outputs["lakeAccessLogBucket"] = lake.logs.bucket.bucket
    if settings.registries.models.enabled:
        models = ModelRegistry(namer.name("models"), ModelRegistryArgs(baseline))
        outputs["modelPackageGroup"] = models.group.model_package_group_name
    return outputs
