"""Known exceptions: each has an id, the rule it relaxes, a reason and a selector."""

from __future__ import annotations

from mlops_policies.model import Exemption, Resource


def _access_log_bucket(resource: Resource) -> bool:
    tags = resource.props.get("tags") or {}
    return resource.type == "aws:s3/bucket:Bucket" and tags.get("purpose") == "access-logs"


def _gcp_access_log_bucket(resource: Resource) -> bool:
    labels = resource.props.get("labels") or {}
    return resource.type == "gcp:storage/bucket:Bucket" and labels.get("purpose") == "access-logs"


def _non_prod_standard_registry(resource: Resource) -> bool:
    """A dev or staging ACR registry below Premium (see infra/azure/registry.py)."""
    tags = resource.props.get("tags") or {}
    sku = (resource.props.get("sku") or {}).get("name")
    return (
        resource.type == "azure-native:containerregistry:Registry"
        and tags.get("environment") in ("dev", "staging")
        and sku in ("Basic", "Standard")
    )


def _retained_vault_key(resource: Resource) -> bool:
    """A Key Vault key: kept by purge protection and retainOnDelete, not by protect."""
    return resource.type == "azure-native:keyvault:Key"


def _registry_bootstrap_vault(resource: Resource) -> bool:
    """The vault holding the key a prod registry is created with (infra/azure/registry.py)."""
    tags = resource.props.get("tags") or {}
    return (
        resource.type == "azure-native:keyvault:Vault"
        and tags.get("purpose") == "registry-bootstrap-key"
    )


EXEMPTIONS: tuple[Exemption, ...] = (
    Exemption(
        id="EX-001",
        policy="storage-cmek",
        reason="S3 server access logging delivers only to buckets encrypted with SSE-S3",
        applies=_access_log_bucket,
    ),
    Exemption(
        id="EX-002",
        policy="storage-access-logging",
        reason="the access-log bucket is the log store; logging it to itself would loop",
        applies=_access_log_bucket,
    ),
    Exemption(
        id="EX-101",
        policy="storage-access-logging",
        reason="the GCS access-log bucket is the log store; logging it to itself would loop",
        applies=_gcp_access_log_bucket,
    ),
    Exemption(
        id="EX-201",
        policy="storage-cmek",
        reason=(
            "ACR takes a customer-managed key only on Premium; non-prod registries are "
            "Standard to save cost and hold images rebuilt from source"
        ),
        applies=_non_prod_standard_registry,
    ),
    Exemption(
        id="EX-202",
        policy="registry-cleanup",
        reason=(
            "ACR's untagged-manifest retention policy is Premium-only; non-prod registries "
            "are Standard and are purged on demand (acr purge)"
        ),
        applies=_non_prod_standard_registry,
    ),
    Exemption(
        id="EX-203",
        policy="stateful-protected",
        reason=(
            "ARM never updates a vault key, so new key parameters come as a new key "
            "generation and the old key leaves the program; protect would block that "
            "update. The key stays in the vault: retainOnDelete in prod, and the vault's "
            "purge protection keeps a deleted key recoverable"
        ),
        applies=_retained_vault_key,
    ),
    Exemption(
        id="EX-204",
        policy="network-private-access",
        reason=(
            "ACR takes a customer-managed key only at creation, through a user-assigned "
            "identity, which a vault firewall does not admit; the registry is created with a "
            "key in this open vault (RBAC still decides who may use it) and moved to the "
            "platform key in the closed vault right after"
        ),
        applies=_registry_bootstrap_vault,
    ),
)


def exemption_for(policy: str, resource: Resource | None) -> Exemption | None:
    if resource is None:
        return None
    for exemption in EXEMPTIONS:
        if exemption.policy == policy and exemption.applies(resource):
            return exemption
    return None
