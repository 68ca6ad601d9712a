"""`mlops:azure:PlatformKey`: the stack's customer-managed key in Key Vault, and the
one managed identity that services use to wrap their data keys with it.

Key generations. Azure Resource Manager creates a vault key once and never
updates it: a later PUT with another type, size, operations, rotation policy
or expiry is refused (KeyCreationParametersDidNotMatchExistingKey) or leaves the
key as it was, and purge protection forbids replacing it under the same name.
So a key's parameters are fixed per *generation*, and a new generation is a new
key, with a new name and a new resource, never a replacement in place: one
update creates it, moves the lake and the registry to it (they re-wrap their
data keys with it), and then forgets the old key. The old key is kept: it stays
in the vault (retained on delete in prod, soft-deleted and purge-protected
elsewhere), so anything still wrapped with it can be recovered. Keys are
therefore not `protect`ed, only retained: protection would block the update
that retires a generation (policy exemption EX-203).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import keyvault, managedidentity

from infra.azure import rbac
from infra.azure.context import AzureContext
from infra.common import Baseline, EncryptionKey


@dataclass(frozen=True)
class KeyGeneration:
    """A key's create-only parameters. Change them only by adding a generation."""

    number: int
    key_type: str
    key_size: int
    rotation_days: int
    # Each rotated version expires this long after it is created: later than
    # the rotation, so every version is replaced before it expires.
    expiry_days: int | None

    @property
    def suffix(self) -> str:
        return "" if self.number == 1 else f"-g{self.number}"


# Oldest first; the platform uses the last one. Never edit a generation: add one.
GENERATIONS = (
    KeyGeneration(1, key_type="RSA", key_size=3072, rotation_days=365, expiry_days=None),
    # HSM-backed (Premium vault) and versions that expire.
    KeyGeneration(2, key_type="RSA-HSM", key_size=3072, rotation_days=365, expiry_days=730),
)
VAULT_SKU = "premium"
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
    identity_principal_id: pulumi.Output[str]
    # The key's ARM id, the scope of role assignments on it.
    key_resource_id: pulumi.Output[str]
    grant: pulumi.Resource


def rotation_policy(generation: KeyGeneration) -> dict[str, object]:
    """Key Vault rotates the key `rotation_days` after each version is created;
    services follow the new version because they name the key without one.

    `expiry_time` applies to the versions rotation creates. The first version
    has no expiry: ARM takes it only as an absolute time, which would make every
    plan differ; the first rotation replaces that version on schedule."""
    policy: dict[str, object] = {
        "lifetime_actions": [
            {
                "trigger": {"time_after_create": f"P{generation.rotation_days}D"},
                "action": {"type": "rotate"},
            }
        ],
    }
    if generation.expiry_days is not None:
        policy["attributes"] = {"expiry_time": f"P{generation.expiry_days}D"}
    return policy


def vault(
    owner: pulumi.ComponentResource,
    name: str,
    role: str,
    context: AzureContext,
    baseline: Baseline,
    *,
    tags: Mapping[str, str],
    public: bool = False,
) -> keyvault.Vault:
    """A Premium vault (HSM-backed keys) that authorizes with Azure RBAC only,
    keeps deleted keys recoverable (soft delete, purge protection) and denies
    every network but trusted Azure services; in prod it has no public endpoint.
    `public` opens it to any network (RBAC still decides who may use a key):
    only for a key a service must reach before it has an identity the
    trusted-services exception covers. Protected and retained in prod."""
    network: dict[str, object] = {
        # Services reach the vault as trusted Azure services (which a disabled
        # public endpoint still admits) and keys are managed through Azure
        # Resource Manager; clients in the network use its private endpoint.
        "public_network_access": "Enabled" if public else context.public_network_access,
        "network_acls": {
            "default_action": "Allow" if public else "Deny",
            "bypass": "AzureServices",
        },
    }
    return keyvault.Vault(
        name,
        # Vault names are global and at most 24 characters; the storage
        # account rules (lowercase letters and digits) are a valid subset.
        vault_name=context.global_name(baseline.namer, role, kind="azure-storage-account"),
        resource_group_name=context.resource_group_name,
        location=context.location,
        properties={
            "tenant_id": context.tenant_id,
            "sku": {"family": "A", "name": VAULT_SKU},
            "enable_rbac_authorization": True,
            "enable_soft_delete": True,
            "soft_delete_retention_in_days": SOFT_DELETE_DAYS[context.production],
            "enable_purge_protection": True,
            "enabled_for_deployment": False,
            "enabled_for_disk_encryption": False,
            "enabled_for_template_deployment": False,
            **network,
        },
        tags={**baseline.tags, **tags},
        opts=baseline.stateful(owner),
    )


def vault_key(
    owner: pulumi.ComponentResource,
    name: str,
    role: str,
    *,
    in_vault: keyvault.Vault,
    context: AzureContext,
    baseline: Baseline,
    generation: KeyGeneration | None = None,
) -> keyvault.Key:
    """A wrap/unwrap key of `generation` (the current one unless named), named
    `<project>-<stack>-<role>[-g<n>]`. Retained, not protected: see the module
    notes on key generations."""
    generation = generation or GENERATIONS[-1]
    return keyvault.Key(
        f"{name}{generation.suffix}",
        key_name=baseline.namer.name(f"{role}{generation.suffix}", kind="azure-resource"),
        vault_name=in_vault.name,
        resource_group_name=context.resource_group_name,
        properties={
            "kty": generation.key_type,
            "key_size": generation.key_size,
            "key_ops": list(KEY_OPERATIONS),
            "attributes": {"enabled": True},
            "rotation_policy": rotation_policy(generation),
        },
        tags={**baseline.tags, "key-generation": str(generation.number)},
        opts=baseline.child(owner, retain_on_delete=baseline.protect),
    )


class PlatformKey(pulumi.ComponentResource):
    """An HSM-backed RSA key (the current generation) for wrap/unwrap only,
    rotated every 365 days by Key Vault, each rotated version expiring after 730,
    in a Premium vault that authorizes with Azure RBAC (no access policies),
    keeps deleted keys recoverable (soft delete with purge protection), denies
    network access except to trusted Azure services and, in prod, has no public
    endpoint (the network reaches it through a private endpoint). The platform
    grants use of the key to one principal: a user-assigned identity holding "Key
    Vault Crypto Service Encryption User" on the key itself, not on the vault.
    Vault and identity are protected and retained in prod; the key is retained.

    `encryption.id` is the versionless key URI, so the storage account and the
    registry pick up each rotated version without a deployment."""

    def __init__(
        self, name: str, args: PlatformKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:PlatformKey", name, {}, opts)
        baseline, context = args.baseline, args.context
        self.vault = vault(self, f"{name}-vault", "kv", context, baseline, tags={})
        self.key = vault_key(
            self, name, "cmk", in_vault=self.vault, context=context, baseline=baseline
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
            identity_principal_id=self.identity.principal_id,
            key_resource_id=self.key.id,
            grant=self.grant,
        )
        self.register_outputs(
            {
                "keyUri": self.key.key_uri,
                "vaultUri": self.vault.properties.vault_uri,
                "identityId": self.identity.id,
            }
        )
