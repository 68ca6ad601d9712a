"""Everything a GCP stack provisions, wired from the settings model.

The Vertex AI Model Registry is built into every project and region and has no
Pulumi resource: models reach it by upload (`gcloud ai models upload`, or
`aiplatform.Model.upload` in a pipeline) from artifacts in the lake. With
`registries.models.enabled` nothing is provisioned; the stack exports where the
uploads land instead, so the setting is never silently dropped.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from infra.common import Baseline
from infra.gcp.alerts import AlertRoute, AlertRouteArgs
from infra.gcp.audit import AuditLogs, AuditLogsArgs
from infra.gcp.ci import CiIdentities, CiIdentitiesArgs
from infra.gcp.context import GcpProject
from infra.gcp.endpoint import ModelEndpoint, ModelEndpointArgs, Serving, ServingArgs
from infra.gcp.key import PlatformKey, PlatformKeyArgs
from infra.gcp.lake import DataLake, DataLakeArgs
from infra.gcp.network import Network, NetworkArgs, network_outputs
from infra.gcp.pool import AcceleratorPool, AcceleratorPoolArgs, PoolAgents, PoolAgentsArgs
from infra.gcp.registry import ContainerRegistry, ContainerRegistryArgs
from infra.gcp.services import ProjectServices, ProjectServicesArgs
from infra.settings import PlatformSettings


class _Foundation(NamedTuple):
    """What the stack's endpoints and pools are built on."""

    baseline: Baseline
    project: GcpProject
    services: ProjectServices
    key: PlatformKey
    network: Network
    lake: DataLake
    registry: ContainerRegistry


def build_gcp(settings: PlatformSettings) -> dict[str, Any]:
    baseline = Baseline.from_settings(settings)
    # settings.load requires gcp:project on GCP; this only narrows the type.
    assert settings.gcp_project is not None
    project = GcpProject(project_id=settings.gcp_project, region=settings.region)
    containers = settings.registries.containers
    services = ProjectServices(
        baseline.namer.name("apis"),
        ProjectServicesArgs(
            baseline=baseline,
            container_scanning=containers.scan_on_push,
            serving=bool(settings.endpoints),
            pool_kinds=frozenset(p.kind for p in settings.accelerator_pools.values()),
            ci=settings.ci is not None,
        ),
    )
    key = PlatformKey(baseline.namer.name("key"), PlatformKeyArgs(baseline, requires=[services]))
    lake = DataLake(
        baseline.namer.name("lake"),
        DataLakeArgs(
            baseline=baseline, project=project, lake=settings.lake, encryption=key.encryption
        ),
    )
    registry = ContainerRegistry(
        baseline.namer.name("registry"),
        ContainerRegistryArgs(
            baseline=baseline,
            containers=containers,
            encryption=key.encryption,
            requires=[services],
        ),
    )
    network = Network(
        baseline.namer.name("network"),
        NetworkArgs(
            baseline=baseline, project=project, settings=settings.network, requires=[services]
        ),
    )
    outputs: dict[str, Any] = {
        **network_outputs(network),
        "keyId": key.key.id,
        "keyRing": key.key_ring.id,
        "lakeBucketNames": lake.bucket_names,
        "lakeBucketUrls": lake.bucket_urls,
        "containerRepositoryUrls": registry.repository_urls,
    }
    if settings.ci is not None:
        ci = CiIdentities(
            baseline.namer.name("ci"),
            CiIdentitiesArgs(
                baseline=baseline,
                project=project,
                ci=settings.ci,
                environment=settings.environment,
                repositories=registry.repositories,
                requires=[services],
            ),
        )
        outputs["publisherEmail"] = ci.publisher_email
        outputs["publishInputs"] = ci.publish_inputs
        outputs["ciVariables"] = ci.variables
    if lake.logs is not None:
        outputs["lakeAccessLogBucket"] = lake.logs.name
    if settings.registries.models.enabled:
        outputs["modelRegistry"] = f"projects/{project.project_id}/locations/{project.region}"
    base = _Foundation(baseline, project, services, key, network, lake, registry)
    if settings.accelerator_pools:
        outputs["acceleratorPools"] = _pools(settings, base)
    audit = AuditLogs(
        baseline.namer.name("audit"),
        AuditLogsArgs(
            baseline=baseline,
            project=project,
            settings=settings.audit,
            encryption=key.encryption,
            production=settings.environment == "prod",
            requires=[services],
        ),
    )
    outputs["auditBucket"] = audit.bucket.id
    route = AlertRoute(
        baseline.namer.name("alerts"), AlertRouteArgs(baseline=baseline, settings=settings.alerts)
    )
    outputs["alertChannels"] = route.channels
    if settings.endpoints:
        outputs["endpointIds"] = _endpoints(settings, base, route)
    return outputs


def _endpoints(settings: PlatformSettings, base: _Foundation, route: AlertRoute) -> dict[str, Any]:
    baseline, project, services, key, network, lake, registry = base
    serving = Serving(
        baseline.namer.name("serving"),
        ServingArgs(
            baseline=baseline,
            project=project,
            network_id=network.vpc.id,
            endpoints_subnet_id=network.subnets["endpoints"].id,
            encryption=key.encryption,
            requires=[services],
        ),
    )
    endpoints = {
        name: ModelEndpoint(
            baseline.namer.name("serve", name),
            ModelEndpointArgs(
                baseline=baseline,
                project=project,
                endpoint=name,
                settings=endpoint,
                serving=serving,
                network_name=network.vpc.name,
                encryption=key.encryption,
                bucket_names=lake.bucket_names,
                repositories=registry.repositories,
                repository_urls=registry.repository_urls,
                notification_channels=route.channels,
                requires=[services],
                alert_emails=settings.alerts.emails,
                drift_baseline=endpoint.drift_baseline(name, settings.lake.zones),
            ),
        )
        for name, endpoint in sorted(settings.endpoints.items())
    }
    return {name: endpoint.endpoint.id for name, endpoint in endpoints.items()}


def _pools(settings: PlatformSettings, base: _Foundation) -> dict[str, Any]:
    baseline, project, services, key, network, lake, registry = base
    agents = None
    if any(pool.kind == "gpu" for pool in settings.accelerator_pools.values()):
        agents = PoolAgents(
            baseline.namer.name("pools"),
            PoolAgentsArgs(
                baseline=baseline, project=project, encryption=key.encryption, requires=[services]
            ),
        )
    pools = {
        name: AcceleratorPool(
            baseline.namer.name("pool", name),
            AcceleratorPoolArgs(
                baseline=baseline,
                project=project,
                pool=name,
                settings=pool,
                network_id=network.vpc.id,
                subnet_id=network.subnets["workload"].id,
                zones=network.zone_names,
                encryption=key.encryption,
                bucket_names=lake.bucket_names,
                repositories=registry.repositories,
                requires=[services],
                agents=agents,
            ),
        )
        for name, pool in sorted(settings.accelerator_pools.items())
    }
    return {name: pool.summary for name, pool in pools.items()}
