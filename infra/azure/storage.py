"""The locked-down storage account every Azure store is built from (the lake, the
network's flow logs): one definition, so no account drifts from the others.

Each account accepts HTTPS with TLS 1.2 or later only; authorizes with
Microsoft Entra ID only (no shared keys, no SAS signed with them, no local
users, no SFTP); never makes a blob public; copies only within the tenant;
denies every network by default (trusted Azure services excepted) and has no
public endpoint at all in prod; and is encrypted twice, by the infrastructure
and with the platform key through the platform's encryption identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import monitor, storage

from infra.azure.context import AzureContext
from infra.azure.key import KeyAccess
from infra.common import Baseline

BLOB_SERVICE = "default"
ACCESS_LOG_CATEGORIES = ("StorageRead", "StorageWrite", "StorageDelete")


@dataclass(frozen=True)
class AccountSpec:
    # The role in the account's global name (`mlops<stack><role><token>`).
    role: str
    # ADLS Gen2: directories, POSIX ACLs, atomic renames (and no blob versioning).
    hierarchical: bool
    tags: Mapping[str, str]


def _encryption(key: KeyAccess) -> dict[str, Any]:
    # Queue and table default to service-managed keys; "Account" puts every
    # service under the platform key. Omitting the key version makes the
    # account follow each rotation.
    account_key = {"enabled": True, "key_type": "Account"}
    return {
        "key_source": "Microsoft.Keyvault",
        "key_vault_properties": {"key_vault_uri": key.vault_uri, "key_name": key.key_name},
        "encryption_identity": {"encryption_user_assigned_identity": key.identity_id},
        "require_infrastructure_encryption": True,
        "services": dict.fromkeys(("blob", "file", "queue", "table"), account_key),
    }


def secure_account(
    owner: pulumi.ComponentResource,
    name: str,
    spec: AccountSpec,
    *,
    context: AzureContext,
    key: KeyAccess,
    baseline: Baseline,
) -> storage.StorageAccount:
    """ZRS in prod, LRS elsewhere; protected and retained in prod."""
    return storage.StorageAccount(
        name,
        account_name=context.global_name(baseline.namer, spec.role, kind="azure-storage-account"),
        resource_group_name=context.resource_group_name,
        location=context.location,
        kind="StorageV2",
        sku={"name": "Standard_ZRS" if context.production else "Standard_LRS"},
        access_tier="Hot",
        is_hns_enabled=spec.hierarchical,
        enable_https_traffic_only=True,
        minimum_tls_version="TLS1_2",
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        default_to_o_auth_authentication=True,
        allow_cross_tenant_replication=False,
        allowed_copy_scope="AAD",
        is_local_user_enabled=False,
        is_sftp_enabled=False,
        public_network_access=context.public_network_access,
        network_rule_set={
            "default_action": "Deny",
            "bypass": "AzureServices",
            "ip_rules": [],
            "virtual_network_rules": [],
        },
        identity={"type": "UserAssigned", "user_assigned_identities": [key.identity_id]},
        encryption=_encryption(key),
        tags={**baseline.tags, **spec.tags},
        # The account checks at creation that its identity can wrap with the key.
        opts=baseline.stateful(owner, depends_on=[key.grant]),
    )


def log_access(
    owner: pulumi.ComponentResource,
    name: str,
    account: storage.StorageAccount,
    workspace_id: pulumi.Input[str],
    baseline: Baseline,
) -> monitor.DiagnosticSetting:
    """Every read, write and delete of the account's blobs, to a Log Analytics workspace."""
    return monitor.DiagnosticSetting(
        name,
        resource_uri=pulumi.Output.concat(account.id, "/blobServices/", BLOB_SERVICE),
        workspace_id=workspace_id,
        logs=[{"category": c, "enabled": True} for c in ACCESS_LOG_CATEGORIES],
        metrics=[{"category": "Transaction", "enabled": True}],
        opts=baseline.child(owner),
    )


def versioned_blobs(
    owner: pulumi.ComponentResource,
    name: str,
    account: storage.StorageAccount,
    *,
    days: int,
    context: AzureContext,
    baseline: Baseline,
) -> storage.BlobServiceProperties:
    """Blob versioning, and soft delete of blobs and containers for `days`; a
    lifecycle rule deletes versions `days` after they were superseded, so an
    account whose blobs are rewritten often does not grow without bound."""
    service = storage.BlobServiceProperties(
        name,
        account_name=account.name,
        resource_group_name=context.resource_group_name,
        blob_services_name=BLOB_SERVICE,
        is_versioning_enabled=True,
        delete_retention_policy={"enabled": True, "days": days},
        container_delete_retention_policy={"enabled": True, "days": days},
        opts=baseline.child(owner),
    )
    storage.ManagementPolicy(
        name,
        account_name=account.name,
        resource_group_name=context.resource_group_name,
        management_policy_name="default",
        policy={
            "rules": [
                {
                    "name": "expire-versions",
                    "type": "Lifecycle",
                    "enabled": True,
                    "definition": {
                        "filters": {"blob_types": ["blockBlob"]},
                        "actions": {
                            "version": {"delete": {"days_after_creation_greater_than": days}}
                        },
                    },
                }
            ]
        },
        opts=baseline.child(owner),
    )
    return service
