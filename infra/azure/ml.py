"""`mlops:azure:MlWorkspace`: the Azure Machine Learning workspace that hosts the
stack's online endpoints.

The ADLS Gen2 lake cannot be a workspace's default storage (Azure ML needs
flat-namespace blob storage for its system datastores), so the workspace gets
its own account, locked down like every store of the platform, which Azure ML
reaches by its identity, never by account key (`systemDatastoresAuthMode:
identity`). The lake is attached as datastores that also authorize by
identity: models are read and captured traffic written there.

The workspace's managed network allows only approved outbound traffic: private
endpoints to the lake (blob and dfs), Azure's own required private endpoints to
the workspace's storage, vault and (Premium, prod) registry, and elsewhere the
registry's service tag. In prod the
workspace has no public endpoint; the stack's network reaches it through a
private endpoint (see `private_service`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import applicationinsights, machinelearningservices, operationalinsights

from infra.azure import rbac
from infra.azure.context import AzureContext
from infra.azure.key import KeyAccess
from infra.azure.network import PrivateService
from infra.azure.storage import AccountSpec, log_access, secure_account, versioned_blobs
from infra.common import Baseline

WORKSPACE_GROUP = "amlworkspace"
WORKSPACE_DNS_ZONE = "privatelink.api.azureml.ms"
NOTEBOOKS_DNS_ZONE = "privatelink.notebooks.azure.net"
LOG_RETENTION_DAYS = 90


@dataclass(frozen=True)
class MlWorkspaceArgs:
    baseline: Baseline
    context: AzureContext
    key: KeyAccess
    vault_id: pulumi.Input[str]
    key_uri_with_version: pulumi.Input[str]
    registry_id: pulumi.Input[str]
    registry_premium: bool
    lake_account_id: pulumi.Input[str]
    lake_account_name: pulumi.Input[str]
    lake_filesystems: Mapping[str, pulumi.Output[str]]
    # Where Application Insights and the storage's access logs go; a workspace of
    # its own when None.
    log_workspace_id: pulumi.Input[str] | None
    # How long deleted blobs of the workspace's storage stay recoverable.
    soft_delete_days: int


class MlWorkspace(pulumi.ComponentResource):
    """An Azure ML workspace encrypted with the platform key (through the
    platform's encryption identity), with its own locked-down storage account,
    the stack's Key Vault and container registry, Application Insights on the
    stack's Log Analytics workspace, identity-based access to every datastore, a
    managed network that only allows approved outbound traffic, and no public
    endpoint in prod. One datastore per lake zone. Protected and retained in prod."""

    def __init__(
        self, name: str, args: MlWorkspaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:MlWorkspace", name, {}, opts)
        self._args = args
        baseline, context = args.baseline, args.context
        self.storage = secure_account(
            self,
            f"{name}-storage",
            AccountSpec(role="ml", hierarchical=False, tags={"purpose": "ml-workspace"}),
            context=context,
            key=args.key,
            baseline=baseline,
        )
        versioned_blobs(
            self,
            f"{name}-storage",
            self.storage,
            days=args.soft_delete_days,
            context=context,
            baseline=baseline,
        )
        logs = args.log_workspace_id or self._log_workspace(name).id
        log_access(self, f"{name}-storage-access", self.storage, logs, baseline)
        self.insights = applicationinsights.Component(
            f"{name}-insights",
            resource_group_name=context.resource_group_name,
            location=context.location,
            kind="web",
            application_type="web",
            ingestion_mode="LogAnalytics",
            workspace_resource_id=logs,
            # Entra ID only: no instrumentation-key ingestion.
            disable_local_auth=True,
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        self.workspace = machinelearningservices.Workspace(
            name,
            workspace_name=baseline.namer.name("ml", kind="azure-resource"),
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku={"name": "Basic", "tier": "Basic"},
            description=f"Model serving of {baseline.namer.prefix}",
            identity={
                "type": "SystemAssigned,UserAssigned",
                "user_assigned_identities": [args.key.identity_id],
            },
            # The encryption identity: it holds the key; the system identity does the rest.
            encryption={
                "status": "Enabled",
                "key_vault_properties": {
                    "key_vault_arm_id": args.vault_id,
                    # Azure ML takes the key with its version.
                    "key_identifier": args.key_uri_with_version,
                    "identity_client_id": args.key.identity_client_id,
                },
                "identity": {"user_assigned_identity": args.key.identity_id},
            },
            storage_account=self.storage.id,
            key_vault=args.vault_id,
            container_registry=args.registry_id,
            application_insights=self.insights.id,
            system_datastores_auth_mode="identity",
            public_network_access=context.public_network_access,
            allow_public_access_when_behind_vnet=False,
            managed_network={
                "isolation_mode": "AllowOnlyApprovedOutbound",
                "outbound_rules": self._outbound_rules(),
            },
            # Online deployments need the managed network in place; it is otherwise
            # provisioned only by the first compute instance.
            provision_network_now=True,
            v1_legacy_mode=False,
            tags=dict(baseline.tags),
            opts=baseline.stateful(self, depends_on=[args.key.grant]),
        )
        self._lake_access(name)
        self.datastores = {
            zone: self._datastore(name, zone, filesystem)
            for zone, filesystem in sorted(args.lake_filesystems.items())
        }
        self.register_outputs(
            {"workspaceName": self.workspace.name, "workspaceId": self.workspace.id}
        )

    def _log_workspace(self, name: str) -> operationalinsights.Workspace:
        baseline, context = self._args.baseline, self._args.context
        return operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku={"name": "PerGB2018"},
            retention_in_days=LOG_RETENTION_DAYS,
            features={"disable_local_auth": True},
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )

    def _outbound_rules(self) -> dict[str, Any]:
        args = self._args

        # Typed args, not dicts: each rule is a union, whose dict keys the SDK
        # would pass on unrenamed.
        def private_endpoint(
            resource_id: pulumi.Input[str], target: str
        ) -> machinelearningservices.PrivateEndpointOutboundRuleArgs:
            return machinelearningservices.PrivateEndpointOutboundRuleArgs(
                type="PrivateEndpoint",
                category="UserDefined",
                destination=machinelearningservices.PrivateEndpointDestinationArgs(
                    service_resource_id=resource_id,
                    subresource_target=target,
                    spark_enabled=False,
                ),
            )

        rules: dict[str, Any] = {
            f"lake-{target}": private_endpoint(args.lake_account_id, target)
            for target in ("blob", "dfs")
        }
        # The workspace's own registry, vault and storage get their private
        # endpoints as Azure's required rules; a rule of ours to the same
        # destination is refused. Only a Premium registry takes one: the others
        # are reached by their service tag.
        if not args.registry_premium:
            rules["registry"] = machinelearningservices.ServiceTagOutboundRuleArgs(
                type="ServiceTag",
                category="UserDefined",
                destination=machinelearningservices.ServiceTagDestinationArgs(
                    service_tag=f"AzureContainerRegistry.{args.context.location}",
                    protocol="TCP",
                    port_ranges="443",
                    action="Allow",
                ),
            )
        return rules

    def _lake_access(self, name: str) -> None:
        """The workspace's own identity lists and reads the lake's datastores."""
        args = self._args
        rbac.assign(
            f"{name}-lake-reader",
            rbac.Grant(
                principal_id=self.workspace.identity.apply(lambda i: i.principal_id),
                role_id=rbac.STORAGE_BLOB_DATA_READER,
                scope=pulumi.Output.from_input(args.lake_account_id),
                description="Azure ML reads the lake's datastores by identity",
            ),
            args.context,
            args.baseline.child(self),
        )

    def _datastore(
        self, name: str, zone: str, filesystem: pulumi.Output[str]
    ) -> machinelearningservices.Datastore:
        args = self._args
        return machinelearningservices.Datastore(
            f"{name}-lake-{zone}",
            name=datastore_name(zone),
            workspace_name=self.workspace.name,
            resource_group_name=args.context.resource_group_name,
            # Typed: `properties` and `credentials` are unions (see _outbound_rules).
            properties=machinelearningservices.AzureDataLakeGen2DatastoreArgs(
                datastore_type="AzureDataLakeGen2",
                account_name=args.lake_account_name,
                filesystem=filesystem,
                # No secret: whoever uses the datastore authorizes as themselves.
                credentials=machinelearningservices.NoneDatastoreCredentialsArgs(
                    credentials_type="None"
                ),
                service_data_access_auth_identity="WorkspaceSystemAssignedIdentity",
                description=f"Lake zone {zone}",
            ),
            opts=args.baseline.child(self),
        )

    def private_service(self) -> PrivateService:
        return PrivateService(
            "ml-workspace",
            self.workspace.id,
            WORKSPACE_GROUP,
            WORKSPACE_DNS_ZONE,
            more_zones=(NOTEBOOKS_DNS_ZONE,),
        )


def datastore_name(zone: str) -> str:
    """Datastore names take letters, digits and underscores."""
    return f"lake_{zone.replace('-', '_')}"
