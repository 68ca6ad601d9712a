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

Prod's registry reaches the platform key through its own system-assigned
identity, because a vault's firewall admits a registry (as a trusted Azure
service) only that way, and the prod vault is closed to every network. But ACR
takes a customer-managed key only at creation, and only through a user-assigned
identity, before the system-assigned one exists. So the first deployment runs
in three steps, in one `pulumi up`:

1. A bootstrap vault (`mlops<stack>boot<token>`) that admits any network, RBAC
   still deciding who may use its one key, holds the key the registry is
   created with, through the platform's encryption identity.
2. The registry's system-assigned identity is granted the platform key.
3. `RegistryKeyRotation` points the registry's encryption at the platform key
   through identity `system` (`az acr encryption rotate-key --identity
   [system]`), and keeps it there across key generations. The registry
   resource ignores later changes to `encryption`.

From then on the bootstrap key encrypts nothing; its vault stays so that a
registry replaced later is created the same way (policy exemption EX-204).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import containerregistry, keyvault, machinelearningservices

from infra.azure import rbac
from infra.azure.context import AzureContext
from infra.azure.key import KeyAccess, vault, vault_key
from infra.azure.registry_key import RegistryKeyRotation
from infra.common import Baseline
from infra.settings import ContainerRegistrySettings

PRODUCTION_SKU = "Premium"
BOOTSTRAP_PURPOSE = "registry-bootstrap-key"
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
    `untaggedRetentionDays`, encrypted with the platform key through its own
    identity (see the module notes for how the first deployment gets there);
    protected and retained. Elsewhere: Standard (see the module notes for what
    that omits).

    Repositories are created by the first push; the configured repository
    names become the image URLs the stack exports."""

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:ContainerRegistry", name, {}, opts)
        baseline, context = args.baseline, args.context
        production = context.production
        self.premium = production
        self.bootstrap_vault: keyvault.Vault | None = None
        premium: dict[str, Any] = {}
        depends_on: list[pulumi.Resource] = []
        if production:
            bootstrap_key, bootstrap_grant = self._bootstrap_key(name, args)
            premium = self._premium(args.key, bootstrap_key)
            depends_on = [bootstrap_grant]
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
            # In prod, RegistryKeyRotation owns the encryption after creation.
            opts=baseline.stateful(
                self, depends_on=depends_on, ignore_changes=["encryption"] if production else []
            ),
            **premium,
        )
        if production:
            self._use_platform_key(name, args)
        self.login_server = self.registry.login_server
        self.repository_urls: Mapping[str, pulumi.Output[str]] = {
            repo: pulumi.Output.concat(self.login_server, "/", repo)
            for repo in args.settings.repositories
        }
        self.register_outputs(
            {"loginServer": self.login_server, "repositoryUrls": self.repository_urls}
        )

    def _bootstrap_key(
        self, name: str, args: ContainerRegistryArgs
    ) -> tuple[keyvault.Key, pulumi.Resource]:
        """The key a new registry is created with (step 1 in the module notes)."""
        baseline, context = args.baseline, args.context
        self.bootstrap_vault = boot_vault = vault(
            self,
            f"{name}-bootstrap",
            "boot",
            context,
            baseline,
            tags={"purpose": BOOTSTRAP_PURPOSE},
            public=True,
        )
        key = vault_key(
            self,
            f"{name}-bootstrap",
            "acr-boot",
            in_vault=boot_vault,
            context=context,
            baseline=baseline,
        )
        grant = rbac.assign(
            f"{name}-bootstrap-user",
            rbac.Grant(
                principal_id=args.key.identity_principal_id,
                role_id=rbac.KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
                scope=key.id,
                description="Create the registry with its bootstrap key",
            ),
            context,
            baseline.child(self),
        )
        return key, grant

    def _use_platform_key(self, name: str, args: ContainerRegistryArgs) -> None:
        """Steps 2 and 3 in the module notes."""
        baseline, context = args.baseline, args.context
        principal = self.registry.identity.apply(lambda i: i.principal_id if i else None)
        grant = rbac.assign(
            f"{name}-platform-key-user",
            rbac.Grant(
                principal_id=principal,
                role_id=rbac.KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
                scope=args.key.key_resource_id,
                description="The registry wraps its data keys with the platform key",
            ),
            context,
            baseline.child(self),
        )
        RegistryKeyRotation(
            f"{name}-platform-key",
            registry_id=self.registry.id,
            # Versionless: the registry follows each rotation of the key.
            key_identifier=args.key.key.id,
            opts=baseline.child(self, depends_on=[grant]),
        )

    @staticmethod
    def _premium(key: KeyAccess, bootstrap_key: keyvault.Key) -> dict[str, Any]:
        """Inputs only a Premium registry accepts."""
        return {
            "zone_redundancy": "Enabled",
            "network_rule_set": {"default_action": "Deny"},
            "network_rule_bypass_options": "AzureServices",
            "identity": {
                "type": "SystemAssigned, UserAssigned",
                # ACR keys user-assigned identities by resource id.
                "user_assigned_identities": key.identity_id.apply(lambda i: {i: {}}),
            },
            "encryption": {
                "status": "enabled",
                "key_vault_properties": {
                    "key_identifier": bootstrap_key.key_uri,
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
