"""Everything an Azure stack provisions, wired from the settings model.

One resource group holds the whole stack. The group's lifetime is the stack's,
so one group keeps placement, cost reporting and RBAC scopes in one place and
lets components stay free of group management. The group itself carries no
lock: a lock there would also block routine deletions inside it (a replaced
role assignment, a diagnostic setting); the lake locks its own account.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_azure_native import resources

from infra.azure.alerts import AlertRoute, AlertRouteArgs
from infra.azure.audit import AuditLogs, AuditLogsArgs
from infra.azure.ci import CiIdentities, CiIdentitiesArgs
from infra.azure.context import AzureContext
from infra.azure.endpoint import ModelEndpoint, ModelEndpointArgs
from infra.azure.key import PlatformKey, PlatformKeyArgs
from infra.azure.lake import DataLake, DataLakeArgs
from infra.azure.ml import MlWorkspace, MlWorkspaceArgs
from infra.azure.network import Network, NetworkArgs, PrivateService, network_outputs
from infra.azure.pool import AcceleratorPool, AcceleratorPoolArgs
from infra.azure.registry import (
    ContainerRegistry,
    ContainerRegistryArgs,
    ModelRegistry,
    ModelRegistryArgs,
)
from infra.common import Baseline
from infra.settings import PlatformSettings


def build_azure(settings: PlatformSettings) -> dict[str, Any]:
    baseline = Baseline.from_settings(settings)
    namer = baseline.namer
    group = resources.ResourceGroup(
        namer.name("group"),
        resource_group_name=namer.name(kind="azure-resource"),
        location=settings.region,
        tags=dict(baseline.tags),
        opts=pulumi.ResourceOptions(protect=baseline.protect, retain_on_delete=baseline.protect),
    )
    context = AzureContext.lookup(
        settings.region, group.name, production=settings.environment == "prod"
    )
    key = PlatformKey(namer.name("key"), PlatformKeyArgs(baseline, context))
    lake = DataLake(
        namer.name("lake"),
        DataLakeArgs(baseline=baseline, context=context, lake=settings.lake, key=key.access),
    )
    containers = ContainerRegistry(
        namer.name("images"),
        ContainerRegistryArgs(
            baseline=baseline,
            context=context,
            settings=settings.registries.containers,
            key=key.access,
        ),
    )
    workspace = None
    if settings.endpoints or settings.accelerator_pools:
        workspace = MlWorkspace(
            namer.name("ml"),
            MlWorkspaceArgs(
                baseline=baseline,
                context=context,
                key=key.access,
                vault_id=key.vault.id,
                key_uri_with_version=key.key.key_uri_with_version,
                registry_id=containers.registry.id,
                registry_premium=containers.premium,
                lake_account_id=lake.account.id,
                lake_account_name=lake.account.name,
                lake_filesystems=lake.filesystem_names,
                log_workspace_id=lake.logs.id if lake.logs is not None else None,
                soft_delete_days=settings.lake.retention.soft_delete_days,
            ),
        )
    services = private_services(key, lake, containers)
    if workspace is not None and context.production:
        services.append(workspace.private_service())
    network = Network(
        namer.name("network"),
        NetworkArgs(
            baseline=baseline,
            context=context,
            settings=settings.network,
            key=key.access,
            services=services,
            soft_delete_days=settings.lake.retention.soft_delete_days,
            access_log_workspace_id=lake.logs.id if lake.logs is not None else None,
        ),
    )
    outputs: dict[str, Any] = {
        **network_outputs(network),
        "resourceGroupName": group.name,
        "keyId": key.key.key_uri,
        "lakeAccountName": lake.account.name,
        "lakeFilesystemNames": lake.filesystem_names,
        "lakeFilesystemIds": lake.filesystem_ids,
        "containerRegistryLoginServer": containers.login_server,
        "containerRepositoryUrls": containers.repository_urls,
    }
    if lake.logs is not None:
        outputs["lakeAccessLogWorkspaceId"] = lake.logs.id
    if settings.ci is not None:
        ci = CiIdentities(
            namer.name("ci"),
            CiIdentitiesArgs(
                baseline=baseline,
                context=context,
                ci=settings.ci,
                environment=settings.environment,
                registry_id=containers.registry.id,
            ),
        )
        outputs["ciVariables"] = ci.variables
        outputs["publisherClientId"] = ci.publisher_client_id
        outputs["publishInputs"] = ci.publish_inputs
    route = AlertRoute(
        namer.name("alerts"),
        AlertRouteArgs(baseline=baseline, context=context, settings=settings.alerts),
    )
    outputs["actionGroupId"] = route.group.id
    audited = {"vault": key.vault.id, "registry": containers.registry.id}
    if containers.bootstrap_vault is not None:
        audited["bootstrap-vault"] = containers.bootstrap_vault.id
    if workspace is not None:
        audited["ml-workspace"] = workspace.workspace.id
    audit = AuditLogs(
        namer.name("audit"),
        AuditLogsArgs(
            baseline=baseline, context=context, settings=settings.audit, resources=audited
        ),
    )
    outputs["auditWorkspaceId"] = audit.workspace.id
    model_registry = None
    if settings.registries.models.enabled:
        models = ModelRegistry(namer.name("models"), ModelRegistryArgs(baseline, context))
        outputs["modelRegistryName"] = models.registry.name
        model_registry = namer.name("models", kind="azure-resource")
    if workspace is not None:
        outputs["mlWorkspaceName"] = workspace.workspace.name
        pools = {
            name: AcceleratorPool(
                namer.name("pool", name),
                AcceleratorPoolArgs(
                    baseline=baseline,
                    context=context,
                    pool=name,
                    settings=pool,
                    workspace=workspace,
                ),
            )
            for name, pool in sorted(settings.accelerator_pools.items())
        }
        if pools:
            outputs["acceleratorPools"] = {n: p.cluster.name for n, p in pools.items()}
        endpoints = {
            name: ModelEndpoint(
                namer.name("serve", name),
                ModelEndpointArgs(
                    baseline=baseline,
                    context=context,
                    endpoint=name,
                    settings=endpoint,
                    workspace=workspace,
                    repository_urls=containers.repository_urls,
                    filesystem_ids=lake.filesystem_ids,
                    model_registry=model_registry,
                    capture_zone=endpoint.capture_zone(settings.lake.zones),
                    alert_actions=route.actions,
                    alert_emails=settings.alerts.emails,
                    drift_baseline=endpoint.drift_baseline(name, settings.lake.zones),
                ),
            )
            for name, endpoint in sorted(settings.endpoints.items())
        }
        if endpoints:
            outputs["endpointNames"] = {n: e.endpoint.name for n, e in endpoints.items()}
    return outputs


def private_services(
    key: PlatformKey, lake: DataLake, containers: ContainerRegistry
) -> list[PrivateService]:
    """What the network reaches through private endpoints. ADLS Gen2 needs both
    `dfs` and `blob`: some operations on the dfs endpoint are served by blob.
    Only a Premium registry takes a private endpoint."""
    services = [
        PrivateService("lake-blob", lake.account.id, "blob", "privatelink.blob.core.windows.net"),
        PrivateService("lake-dfs", lake.account.id, "dfs", "privatelink.dfs.core.windows.net"),
        PrivateService("vault", key.vault.id, "vault", "privatelink.vaultcore.azure.net"),
    ]
    if containers.premium:
        services.append(
            PrivateService("registry", containers.registry.id, "registry", "privatelink.azurecr.io")
        )
    return services
