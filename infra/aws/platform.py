"""Everything an AWS stack provisions, wired from the settings model."""

from __future__ import annotations

from typing import Any

from infra.aws.alerts import AlertRoute, AlertRouteArgs
from infra.aws.audit import AuditTrail, AuditTrailArgs
from infra.aws.context import AwsAccount
from infra.aws.endpoint import ModelEndpoint, ModelEndpointArgs, ServingPlacement
from infra.aws.identity import PlatformRoles, PlatformRolesArgs
from infra.aws.key import PlatformKey, PlatformKeyArgs
from infra.aws.lake import DataLake, DataLakeArgs
from infra.aws.network import Network, NetworkArgs, network_outputs
from infra.aws.pool import AcceleratorPool, AcceleratorPoolArgs
from infra.aws.registry import (
    ContainerRegistry,
    ContainerRegistryArgs,
    ModelRegistry,
    ModelRegistryArgs,
)
from infra.aws.vpc_endpoints import EndpointScope
from infra.common import Baseline
from infra.settings import PlatformSettings


def build_aws(settings: PlatformSettings) -> dict[str, Any]:
    baseline = Baseline.from_settings(settings)
    namer = baseline.namer
    account = AwsAccount.lookup(settings.region)
    key = PlatformKey(
        namer.name("key"),
        PlatformKeyArgs(baseline, account, autoscaling=bool(settings.accelerator_pools)),
    )
    roles = PlatformRoles(
        namer.name("roles"),
        PlatformRolesArgs(
            baseline,
            account,
            ci=settings.ci,
            environment=settings.environment,
            bucket_prefix=namer.prefix,
            key_arn=key.key.arn,
        ),
    )
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
        "runtimeRoleArn": roles.runtime.arn,
    }
    if roles.publisher is not None:
        outputs["publisherRoleArn"] = roles.publisher.arn
        # What a publishing repository passes to .github/workflows/publish-image.yml.
        outputs["publishInputs"] = {
            "cloud": "aws",
            "aws-role-arn": roles.publisher.arn,
            "aws-region": settings.region,
        }
    if roles.preview is not None and roles.deploy is not None:
        # The workflows' variables: the repository's for previews, the stack's
        # GitHub environment's for deploys (an environment's value wins there).
        environment = (settings.ci.environment if settings.ci else None) or settings.environment
        outputs["ciVariables"] = {
            "repository": {"AWS_ROLE_ARN": roles.preview.arn, "AWS_REGION": settings.region},
            f"environment:{environment}": {
                "AWS_ROLE_ARN": roles.deploy.arn,
                "AWS_REGION": settings.region,
            },
        }
    if lake.logs is not None:
        outputs["lakeAccessLogBucket"] = lake.logs.bucket.bucket
    model_group = None
    if settings.registries.models.enabled:
        models = ModelRegistry(namer.name("models"), ModelRegistryArgs(baseline))
        model_group = models.group.model_package_group_name
        outputs["modelPackageGroup"] = model_group
    audit = AuditTrail(
        namer.name("audit"),
        AuditTrailArgs(
            baseline=baseline,
            account=account,
            settings=settings.audit,
            encryption=key.encryption,
            lake_bucket_arns=list(lake.bucket_arns.values()),
            production=settings.environment == "prod",
            access_log_bucket=lake.logs.bucket.bucket if lake.logs is not None else None,
        ),
    )
    outputs |= {"auditTrailArn": audit.trail.arn, "auditBucket": audit.bucket.bucket}
    route = AlertRoute(
        namer.name("alerts"),
        AlertRouteArgs(
            baseline=baseline,
            account=account,
            settings=settings.alerts,
            encryption=key.encryption,
            drift=any(e.monitored for e in settings.endpoints.values()),
        ),
    )
    outputs["alertTopicArn"] = route.topic.arn
    placement = ServingPlacement(
        vpc_id=network.vpc.id,
        subnet_ids=network.subnet_ids,
        vpc_cidr=settings.network.cidr,
        bucket_names=lake.bucket_names,
        repository_urls=containers.repository_urls,
        model_group=model_group,
        runtime_role=roles.runtime,
    )
    endpoints = {
        name: ModelEndpoint(
            namer.name("serve", name),
            ModelEndpointArgs(
                baseline=baseline,
                account=account,
                endpoint=name,
                settings=endpoint,
                placement=placement,
                encryption=key.encryption,
                capture_zone=endpoint.capture_zone(settings.lake.zones),
                alert_actions=route.actions,
                drift_baseline=endpoint.drift_baseline(name, settings.lake.zones),
            ),
        )
        for name, endpoint in sorted(settings.endpoints.items())
    }
    if endpoints:
        outputs["endpointNames"] = {n: e.endpoint.name for n, e in endpoints.items()}
    pools = {
        name: AcceleratorPool(
            namer.name("pool", name),
            AcceleratorPoolArgs(
                baseline=baseline,
                account=account,
                pool=name,
                settings=pool,
                vpc_id=network.vpc.id,
                subnet_ids=network.subnet_ids,
                vpc_cidr=settings.network.cidr,
                encryption=key.encryption,
                bucket_arns=lake.bucket_arns,
                repository_arns=list(containers.repository_arns.values()),
            ),
        )
        for name, pool in sorted(settings.accelerator_pools.items())
    }
    if pools:
        outputs["acceleratorPools"] = {n: p.group.name for n, p in pools.items()}
    return outputs
