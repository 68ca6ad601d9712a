"""Azure's checks for the pack's controls: storage accounts and the resources that
configure them (blob service, containers, diagnostic settings), Key Vault keys
and vaults, and container registries.

An ADLS Gen2 account (hierarchical namespace) cannot version blobs, so for those
accounts "versioning or soft delete" means blob soft delete *and* container
soft delete; other accounts must version blobs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_policies.model import Resource, by_type, section

STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
KEY_VAULT = "azure-native:keyvault:Vault"
KEY_VAULT_KEY = "azure-native:keyvault:Key"
CONTAINER_REGISTRY = "azure-native:containerregistry:Registry"
ML_REGISTRY = "azure-native:machinelearningservices:Registry"
VIRTUAL_NETWORK = "azure-native:network:VirtualNetwork"
FLOW_LOG = "azure-native:network:FlowLog"
NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
# Source prefixes that mean "anyone": every address, or the internet service tag.
ANYWHERE = ("*", "0.0.0.0/0", "::/0", "internet", "any")

ACCESS_LOG_CATEGORIES = ("StorageRead", "StorageWrite", "StorageDelete")
TLS_VERSIONS = ("TLS1_2", "TLS1_3")
MAX_ROTATION_DAYS = 365
# ISO 8601 durations as Key Vault writes them (P90D, P1Y, P18M, P1Y6M).
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$")

Findings = Iterator[tuple[str, str]]


def _is_premium(registry: Resource) -> bool:
    return section(registry.props, "sku").get("name") == "Premium"


def _for_account(resources: Sequence[Resource], account: Resource, kind: str) -> list[Resource]:
    """Resources of `kind` whose `accountName` came from the account (or names it)."""
    name = account.props.get("accountName")
    return [
        r
        for r in by_type(resources, kind)
        if r.depends_on("accountName", account)
        or (name is not None and r.props.get("accountName") == name)
    ]


# storage-cmek


def storage_cmek(resource: Resource) -> Iterator[str]:
    if resource.type == STORAGE_ACCOUNT:
        encryption = section(resource.props, "encryption")
        vault = section(encryption, "keyVaultProperties")
        if encryption.get("keySource") != "Microsoft.Keyvault":
            yield (
                f"storage account encryption keySource is {encryption.get('keySource')!r}, "
                "not a customer-managed key ('Microsoft.Keyvault')"
            )
        elif not (vault.get("keyVaultUri") and vault.get("keyName")):
            yield "storage account names no Key Vault key (keyVaultProperties)"
        if encryption.get("requireInfrastructureEncryption") is not True:
            yield "storage account is not encrypted twice (requireInfrastructureEncryption)"
    elif resource.type == CONTAINER_REGISTRY:
        encryption = section(resource.props, "encryption")
        key = section(encryption, "keyVaultProperties")
        if not _is_premium(resource):
            yield "container registry is not Premium, the only SKU that takes a customer key"
        elif encryption.get("status") != "enabled" or not key.get("keyIdentifier"):
            yield "container registry is not encrypted with a customer-managed key"


# storage-versioning


def storage_versioning(resources: Sequence[Resource]) -> Findings:
    for account in by_type(resources, STORAGE_ACCOUNT):
        services = _for_account(resources, account, BLOB_SERVICE)
        service = services[0].props if services else {}
        blobs = section(service, "deleteRetentionPolicy")
        containers = section(service, "containerDeleteRetentionPolicy")
        if account.props.get("isHnsEnabled") is True:
            # Azure offers no blob versioning with a hierarchical namespace.
            missing = [
                label
                for label, policy in (("blob", blobs), ("container", containers))
                if policy.get("enabled") is not True or not policy.get("days")
            ]
            if missing:
                yield (
                    account.urn,
                    "ADLS Gen2 account cannot version blobs, so blob and container soft "
                    f"delete must both be on; {' and '.join(missing)} soft delete is off",
                )
        elif service.get("isVersioningEnabled") is not True:
            yield account.urn, "storage account does not version blobs (isVersioningEnabled)"


# storage-no-public-access


def storage_no_public_access(resource: Resource) -> Iterator[str]:
    props = resource.props
    if resource.type == STORAGE_ACCOUNT:
        if props.get("allowBlobPublicAccess") is not False:
            yield "storage account allows public blob access (allowBlobPublicAccess)"
        if props.get("allowSharedKeyAccess") is not False:
            yield (
                "storage account accepts shared keys, and SAS tokens signed with them "
                "(allowSharedKeyAccess)"
            )
        if section(props, "networkRuleSet").get("defaultAction") != "Deny":
            yield "storage account firewall does not deny by default (networkRuleSet.defaultAction)"
    elif resource.type == BLOB_CONTAINER:
        if props.get("publicAccess", "None") != "None":
            yield f"blob container allows anonymous access (publicAccess {props['publicAccess']!r})"
    elif resource.type == CONTAINER_REGISTRY:
        if props.get("anonymousPullEnabled") is not False:
            yield "container registry allows anonymous pull (anonymousPullEnabled)"
        if props.get("adminUserEnabled") is not False:
            yield "container registry has an admin user with a shared password (adminUserEnabled)"


# storage-access-logging


def _logs_blob_access(setting: Resource) -> bool:
    enabled = {
        entry.get("category")
        for entry in setting.props.get("logs") or []
        if isinstance(entry, Mapping) and entry.get("enabled") is True
    }
    destination = any(
        setting.props.get(p) for p in ("workspaceId", "storageAccountId", "eventHubName")
    )
    return destination and set(ACCESS_LOG_CATEGORIES) <= enabled


def _targets_blob_service(setting: Resource, account: Resource) -> bool:
    uri = str(setting.props.get("resourceUri", "")).lower()
    if not uri.endswith("/blobservices/default"):
        return False
    name = str(account.props.get("accountName", "")).lower()
    return setting.depends_on("resourceUri", account) or (
        bool(name) and f"/storageaccounts/{name}/" in uri
    )


def storage_access_logging(resources: Sequence[Resource]) -> Findings:
    settings = by_type(resources, DIAGNOSTIC_SETTING)
    for account in by_type(resources, STORAGE_ACCOUNT):
        if not any(_targets_blob_service(s, account) and _logs_blob_access(s) for s in settings):
            yield (
                account.urn,
                "storage account blob service has no diagnostic setting sending "
                f"{', '.join(ACCESS_LOG_CATEGORIES)} logs to a log store",
            )


# storage-tls-only


def storage_tls_only(resource: Resource) -> Iterator[str]:
    if resource.type != STORAGE_ACCOUNT:
        return
    props = resource.props
    https_only = props.get("enableHttpsTrafficOnly", props.get("supportsHttpsTrafficOnly"))
    if https_only is not True:
        yield "storage account accepts plain HTTP (enableHttpsTrafficOnly)"
    if props.get("minimumTlsVersion") not in TLS_VERSIONS:
        yield (
            f"storage account accepts TLS below 1.2 (minimumTlsVersion "
            f"{props.get('minimumTlsVersion')!r})"
        )


# key-rotation


def duration_days(duration: Any) -> int | None:
    """Days in an ISO 8601 duration of years, months and days (a month as 30 days)."""
    match = _DURATION.match(str(duration or ""))
    if not match or not any(match.groups()):
        return None
    years, months, days = (int(g or 0) for g in match.groups())
    return years * 365 + months * 30 + days


def _rotation_days(policy: Mapping[str, Any]) -> int | None:
    """Days after creation at which a rotate action fires, if one does."""
    expiry = duration_days(section(policy, "attributes").get("expiryTime"))
    for action in policy.get("lifetimeActions") or []:
        if str(section(action, "action").get("type", "")).lower() != "rotate":
            continue
        trigger = section(action, "trigger")
        after_create = duration_days(trigger.get("timeAfterCreate"))
        before_expiry = duration_days(trigger.get("timeBeforeExpiry"))
        if after_create is not None:
            return after_create
        if before_expiry is not None and expiry is not None:
            return expiry - before_expiry
    return None


def key_rotation(resource: Resource) -> Iterator[str]:
    if resource.type == KEY_VAULT_KEY:
        policy = section(section(resource.props, "properties"), "rotationPolicy")
        days = _rotation_days(policy)
        expiry = duration_days(section(policy, "attributes").get("expiryTime"))
        if days is None:
            yield "Key Vault key has no rotation policy with a rotate action"
        elif days > MAX_ROTATION_DAYS:
            yield f"Key Vault key rotates every {days} days, less often than every 365"
        if expiry is None:
            yield "Key Vault key versions never expire (rotationPolicy.attributes.expiryTime)"
        elif days is not None and expiry <= days:
            yield f"Key Vault key versions expire after {expiry} days, before rotation at {days}"
    elif resource.type == KEY_VAULT:
        props = section(resource.props, "properties")
        if props.get("enableRbacAuthorization") is not True:
            yield "Key Vault grants by access policies, not explicit RBAC role assignments"
        if props.get("enablePurgeProtection") is not True:
            yield "Key Vault keys can be purged before their retention ends (purge protection off)"
        if props.get("enableSoftDelete") is False:
            yield "Key Vault deletes keys immediately (soft delete off)"


# registry-cleanup


def registry_cleanup(resource: Resource) -> Iterator[str]:
    if resource.type != CONTAINER_REGISTRY:
        return
    retention = section(section(resource.props, "policies"), "retentionPolicy")
    if not _is_premium(resource):
        yield "container registry is not Premium, the only SKU with a retention policy"
    elif retention.get("status") != "enabled" or not retention.get("days"):
        yield "container registry keeps untagged manifests forever (retentionPolicy off)"


# network-flow-logs


def vnet_flow_logs(resources: Sequence[Resource]) -> Findings:
    logs = [log for log in by_type(resources, FLOW_LOG) if log.props.get("enabled") is not False]
    for vnet in by_type(resources, VIRTUAL_NETWORK):
        if not any(log.depends_on("targetResourceId", vnet) for log in logs):
            yield vnet.urn, "virtual network has no enabled flow log (targetResourceId)"


# network-no-open-ingress


def _admits_anyone(rule: Mapping[str, Any]) -> bool:
    if str(rule.get("direction", "")).lower() != "inbound":
        return False
    if str(rule.get("access", "")).lower() != "allow":
        return False
    sources = [rule.get("sourceAddressPrefix"), *(rule.get("sourceAddressPrefixes") or [])]
    return any(str(s).lower() in ANYWHERE for s in sources if s is not None)


def nsg_open_ingress(resource: Resource) -> Iterator[str]:
    if resource.type == NSG:
        rules = [r for r in resource.props.get("securityRules") or [] if isinstance(r, Mapping)]
    elif resource.type == SECURITY_RULE:
        rules = [resource.props]
    else:
        return
    for rule in rules:
        if _admits_anyone(rule):
            yield f"security rule {rule.get('name', '')!r} allows inbound traffic from anywhere"


# network-private-access


def _public_network_access(resource: Resource) -> Any:
    if resource.type == KEY_VAULT:
        return section(resource.props, "properties").get("publicNetworkAccess")
    return resource.props.get("publicNetworkAccess")


def prod_private_access(resource: Resource) -> Iterator[str]:
    """Prod storage, vaults and registries have no public endpoint: the network
    reaches them through private endpoints."""
    if resource.type not in (STORAGE_ACCOUNT, KEY_VAULT, CONTAINER_REGISTRY, ML_REGISTRY):
        return
    if (resource.props.get("tags") or {}).get("environment") != "prod":
        return
    if _public_network_access(resource) != "Disabled":
        yield "prod service has a public endpoint (publicNetworkAccess is not Disabled)"


RESOURCE_CHECKS = {
    "network-no-open-ingress": (nsg_open_ingress,),
    "network-private-access": (prod_private_access,),
    "storage-cmek": (storage_cmek,),
    "storage-no-public-access": (storage_no_public_access,),
    "storage-tls-only": (storage_tls_only,),
    "key-rotation": (key_rotation,),
    "registry-cleanup": (registry_cleanup,),
}
STACK_CHECKS = {
    "network-flow-logs": (vnet_flow_logs,),
    "storage-versioning": (storage_versioning,),
    "storage-access-logging": (storage_access_logging,),
}
