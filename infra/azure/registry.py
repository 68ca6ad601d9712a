"""Azure registries: `mlops:azure:ContainerRegistry` (Azure Container Registry) and
`mlops:azure:ModelRegistry` (an Azure Machine Learning registry).

What ACR does not offer as a registry setting, and how the platform stands:

- Scan on push is Microsoft Defender for Containers, a plan enabled per
  subscription (it scans every registry there, on push and on pull). A stack
  does not switch a subscription-wide, billed plan on or off; the platform
  team enables it once per subscription.
- Immutable tags are per-repository or per-tag locks (`az acr repository
  update --write-enabled false`), set on content, not on the registry; the
  release pipeline locks each tag it publishes.
- Keeping only the newest N images has no ACR policy; untagged manifests
  expire by the registry's retention policy, a Premium feature.

SKU per environment: prod is Premium (zone redundancy, CMK, retention policy,
network rules, no public endpoint); other environments are Standard, which
offers none of those. A Standard registry is therefore encrypted with a
Microsoft-managed key and keeps untagged manifests until deleted; the policy
pack records both as exemptions EX-201 and EX-202, limited to non-prod
registries.

Prod's registry encrypts with the platform key through the user-assigned
encryption identity, as Azure requires when a registry is created with a
CMK. Azure documents trusted-service access through a Key Vault firewall for
registries by their system-assigned identity; if the first prod deployment is
refused by the vault's firewall, switch the registry's encryption identity to
its system-assigned one after creation (`az acr encryption rotate-key
--identity [system]`) and grant it the same role on the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import containerregistry, machinelearningservices

from infra.azure.context import AzureContext
from infra.azure.key import KeyAccess
from infra.common import Baseline
from infra.settings import ContainerRegistrySettings

PRODUCTION_SKU = "Premium"
NON_PRODUCTION_SKU = "Standard"


@dataclass(frozen=True)
class ContainerRegistryArgs:
    baseline: Baseline
    context: AzureContext
    settings: ContainerRegistrySettings
    key: KeyAccess


def registry_policies(
    settings: ContainerRegistrySettings, production: bool
) -> dict[str, Any] | None:
    if not production:
        return None
    return {
        "retention_policy": {"status": "enabled", "days": settings.untagged_retention_days},
        # Images leave a prod registry only by pull, never by export or transfer.
        "export_policy": {"status": "disabled"},
    }


class ContainerRegistry(pulumi.ComponentResource):
    """One ACR registry for the stack: no admin user and no anonymous pull, so
    every push and pull authenticates with Microsoft Entra ID. In prod: Premium,
    zone-redundant, no public endpoint (firewall denies all, trusted Azure
    services excepted), exports disabled, untagged manifests deleted after
    `untaggedRetentionDays`, encrypted with the platform key; protected and
    retained. Elsewhere: Standard (see the module notes for what that omits).

    Repositories are created by the first push; the configured repository
    names become the image URLs the stack exports."""

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:ContainerRegistry", name, {}, opts)
        baseline, context = args.baseline, args.context
        production = context.production
        depends_on = [args.key.grant] if production else []
        self.registry = containerregistry.Registry(
            name,
            registry_name=context.global_name(baseline.namer, "acr", kind="azure-registry"),
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku={"name": PRODUCTION_SKU if production else NON_PRODUCTION_SKU},
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access=context.public_network_access,
            policies=registry_policies(args.settings, production),
            tags=dict(baseline.tags),
            opts=baseline.stateful(self, depends_on=depends_on),
            **(self._premium(args.key) if production else {}),
        )
        self.login_server = self.registry.login_server
        self.repository_urls: Mapping[str, pulumi.Output[str]] = {
            repo: pulumi.Output.concat(self.login_server, "/", repo)
            for repo in args.settings.repositories
        }
        self.register_outputs(
            {"loginServer": self.login_server, "repositoryUrls": self.repository_urls}
        )

    @staticmethod
    def _premium(key: KeyAccess) -> dict[str, Any]:
        """Inputs only a Premium registry accepts."""
        return {
            "zone_redundancy": "Enabled",
            "network_rule_set": {"default_action": "Deny"},
            "network_rule_bypass_options": "AzureServices",
            "identity": {
                "type": "UserAssigned",
                # ACR keys user-assigned identities by resource id.
                "user_assigned_identities": key.identity_id.apply(lambda i: {i: {}}),
            },
            "encryption": {
                "status": "enabled",
                "key_vault_properties": {
                    # Versionless: the registry follows each rotation of the key.
                    "key_identifier": key.key.id,
                    "identity": key.identity_client_id,
                },
            },
        }


@dataclass(frozen=True)
class ModelRegistryArgs:
    baseline: Baseline
    context: AzureContext


class ModelRegistry(pulumi.ComponentResource):
    """An Azure Machine Learning registry: models (and environments, components)
    shared by every workspace of the team, with a system-assigned identity and
    its own service-created storage (no hierarchical namespace, blobs never
    public) and Premium container registry in the stack's region. No public
    endpoint in prod. Protected and retained in prod.

    Its name is fixed (`<project>-<stack>-models`) because jobs and pipelines
    address it by name (`azureml://registries/<name>/models/...`)."""

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:ModelRegistry", name, {}, opts)
        baseline, context = args.baseline, args.context
        storage_type = "Standard_ZRS" if context.production else "Standard_LRS"
        self.registry = machinelearningservices.Registry(
            name,
            registry_name=baseline.namer.name("models", kind="azure-resource"),
            resource_group_name=context.resource_group_name,
            location=context.location,
            identity={"type": "SystemAssigned"},
            public_network_access=context.public_network_access,
            region_details=[
                {
                    "location": context.location,
                    "acr_details": [{"system_created_acr_account": {"acr_account_sku": "Premium"}}],
                    "storage_account_details": [
                        {
                            "system_created_storage_account": {
                                "storage_account_type": storage_type,
                                "storage_account_hns_enabled": False,
                                "allow_blob_public_access": False,
                            }
                        }
                    ],
                }
            ],
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )
        self.register_outputs({"registryName": self.registry.name})
