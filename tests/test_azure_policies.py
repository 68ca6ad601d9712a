"""Each Azure check: one resource that passes and one that fails, the exemptions that
relax them for non-prod registries only, then the same rules through the CrossGuard
objects the pack serves, on the shipped Azure plans."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import planned
from mlops_policies.exemptions import exemption_for
from mlops_policies.model import Resource
from mlops_policies.rules import RULES
from mlops_policies.rules.azure import (
    duration_days,
    key_rotation,
    registry_cleanup,
    storage_access_logging,
    storage_cmek,
    storage_no_public_access,
    storage_tls_only,
    storage_versioning,
)

from tools.mockcloud import Registration
from tools.policy_run import evaluate

ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
CONTAINER = "azure-native:storage:BlobContainer"
DIAGNOSTIC = "azure-native:monitor:DiagnosticSetting"
VAULT = "azure-native:keyvault:Vault"
KEY = "azure-native:keyvault:Key"
ACR = "azure-native:containerregistry:Registry"
ACCOUNT_ID = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/lake"
SECURE_ACCOUNT: dict[str, Any] = {
    "accountName": "lake",
    "isHnsEnabled": True,
    "enableHttpsTrafficOnly": True,
    "minimumTlsVersion": "TLS1_2",
    "allowBlobPublicAccess": False,
    "allowSharedKeyAccess": False,
    "networkRuleSet": {"defaultAction": "Deny", "bypass": "AzureServices"},
    "encryption": {
        "keySource": "Microsoft.Keyvault",
        "keyVaultProperties": {"keyName": "cmk", "keyVaultUri": "https://kv.vault.azure.net/"},
        "requireInfrastructureEncryption": True,
    },
}
SOFT_DELETE = {"enabled": True, "days": 7}
PREMIUM_REGISTRY: dict[str, Any] = {
    "sku": {"name": "Premium"},
    "adminUserEnabled": False,
    "anonymousPullEnabled": False,
    "encryption": {
        "status": "enabled",
        "keyVaultProperties": {"keyIdentifier": "https://kv.vault.azure.net/keys/cmk"},
    },
    "policies": {"retentionPolicy": {"status": "enabled", "days": 7}},
    "tags": {"environment": "prod"},
}


def res(type_: str, props: dict[str, Any], *, name: str = "r", deps=None) -> Resource:
    return Resource(type_, f"urn:pulumi:t::mlops::{type_}::{name}", name, props, False, deps or {})


def account(**changes: Any) -> Resource:
    return res(ACCOUNT, {**SECURE_ACCOUNT, **changes}, name="lake")


def registry(**changes: Any) -> Resource:
    return res(ACR, {**PREMIUM_REGISTRY, **changes}, name="acr")


def findings(check, resource: Resource) -> list[str]:
    return list(check(resource))


def stack_findings(check, *resources: Resource) -> list[str]:
    return [message for _urn, message in check(list(resources))]


# storage-cmek


def test_storage_cmek_on_accounts() -> None:
    assert findings(storage_cmek, account()) == []
    service_key = {**SECURE_ACCOUNT["encryption"], "keySource": "Microsoft.Storage"}
    assert findings(storage_cmek, account(encryption=service_key)) == [
        "storage account encryption keySource is 'Microsoft.Storage', "
        "not a customer-managed key ('Microsoft.Keyvault')"
    ]
    no_key = {"keySource": "Microsoft.Keyvault", "requireInfrastructureEncryption": True}
    assert findings(storage_cmek, account(encryption=no_key)) == [
        "storage account names no Key Vault key (keyVaultProperties)"
    ]
    single = {**SECURE_ACCOUNT["encryption"], "requireInfrastructureEncryption": False}
    assert findings(storage_cmek, account(encryption=single)) == [
        "storage account is not encrypted twice (requireInfrastructureEncryption)"
    ]


def test_storage_cmek_on_registries() -> None:
    assert findings(storage_cmek, registry()) == []
    assert findings(storage_cmek, registry(encryption={"status": "disabled"})) == [
        "container registry is not encrypted with a customer-managed key"
    ]
    assert findings(storage_cmek, registry(sku={"name": "Standard"}, encryption=None)) == [
        "container registry is not Premium, the only SKU that takes a customer key"
    ]


# storage-versioning


def test_hns_accounts_need_blob_and_container_soft_delete() -> None:
    lake = account()
    linked = {"accountName": [lake.urn]}

    def service(**props: Any) -> Resource:
        return res(BLOB_SERVICE, {"accountName": "lake", **props}, name="blob", deps=linked)

    both = service(deleteRetentionPolicy=SOFT_DELETE, containerDeleteRetentionPolicy=SOFT_DELETE)
    assert stack_findings(storage_versioning, lake, both) == []
    blobs_only = service(deleteRetentionPolicy=SOFT_DELETE)
    assert stack_findings(storage_versioning, lake, blobs_only) == [
        "ADLS Gen2 account cannot version blobs, so blob and container soft delete must "
        "both be on; container soft delete is off"
    ]
    assert stack_findings(storage_versioning, lake) == [
        "ADLS Gen2 account cannot version blobs, so blob and container soft delete must "
        "both be on; blob and container soft delete is off"
    ]


def test_flat_namespace_accounts_must_version_blobs() -> None:
    flat = account(isHnsEnabled=False)
    soft_delete_only = res(
        BLOB_SERVICE,
        {"accountName": "lake", "deleteRetentionPolicy": SOFT_DELETE},
        name="blob",
    )
    assert stack_findings(storage_versioning, flat, soft_delete_only) == [
        "storage account does not version blobs (isVersioningEnabled)"
    ]
    versioned = res(BLOB_SERVICE, {"accountName": "lake", "isVersioningEnabled": True})
    assert stack_findings(storage_versioning, flat, versioned) == []


def test_blob_service_of_another_account_does_not_count() -> None:
    other = res(
        BLOB_SERVICE,
        {
            "accountName": "other",
            "deleteRetentionPolicy": SOFT_DELETE,
            "containerDeleteRetentionPolicy": SOFT_DELETE,
        },
    )
    assert len(stack_findings(storage_versioning, account(), other)) == 1


# storage-no-public-access


def test_no_public_access_on_accounts() -> None:
    assert findings(storage_no_public_access, account()) == []
    open_account = account(
        allowBlobPublicAccess=True,
        allowSharedKeyAccess=None,
        networkRuleSet={"defaultAction": "Allow"},
    )
    assert findings(storage_no_public_access, open_account) == [
        "storage account allows public blob access (allowBlobPublicAccess)",
        "storage account accepts shared keys, and SAS tokens signed with them "
        "(allowSharedKeyAccess)",
        "storage account firewall does not deny by default (networkRuleSet.defaultAction)",
    ]


def test_no_public_access_on_containers() -> None:
    assert findings(storage_no_public_access, res(CONTAINER, {"publicAccess": "None"})) == []
    assert findings(storage_no_public_access, res(CONTAINER, {})) == []
    assert findings(storage_no_public_access, res(CONTAINER, {"publicAccess": "Blob"})) == [
        "blob container allows anonymous access (publicAccess 'Blob')"
    ]


def test_no_public_access_on_registries() -> None:
    assert findings(storage_no_public_access, registry()) == []
    assert findings(
        storage_no_public_access, registry(anonymousPullEnabled=True, adminUserEnabled=True)
    ) == [
        "container registry allows anonymous pull (anonymousPullEnabled)",
        "container registry has an admin user with a shared password (adminUserEnabled)",
    ]


# storage-access-logging


def _setting(uri: str, categories=("StorageRead", "StorageWrite", "StorageDelete"), deps=None):
    return res(
        DIAGNOSTIC,
        {
            "resourceUri": uri,
            "workspaceId": "/subscriptions/s/resourceGroups/g/providers/x/workspaces/logs",
            "logs": [{"category": c, "enabled": True} for c in categories],
        },
        name="diag",
        deps=deps,
    )


def test_access_logging_needs_all_blob_categories_on_the_blob_service() -> None:
    lake = account()
    linked = {"resourceUri": [lake.urn]}
    blob_uri = f"{ACCOUNT_ID}/blobServices/default"
    assert stack_findings(storage_access_logging, lake, _setting(blob_uri, deps=linked)) == []
    # Matched by the account's name when the dependency is not recorded.
    assert stack_findings(storage_access_logging, lake, _setting(blob_uri)) == []
    expected = [
        "storage account blob service has no diagnostic setting sending "
        "StorageRead, StorageWrite, StorageDelete logs to a log store"
    ]
    reads_only = _setting(blob_uri, categories=("StorageRead",), deps=linked)
    assert stack_findings(storage_access_logging, lake, reads_only) == expected
    on_the_account = _setting(ACCOUNT_ID, deps=linked)
    assert stack_findings(storage_access_logging, lake, on_the_account) == expected
    other = _setting(blob_uri.replace("/lake/", "/other/"))
    assert stack_findings(storage_access_logging, lake, other) == expected
    assert stack_findings(storage_access_logging, lake) == expected


# storage-tls-only


def test_tls_only() -> None:
    assert findings(storage_tls_only, account()) == []
    assert findings(storage_tls_only, account(minimumTlsVersion="TLS1_3")) == []
    reported = {**SECURE_ACCOUNT, "supportsHttpsTrafficOnly": True}
    del reported["enableHttpsTrafficOnly"]
    assert findings(storage_tls_only, res(ACCOUNT, reported)) == []
    assert findings(
        storage_tls_only, account(enableHttpsTrafficOnly=False, minimumTlsVersion="TLS1_0")
    ) == [
        "storage account accepts plain HTTP (enableHttpsTrafficOnly)",
        "storage account accepts TLS below 1.2 (minimumTlsVersion 'TLS1_0')",
    ]
    assert findings(storage_tls_only, res(CONTAINER, {})) == []


# key-rotation


def _key(*actions: dict[str, Any], expiry: str | None = None) -> Resource:
    policy: dict[str, Any] = {"lifetimeActions": list(actions)}
    if expiry:
        policy["attributes"] = {"expiryTime": expiry}
    return res(KEY, {"properties": {"kty": "RSA", "rotationPolicy": policy}})


def _rotate(**trigger: str) -> dict[str, Any]:
    return {"action": {"type": "rotate"}, "trigger": trigger}


def test_duration_days() -> None:
    assert duration_days("P365D") == 365
    assert duration_days("P1Y") == 365
    assert duration_days("P18M") == 540
    assert duration_days("P1Y6M10D") == 555
    assert duration_days("PT1H") is None
    assert duration_days("P") is None
    assert duration_days(None) is None


def test_key_rotation_on_keys() -> None:
    assert findings(key_rotation, _key(_rotate(timeAfterCreate="P365D"), expiry="P730D")) == []
    assert findings(key_rotation, _key(_rotate(timeAfterCreate="P90D"), expiry="P180D")) == []
    # Rotation 30 days before a two-year expiry is rotation after 700 days.
    late = _key(_rotate(timeBeforeExpiry="P30D"), expiry="P2Y")
    assert findings(key_rotation, late) == [
        "Key Vault key rotates every 700 days, less often than every 365"
    ]
    assert findings(key_rotation, _key(_rotate(timeBeforeExpiry="P400D"), expiry="P2Y")) == []
    assert findings(key_rotation, _key(_rotate(timeAfterCreate="P2Y"), expiry="P3Y")) == [
        "Key Vault key rotates every 730 days, less often than every 365"
    ]
    notify_only = {"action": {"type": "notify"}, "trigger": {"timeBeforeExpiry": "P30D"}}
    assert findings(key_rotation, _key(notify_only, expiry="P1Y")) == [
        "Key Vault key has no rotation policy with a rotate action"
    ]
    assert findings(key_rotation, res(KEY, {"properties": {"kty": "RSA"}})) == [
        "Key Vault key has no rotation policy with a rotate action",
        "Key Vault key versions never expire (rotationPolicy.attributes.expiryTime)",
    ]


def test_key_versions_must_expire_after_their_rotation() -> None:
    assert findings(key_rotation, _key(_rotate(timeAfterCreate="P365D"))) == [
        "Key Vault key versions never expire (rotationPolicy.attributes.expiryTime)"
    ]
    assert findings(key_rotation, _key(_rotate(timeAfterCreate="P365D"), expiry="P300D")) == [
        "Key Vault key versions expire after 300 days, before rotation at 365"
    ]


def test_key_rotation_on_vaults() -> None:
    good = {"enableRbacAuthorization": True, "enablePurgeProtection": True}
    assert findings(key_rotation, res(VAULT, {"properties": good})) == []
    bad = {"enablePurgeProtection": False, "enableSoftDelete": False}
    assert findings(key_rotation, res(VAULT, {"properties": bad})) == [
        "Key Vault grants by access policies, not explicit RBAC role assignments",
        "Key Vault keys can be purged before their retention ends (purge protection off)",
        "Key Vault deletes keys immediately (soft delete off)",
    ]


# registry-cleanup


def test_registry_cleanup() -> None:
    assert findings(registry_cleanup, registry()) == []
    disabled = registry(policies={"retentionPolicy": {"status": "disabled", "days": 7}})
    assert findings(registry_cleanup, disabled) == [
        "container registry keeps untagged manifests forever (retentionPolicy off)"
    ]
    assert findings(registry_cleanup, registry(sku={"name": "Standard"}, policies=None)) == [
        "container registry is not Premium, the only SKU with a retention policy"
    ]


def test_premium_only_findings_are_exempt_for_non_prod_standard_registries_only() -> None:
    standard = {"sku": {"name": "Standard"}, "policies": None, "encryption": None}
    dev = registry(**standard, tags={"environment": "dev"})
    assert exemption_for("storage-cmek", dev).id == "EX-201"
    assert exemption_for("registry-cleanup", dev).id == "EX-202"
    assert exemption_for("storage-no-public-access", dev) is None
    # A cheap registry in prod, or a Premium one anywhere, is judged in full.
    assert exemption_for("storage-cmek", registry(**standard, tags={"environment": "prod"})) is None
    assert exemption_for("registry-cleanup", registry(tags={"environment": "dev"})) is None
    assert exemption_for("storage-cmek", registry(**standard, tags={})) is None


def test_every_azure_check_is_registered_under_its_rule() -> None:
    by_name = {rule.name: rule for rule in RULES}
    for name, check in (
        ("storage-cmek", storage_cmek),
        ("storage-no-public-access", storage_no_public_access),
        ("storage-tls-only", storage_tls_only),
        ("key-rotation", key_rotation),
        ("registry-cleanup", registry_cleanup),
    ):
        assert check in by_name[name].resource_checks
    assert storage_versioning in by_name["storage-versioning"].stack_checks
    assert storage_access_logging in by_name["storage-access-logging"].stack_checks


# Through CrossGuard, on the shipped plans


@pytest.mark.parametrize("stack", ["azure-dev", "azure-prod"])
def test_shipped_azure_stacks_pass_every_rule(stack: str) -> None:
    plan = planned(stack)
    assert plan.mandatory == []
    assert plan.findings == []


def _broken(stack: str, type_: str, suffix: str = "", **inputs: Any) -> list[Registration]:
    return [
        dataclasses.replace(r, inputs={**r.inputs, **inputs})
        if r.type == type_ and r.name.endswith(suffix)
        else r
        for r in planned(stack).registrations
    ]


def test_crossguard_reports_a_broken_lake_account() -> None:
    broken = _broken(
        "azure-prod",
        ACCOUNT,
        "-lake-account",
        allowSharedKeyAccess=True,
        minimumTlsVersion="TLS1_0",
    )
    found = {(f.policy, f.level, f.urn.rsplit("::", 1)[1]) for f in evaluate(broken, "prod")}
    assert found == {
        ("storage-no-public-access", "mandatory", "mlops-azure-prod-lake-account"),
        ("storage-tls-only", "mandatory", "mlops-azure-prod-lake-account"),
    }


def test_crossguard_reports_a_lake_without_container_soft_delete() -> None:
    broken = _broken("azure-dev", BLOB_SERVICE, containerDeleteRetentionPolicy={"enabled": False})
    assert [(f.policy, f.urn.rsplit("::", 1)[1]) for f in evaluate(broken, "dev")] == [
        ("storage-versioning", "mlops-azure-dev-lake-account")
    ]


def test_exemptions_hold_in_dev_and_do_not_leak_into_prod() -> None:
    # The shipped dev registry is Standard: exempt. The same registry tagged prod is
    # not, and, with its public endpoint, not private enough for prod either.
    as_prod = _broken("azure-dev", ACR, tags={**_acr_tags("azure-dev"), "environment": "prod"})
    assert {(f.policy, f.level) for f in evaluate(as_prod, "dev")} == {
        ("storage-cmek", "mandatory"),
        ("registry-cleanup", "mandatory"),
        ("network-private-access", "mandatory"),
    }


def _acr_tags(stack: str) -> dict[str, str]:
    return next(r for r in planned(stack).registrations if r.type == ACR).inputs["tags"]
