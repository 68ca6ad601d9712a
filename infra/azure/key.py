"""`mlops:azure:PlatformKey`: the stack's customer-managed key in Key Vault, and the
one managed identity that services use to wrap their data keys with it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import keyvault, managedidentity

from infra.azure import rbac
from infra.azure.context import AzureContext
from infra.common import Baseline, EncryptionKey

ROTATION_DAYS = 365
KEY_TYPE = "RSA"
KEY_SIZE = 3072
# Services only wrap and unwrap their own data keys with this key; it never
# encrypts data directly, signs, or leaves the vault.
KEY_OPERATIONS = ("wrapKey", "unwrapKey")
# Days a deleted vault or key stays recoverable. Purge protection makes this a
# floor nobody can shorten; dev keeps the minimum so a destroyed dev stack can
# reuse its vault name a week later.
SOFT_DELETE_DAYS = {True: 90, False: 7}


@dataclass(frozen=True)
class PlatformKeyArgs:
    baseline: Baseline
    context: AzureContext


@dataclass(frozen=True)
class KeyAccess:
    """How an Azure service encrypts with the platform key: it names the key and
    authenticates as the encryption identity, and must be created after `grant`
    (the service checks that it can wrap with the key when it is created)."""

    key: EncryptionKey
    vault_uri: pulumi.Output[str]
    key_name: pulumi.Output[str]
    identity_id: pulumi.Output[str]
    identity_client_id: pulumi.Output[str]
    grant: pulumi.Resource


def rotation_policy() -> dict[str, object]:
    # No expiry on key versions: an expired version stops the lake and the
    # registry from wrapping new data keys. Rotation bounds each version's life
    # instead, and services follow the new version because they name the key
    # without a version.
    return {
        "lifetime_actions": [
            {"trigger": {"time_after_create": f"P{ROTATION_DAYS}D"}, "action": {"type": "rotate"}}
        ],
    }


class PlatformKey(pulumi.ComponentResource):
    """An RSA key for wrap/unwrap only, rotated every 365 days by Key Vault, in a
    vault that authorizes with Azure RBAC (no access policies), keeps deleted keys
    recoverable (soft delete with purge protection) and denies network access
    except to trusted Azure services. The platform grants use of the key to one
    principal: a user-assigned identity holding "Key Vault Crypto Service
    Encryption User" on the key itself, not on the vault. Vault, key and identity are protected and
    retained in prod.

    `encryption.id` is the versionless key URI, so the storage account and the
    registry pick up each rotated version without a deployment."""

    def __init__(
        self, name: str, args: PlatformKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:PlatformKey", name, {}, opts)
        baseline, context = args.baseline, args.context
        self.vault = keyvault.Vault(
            f"{name}-vault",
            # Vault names are global and at most 24 characters; the storage
            # account rules (lowercase letters and digits) are a valid subset.
            vault_name=context.global_name(baseline.namer, "kv", kind="azure-storage-account"),
            resource_group_name=context.resource_group_name,
            location=context.location,
            properties=self._vault_properties(context),
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )
        self.key = keyvault.Key(
            f"{name}-key",
            key_name=baseline.namer.name("cmk", kind="azure-resource"),
            vault_name=self.vault.name,
            resource_group_name=context.resource_group_name,
            properties={
                "kty": KEY_TYPE,
                "key_size": KEY_SIZE,
                "key_ops": list(KEY_OPERATIONS),
                "attributes": {"enabled": True},
                "rotation_policy": rotation_policy(),
            },
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_group_name=context.resource_group_name,
            location=context.location,
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )
        self.grant = rbac.assign(
            f"{name}-encryption-user",
            rbac.Grant(
                principal_id=self.identity.principal_id,
                role_id=rbac.KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
                scope=self.key.id,
                description="Wrap and unwrap data keys with the platform key",
            ),
            context,
            baseline.child(self),
        )
        self.encryption = EncryptionKey(id=self.key.key_uri, resource=self.key)
        self.access = KeyAccess(
            key=self.encryption,
            vault_uri=self.vault.properties.vault_uri,
            key_name=self.key.name,
            identity_id=self.identity.id,
            identity_client_id=self.identity.client_id,
            grant=self.grant,
        )
        self.register_outputs(
            {
                "keyUri": self.key.key_uri,
                "vaultUri": self.vault.properties.vault_uri,
                "identityId": self.identity.id,
            }
        )

    @staticmethod
    def _vault_properties(context: AzureContext) -> dict[str, object]:
        return {
            "tenant_id": context.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enable_rbac_authorization": True,
            "enable_soft_delete": True,
            "soft_delete_retention_in_days": SOFT_DELETE_DAYS[context.production],
            "enable_purge_protection": True,
            "enabled_for_deployment": False,
            "enabled_for_disk_encryption": False,
            "enabled_for_template_deployment": False,
            # Services reach the vault as trusted Azure services and keys are
            # managed through Azure Resource Manager, so no network needs a path
            # to the data plane. (See infra/azure/registry.py on the registry.)
            "network_acls": {"default_action": "Deny", "bypass": "AzureServices"},
        }
