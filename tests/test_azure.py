"""The Azure components on mocks: the inputs that make them private, encrypted and kept."""

from __future__ import annotations

import functools
import re
from collections import Counter

import pytest
from conftest import of_type, one, plan_with, planned, platform_base
from mlops_policies.catalog import STATEFUL_TYPES

from infra.azure.rbac import KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER, assignment_name
from infra.naming import Namer, unique_token
from infra.settings import SettingsError
from tools.mockcloud import AZURE_SUBSCRIPTION, AZURE_TENANT, stable_uuid

ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
CONTAINER = "azure-native:storage:BlobContainer"
LIFECYCLE = "azure-native:storage:ManagementPolicy"
DIAGNOSTIC = "azure-native:monitor:DiagnosticSetting"
WORKSPACE = "azure-native:operationalinsights:Workspace"
LOCK = "azure-native:authorization:ManagementLockByScope"
VAULT = "azure-native:keyvault:Vault"
KEY = "azure-native:keyvault:Key"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ACR = "azure-native:containerregistry:Registry"
ML_REGISTRY = "azure-native:machinelearningservices:Registry"
GROUP = "azure-native:resources:ResourceGroup"
FLOW_LOG = "azure-native:network:FlowLog"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
DNS_ZONE = "azure-native:privatedns:PrivateZone"
DNS_LINK = "azure-native:privatedns:VirtualNetworkLink"
ROTATION = "pulumi-python:dynamic/azure:RegistryKeyRotation"
# The network of a stack without a Premium registry.
NETWORK = {
    "azure-native:network:VirtualNetwork": 1,
    "azure-native:network:Subnet": 2,
    "azure-native:network:NetworkSecurityGroup": 2,
    PRIVATE_ENDPOINT: 3,
    ZONE_GROUP: 3,
    DNS_ZONE: 3,
    DNS_LINK: 3,
    FLOW_LOG: 1,
}
ZONES = ("raw", "curated", "features")
DEV_TOKEN = unique_token(AZURE_SUBSCRIPTION, "azure-dev")
PROD_TOKEN = unique_token(AZURE_SUBSCRIPTION, "azure-prod")
TOKENS = {"azure-dev": DEV_TOKEN, "azure-prod": PROD_TOKEN}
SUBSCRIPTION = f"/subscriptions/{AZURE_SUBSCRIPTION}"


@pytest.fixture(scope="module")
def dev():
    return planned("azure-dev")


@pytest.fixture(scope="module")
def prod():
    return planned("azure-prod")


# One plan for many settings at once: each Azure plan costs about a second.
VARIANT = {
    "lake": {
        "zones": ["bronze", "gold"],
        "tiering": {"coolAfterDays": 45, "archiveAfterDays": 120},
        "retention": {"softDeleteDays": 21, "noncurrentVersionDays": 60},
        "accessLogs": {"retentionDays": 400},
    },
    "registries": {"models": {"enabled": False}},
    "network": {"egress": "nat"},
    # Endpoints read the default zones; tests/test_azure_endpoints.py has them.
    "endpoints": {},
    "acceleratorPools": {},
}


@functools.cache
def variant():
    """azure-dev with every `VARIANT` setting changed."""
    return plan_with("azure-dev", **VARIANT)


@functools.cache
def unlogged():
    """azure-dev without access logs and without an archive tier."""
    return plan_with(
        "azure-dev",
        lake={
            "tiering": {"coolAfterDays": 30, "archiveAfterDays": None},
            "accessLogs": {"enabled": False},
        },
        endpoints={},
        acceleratorPools={},
    )


def _arm_prefix(stack: str) -> str:
    return f"{SUBSCRIPTION}/resourceGroups/mlops-{stack}/providers"


# Inventory


def test_resource_inventory(dev, prod) -> None:
    # The lake and the network's flow log store: an account, its blob service,
    # lifecycle and access logs each; the flow log writer's identity and grant.
    expected = {
        GROUP: 1,
        VAULT: 1,
        KEY: 1,
        IDENTITY: 2,
        ROLE_ASSIGNMENT: 2,
        ACCOUNT: 2,
        BLOB_SERVICE: 2,
        CONTAINER: 3,
        LIFECYCLE: 2,
        WORKSPACE: 1,
        DIAGNOSTIC: 2,
        ACR: 1,
        ML_REGISTRY: 1,
        **NETWORK,
    }
    # Prod: the lake's lock, the registry's bootstrap vault, key and grant, its
    # grant on the platform key and the rotation onto it, and a private endpoint
    # with its DNS zone for the Premium registry.
    prod_only = {
        LOCK: 1,
        VAULT: 1,
        KEY: 1,
        ROLE_ASSIGNMENT: 2,
        ROTATION: 1,
        PRIVATE_ENDPOINT: 1,
        ZONE_GROUP: 1,
        DNS_ZONE: 1,
        DNS_LINK: 1,
    }
    # The workspace's private endpoint and its two DNS zones (api, notebooks) are
    # the network's; the serving components are counted in tests/test_azure_endpoints.py.
    prod_only |= {PRIVATE_ENDPOINT: 2, ZONE_GROUP: 2, DNS_ZONE: 3, DNS_LINK: 3}
    assert Counter(r.type for r in platform_base(dev) if r.custom) == expected
    assert Counter(r.type for r in platform_base(prod) if r.custom) == Counter(expected) + Counter(
        prod_only
    )
    components = Counter(r.type for r in prod.registrations if not r.custom)
    assert components == {
        "pulumi:pulumi:Stack": 1,
        "mlops:azure:PlatformKey": 1,
        "mlops:azure:DataLake": 1,
        "mlops:azure:ContainerRegistry": 1,
        "mlops:azure:ModelRegistry": 1,
        "mlops:azure:Network": 1,
        "mlops:azure:MlWorkspace": 1,
        "mlops:azure:ModelEndpoint": 1,
        "mlops:azure:AlertRoute": 1,
        "mlops:azure:AuditLogs": 1,
        "mlops:azure:AcceleratorPool": 1,
        "mlops:azure:CiIdentities": 1,
    }


def test_every_resource_but_the_group_is_parented_by_its_component(prod) -> None:
    stack_urn = one(prod, "pulumi:pulumi:Stack").urn
    for reg in prod.registrations:
        if reg.type.startswith("azure-native:") and reg.type != GROUP:
            assert reg.parent != stack_urn, reg.name
            assert re.search(r"\$mlops:azure:\w+::", reg.parent), reg.name
    assert one(prod, GROUP).parent == stack_urn


def test_one_resource_group_holds_the_stack(prod) -> None:
    group = one(prod, GROUP)
    assert group.inputs["resourceGroupName"] == "mlops-azure-prod"
    assert group.inputs["location"] == "westeurope"
    for reg in prod.registrations:
        # Flow logs belong to the region's Network Watcher, in Azure's own group.
        if "resourceGroupName" in reg.inputs and reg.type not in (GROUP, FLOW_LOG):
            assert reg.inputs["resourceGroupName"] == "mlops-azure-prod", reg.name
            assert group.urn in reg.property_dependencies["resourceGroupName"], reg.name


@pytest.mark.parametrize("stack", ["azure-dev", "azure-prod"])
def test_stateful_resources_are_protected_and_retained_only_in_prod(stack: str) -> None:
    plan = planned(stack)
    stateful = [r for r in plan.registrations if r.type in STATEFUL_TYPES]
    assert {r.type for r in stateful} >= {
        GROUP,
        ACCOUNT,
        CONTAINER,
        VAULT,
        KEY,
        IDENTITY,
        ACR,
        WORKSPACE,
        ML_REGISTRY,
    }
    in_prod = stack == "azure-prod"
    for reg in stateful:
        # Keys are retained but not protected, so a key generation can retire (EX-203).
        protected = in_prod and reg.type != KEY
        assert (reg.protect, reg.retain_on_delete) == (protected, in_prod), reg.name
    # Configuration that Azure recreates on demand is not pinned.
    for kind in (BLOB_SERVICE, LIFECYCLE, DIAGNOSTIC, ROLE_ASSIGNMENT):
        assert not any(r.protect for r in of_type(plan, kind))


# Key


def test_key_is_hsm_backed_wraps_only_and_rotates_before_versions_expire(dev) -> None:
    key = _key(dev)
    assert key.inputs["keyName"] == "mlops-azure-dev-cmk-g2"
    props = key.inputs["properties"]
    assert props["kty"] == "RSA-HSM"
    assert props["keySize"] == 3072
    assert props["keyOps"] == ["wrapKey", "unwrapKey"]
    assert props["rotationPolicy"] == {
        "lifetimeActions": [
            {"action": {"type": "rotate"}, "trigger": {"timeAfterCreate": "P365D"}}
        ],
        "attributes": {"expiryTime": "P730D"},
    }
    # No absolute expiry on the first version: it would make every plan differ.
    assert "exp" not in props["attributes"]
    assert key.inputs["vaultName"] == _vault(dev).inputs["vaultName"]
    assert key.inputs["tags"]["key-generation"] == "2"


@pytest.mark.parametrize(("stack", "days"), [("azure-dev", 7), ("azure-prod", 90)])
def test_vault_uses_rbac_purge_protection_and_a_closed_firewall(stack: str, days: int) -> None:
    vault = _vault(planned(stack))
    name = vault.inputs["vaultName"]
    assert name == f"mlops{stack.replace('-', '')}kv{TOKENS[stack]}"
    assert len(name) <= 24
    assert vault.inputs["properties"] == {
        "tenantId": AZURE_TENANT,
        # Premium: HSM-backed keys.
        "sku": {"family": "A", "name": "premium"},
        "enableRbacAuthorization": True,
        "enableSoftDelete": True,
        "softDeleteRetentionInDays": days,
        "enablePurgeProtection": True,
        "enabledForDeployment": False,
        "enabledForDiskEncryption": False,
        "enabledForTemplateDeployment": False,
        # Prod has no public endpoint; trusted Azure services still reach the keys.
        "publicNetworkAccess": "Disabled" if stack == "azure-prod" else "Enabled",
        "networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"},
    }
    assert "accessPolicies" not in vault.inputs["properties"]


def test_only_the_encryption_identity_may_use_the_key_and_only_that_key(dev) -> None:
    grant = _key_grant(dev)
    key, identity = _key(dev), _identity(dev)
    key_id = (
        f"{_arm_prefix('azure-dev')}/Microsoft.KeyVault/vaults/mlopsazuredevkv{DEV_TOKEN}/keys/"
    )
    assert grant.inputs["scope"] == key_id + "mlops-azure-dev-cmk-g2"
    assert key.urn in grant.property_dependencies["scope"]
    assert identity.urn in grant.property_dependencies["principalId"]
    assert grant.inputs["roleDefinitionId"] == (
        f"{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER}"
    )
    assert grant.inputs["principalType"] == "ServicePrincipal"
    # Deterministic, derived from what it grants.
    assert grant.inputs["roleAssignmentName"] == assignment_name(
        grant.inputs["scope"], grant.inputs["principalId"], KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER
    )
    assert assignment_name("/a", "p", "r") != assignment_name("/b", "p", "r")


# Lake


def _account(plan):
    return one(plan, ACCOUNT, "-lake-account")


def _key(plan):
    return one(plan, KEY, "-key-g2")


def _vault(plan):
    return one(plan, VAULT, "-key-vault")


def _identity(plan):
    return one(plan, IDENTITY, "-key-identity")


def _key_grant(plan):
    return one(plan, ROLE_ASSIGNMENT, "-key-encryption-user")


@pytest.mark.parametrize("stack", ["azure-dev", "azure-prod"])
def test_lake_account_is_adls_gen2_https_only_entra_only_and_firewalled(stack: str) -> None:
    account = _account(planned(stack)).inputs
    assert account["kind"] == "StorageV2"
    assert account["isHnsEnabled"] is True
    assert account["enableHttpsTrafficOnly"] is True
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    assert account["allowSharedKeyAccess"] is False
    assert account["defaultToOAuthAuthentication"] is True
    assert account["allowCrossTenantReplication"] is False
    assert account["allowedCopyScope"] == "AAD"
    assert account["isSftpEnabled"] is False
    assert account["isLocalUserEnabled"] is False
    assert account["networkRuleSet"] == {
        "defaultAction": "Deny",
        "bypass": "AzureServices",
        "ipRules": [],
        "virtualNetworkRules": [],
    }
    assert account["tags"]["purpose"] == "lake"
    assert account["tags"]["stack"] == stack


def test_lake_account_name_is_globally_unique_and_deterministic(dev, prod) -> None:
    for plan, stack in ((dev, "azure-dev"), (prod, "azure-prod")):
        name = _account(plan).inputs["accountName"]
        assert name == f"mlops{stack.replace('-', '')}lake{TOKENS[stack]}"
        assert re.fullmatch(r"[a-z0-9]{3,24}", name)
    assert unique_token("another-subscription", "azure-dev") != DEV_TOKEN


def test_prod_lake_has_no_public_endpoint_and_is_zone_redundant(dev, prod) -> None:
    assert _account(prod).inputs["publicNetworkAccess"] == "Disabled"
    assert _account(prod).inputs["sku"] == {"name": "Standard_ZRS"}
    # Dev keeps the endpoint (firewall still denies) so a developer IP can be allowed.
    assert _account(dev).inputs["publicNetworkAccess"] == "Enabled"
    assert _account(dev).inputs["sku"] == {"name": "Standard_LRS"}


def test_lake_is_encrypted_twice_with_the_platform_key_through_the_identity(prod) -> None:
    account = _account(prod)
    identity_id = (
        f"{_arm_prefix('azure-prod')}/Microsoft.ManagedIdentity/userAssignedIdentities/"
        "mlops-azure-prod-key-identity"
    )
    encryption = account.inputs["encryption"]
    assert encryption["keySource"] == "Microsoft.Keyvault"
    assert encryption["requireInfrastructureEncryption"] is True
    assert encryption["keyVaultProperties"] == {
        "keyName": "mlops-azure-prod-cmk-g2",
        "keyVaultUri": f"https://mlopsazureprodkv{PROD_TOKEN}.vault.azure.net/",
    }
    assert "keyVersion" not in encryption["keyVaultProperties"]
    assert encryption["encryptionIdentity"] == {"encryptionUserAssignedIdentity": identity_id}
    assert encryption["services"] == {
        s: {"enabled": True, "keyType": "Account"} for s in ("blob", "file", "queue", "table")
    }
    assert account.inputs["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": [identity_id],
    }
    # Created only once the identity may wrap with the key.
    assert _key_grant(prod).urn in account.dependencies


def test_soft_delete_days_come_from_settings_and_versioning_is_not_requested() -> None:
    service = one(variant(), BLOB_SERVICE, "-lake-blob-service").inputs
    assert service["deleteRetentionPolicy"] == {"enabled": True, "days": 21}
    assert service["containerDeleteRetentionPolicy"] == {"enabled": True, "days": 21}
    assert service["blobServicesName"] == "default"
    # Azure offers no blob versioning on a hierarchical namespace.
    assert "isVersioningEnabled" not in service
    lake_service = one(planned("azure-dev"), BLOB_SERVICE, "-lake-blob-service")
    assert lake_service.inputs["deleteRetentionPolicy"]["days"] == 7


def test_one_private_filesystem_per_zone(dev) -> None:
    account = _account(dev)
    filesystems = of_type(dev, CONTAINER)
    assert sorted(fs.inputs["containerName"] for fs in filesystems) == sorted(ZONES)
    for fs in filesystems:
        assert fs.inputs["publicAccess"] == "None"
        assert fs.inputs["metadata"] == {"zone": fs.inputs["containerName"]}
        assert account.urn in fs.property_dependencies["accountName"]
        assert fs.parent.endswith("::mlops-azure-dev-lake")


def test_filesystems_follow_the_zone_settings() -> None:
    plan = variant()
    assert sorted(fs.inputs["containerName"] for fs in of_type(plan, CONTAINER)) == [
        "bronze",
        "gold",
    ]
    assert plan.outputs["lakeFilesystemNames"] == {"bronze": "bronze", "gold": "gold"}


def test_lifecycle_tiers_and_expires_by_settings() -> None:
    policy = one(variant(), LIFECYCLE, "-lake-lifecycle")
    assert policy.inputs["managementPolicyName"] == "default"
    rules = {r["name"]: r for r in policy.inputs["policy"]["rules"]}
    assert set(rules) == {"tiering", "expire-snapshots"}
    for rule in rules.values():
        assert rule["enabled"] is True and rule["type"] == "Lifecycle"
        assert rule["definition"]["filters"] == {"blobTypes": ["blockBlob"]}
    assert rules["tiering"]["definition"]["actions"] == {
        "baseBlob": {
            "tierToCool": {"daysAfterModificationGreaterThan": 45},
            "tierToCold": {"daysAfterModificationGreaterThan": 120},
        }
    }
    assert rules["expire-snapshots"]["definition"]["actions"] == {
        "snapshot": {"delete": {"daysAfterCreationGreaterThan": 60}}
    }


def test_no_archive_setting_means_no_cold_tier() -> None:
    rules = {
        r["name"]: r
        for r in one(unlogged(), LIFECYCLE, "-lake-lifecycle").inputs["policy"]["rules"]
    }
    assert rules["tiering"]["definition"]["actions"]["baseBlob"] == {
        "tierToCool": {"daysAfterModificationGreaterThan": 30}
    }


@pytest.mark.parametrize(("stack", "days"), [("azure-dev", 90), ("azure-prod", 365)])
def test_blob_access_is_logged_to_the_lake_workspace(stack: str, days: int) -> None:
    plan = planned(stack)
    account, workspace = _account(plan), one(plan, WORKSPACE, "-lake-logs")
    setting = one(plan, DIAGNOSTIC, "-lake-access-logs")
    account_id = (
        f"{_arm_prefix(stack)}/Microsoft.Storage/storageAccounts/{account.inputs['accountName']}"
    )
    assert setting.inputs["resourceUri"] == f"{account_id}/blobServices/default"
    assert account.urn in setting.property_dependencies["resourceUri"]
    assert setting.inputs["workspaceId"] == (
        f"{_arm_prefix(stack)}/Microsoft.OperationalInsights/workspaces/mlops-{stack}-lake-logs"
    )
    assert workspace.urn in setting.property_dependencies["workspaceId"]
    assert setting.inputs["logs"] == [
        {"category": c, "enabled": True} for c in ("StorageRead", "StorageWrite", "StorageDelete")
    ]
    assert workspace.inputs["retentionInDays"] == days
    assert workspace.inputs["features"] == {
        "disableLocalAuth": True,
        "enableLogAccessUsingOnlyResourcePermissions": True,
    }
    assert plan.outputs["lakeAccessLogWorkspaceId"] == setting.inputs["workspaceId"]


def test_log_retention_comes_from_settings_within_the_workspace_bounds() -> None:
    assert one(variant(), WORKSPACE, "-lake-logs").inputs["retentionInDays"] == 400
    for days in (10, 731):
        with pytest.raises(SettingsError, match=r"outside what a Log Analytics workspace keeps"):
            plan_with("azure-dev", lake={"accessLogs": {"retentionDays": days}})


def test_access_logs_off_means_no_workspace_and_no_output() -> None:
    plan = unlogged()
    # (The audit trail's own workspace remains: tests/test_operations.py.)
    assert [w for w in platform_base(plan) if w.type == WORKSPACE] == []
    assert [d for d in platform_base(plan) if d.type == DIAGNOSTIC] == []
    # The flow log store then goes unlogged too, and is refused the same way.
    assert len(of_type(plan, ACCOUNT)) == 2
    assert "lakeAccessLogWorkspaceId" not in plan.outputs
    # The pack reports it: advisory in dev, mandatory in staging and prod.
    assert plan.mandatory == []
    assert {f.policy for f in plan.advisory} == {"storage-access-logging"}


def test_prod_locks_the_lake_account_and_dev_does_not(dev, prod) -> None:
    lock = one(prod, LOCK)
    account = _account(prod)
    assert lock.inputs["level"] == "CanNotDelete"
    assert lock.inputs["scope"] == (
        f"{_arm_prefix('azure-prod')}/Microsoft.Storage/storageAccounts/"
        f"{account.inputs['accountName']}"
    )
    assert account.urn in lock.property_dependencies["scope"]
    assert of_type(dev, LOCK) == []


# Registries


def test_registry_authenticates_every_pull_and_push(dev, prod) -> None:
    for plan in (dev, prod):
        registry = one(plan, ACR).inputs
        assert registry["adminUserEnabled"] is False
        assert registry["anonymousPullEnabled"] is False


def test_prod_registry_is_premium_zone_redundant_closed_and_cmk_encrypted(prod) -> None:
    registry = one(prod, ACR)
    inputs = registry.inputs
    assert inputs["registryName"] == f"mlopsazureprodacr{PROD_TOKEN}"
    assert inputs["sku"] == {"name": "Premium"}
    assert inputs["zoneRedundancy"] == "Enabled"
    assert inputs["publicNetworkAccess"] == "Disabled"
    assert inputs["networkRuleSet"] == {"defaultAction": "Deny"}
    assert inputs["networkRuleBypassOptions"] == "AzureServices"
    assert inputs["policies"] == {
        "retentionPolicy": {"status": "enabled", "days": 7},
        "exportPolicy": {"status": "disabled"},
    }
    identity = _identity(prod)
    identity_id = (
        f"{_arm_prefix('azure-prod')}/Microsoft.ManagedIdentity/userAssignedIdentities/"
        f"{identity.name}"
    )
    # Its own identity reaches the closed vault; the encryption identity only
    # serves the creation, with the bootstrap key.
    assert inputs["identity"] == {
        "type": "SystemAssigned, UserAssigned",
        "userAssignedIdentities": {identity_id: {}},
    }
    boot_vault = one(prod, VAULT, "-images-bootstrap")
    boot_key = one(prod, KEY, "-images-bootstrap-g2")
    assert inputs["encryption"] == {
        "status": "enabled",
        "keyVaultProperties": {
            "keyIdentifier": (
                f"https://{boot_vault.inputs['vaultName']}.vault.azure.net/keys/"
                "mlops-azure-prod-acr-boot-g2"
            ),
            "identity": stable_uuid(IDENTITY, identity.name),
        },
    }
    assert boot_key.urn in registry.property_dependencies["encryption"]
    boot_grant = one(prod, ROLE_ASSIGNMENT, "-images-bootstrap-user")
    assert boot_grant.urn in registry.dependencies
    assert boot_grant.inputs["scope"].endswith("/keys/mlops-azure-prod-acr-boot-g2")
    assert identity.urn in boot_grant.property_dependencies["principalId"]


def test_prod_registry_moves_to_the_platform_key_through_its_own_identity(prod) -> None:
    registry = one(prod, ACR)
    grant = one(prod, ROLE_ASSIGNMENT, "-images-platform-key-user")
    assert grant.inputs["principalId"] == stable_uuid(ACR, registry.name, "system")
    assert registry.urn in grant.property_dependencies["principalId"]
    assert grant.inputs["scope"] == _key_grant(prod).inputs["scope"]
    assert grant.inputs["roleDefinitionId"].endswith(KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER)
    rotation = one(prod, ROTATION)
    assert rotation.inputs["registryId"] == (
        f"{_arm_prefix('azure-prod')}/Microsoft.ContainerRegistry/registries/"
        f"{registry.inputs['registryName']}"
    )
    assert rotation.inputs["keyIdentifier"] == prod.outputs["keyId"]
    # Only once the registry's identity may use the key.
    assert grant.urn in rotation.dependencies
    assert rotation.parent == registry.parent


def test_the_bootstrap_vault_is_the_only_open_one_and_holds_one_key(prod) -> None:
    boot = one(prod, VAULT, "-images-bootstrap").inputs
    assert boot["vaultName"] == f"mlopsazureprodboot{PROD_TOKEN}"
    assert boot["tags"]["purpose"] == "registry-bootstrap-key"
    props = boot["properties"]
    # Open to networks (ACR's user-assigned identity is no trusted service), but
    # RBAC-only, purge-protected and HSM-backed like the platform vault.
    assert props["publicNetworkAccess"] == "Enabled"
    assert props["networkAcls"] == {"defaultAction": "Allow", "bypass": "AzureServices"}
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True
    assert props["sku"]["name"] == "premium"
    assert _vault(prod).inputs["properties"]["publicNetworkAccess"] == "Disabled"
    assert [k.name for k in of_type(prod, KEY)] == [
        "mlops-azure-prod-images-bootstrap-g2",
        "mlops-azure-prod-key-g2",
    ]
    assert {f.policy for f in prod.findings} == set()


def test_dev_registry_is_standard_and_takes_no_premium_inputs(dev) -> None:
    inputs = one(dev, ACR).inputs
    assert inputs["sku"] == {"name": "Standard"}
    assert inputs["publicNetworkAccess"] == "Enabled"
    assert inputs["zoneRedundancy"] == "Disabled"  # the SDK's default, stated in the plan
    for premium_only in ("encryption", "identity", "policies", "networkRuleSet"):
        assert premium_only not in inputs


def test_untagged_retention_days_come_from_settings() -> None:
    plan = plan_with(
        "azure-prod", registries={"containers": {"untaggedRetentionDays": 14}}, endpoints={}
    )
    retention = one(plan, ACR).inputs["policies"]["retentionPolicy"]
    assert retention == {"status": "enabled", "days": 14}


def test_repository_urls_name_the_configured_repositories(prod) -> None:
    login = f"mlopsazureprodacr{PROD_TOKEN}.azurecr.io"
    assert prod.outputs["containerRegistryLoginServer"] == login
    assert prod.outputs["containerRepositoryUrls"] == {
        "training": f"{login}/training",
        "serving": f"{login}/serving",
    }


@pytest.mark.parametrize(
    ("stack", "access", "storage"),
    [
        ("azure-dev", "Enabled", "Standard_LRS"),
        ("azure-prod", "Disabled", "Standard_ZRS"),
    ],
)
def test_model_registry_is_an_azure_ml_registry(stack: str, access: str, storage: str) -> None:
    plan = planned(stack)
    registry = one(plan, ML_REGISTRY).inputs
    assert registry["registryName"] == f"mlops-{stack}-models"
    assert registry["publicNetworkAccess"] == access
    assert registry["identity"] == {"type": "SystemAssigned"}
    assert registry["regionDetails"] == [
        {
            "location": "westeurope",
            "acrDetails": [{"systemCreatedAcrAccount": {"acrAccountSku": "Premium"}}],
            "storageAccountDetails": [
                {
                    "systemCreatedStorageAccount": {
                        "storageAccountType": storage,
                        "storageAccountHnsEnabled": False,
                        "allowBlobPublicAccess": False,
                    }
                }
            ],
        }
    ]
    assert plan.outputs["modelRegistryName"] == f"mlops-{stack}-models"


def test_model_registry_off_means_none_planned() -> None:
    plan = variant()
    assert of_type(plan, ML_REGISTRY) == []
    assert "modelRegistryName" not in plan.outputs


# Outputs


def test_outputs_mirror_the_other_clouds(prod) -> None:
    account = _account(prod).inputs["accountName"]
    assert prod.outputs["resourceGroupName"] == "mlops-azure-prod"
    assert prod.outputs["keyId"] == (
        f"https://mlopsazureprodkv{PROD_TOKEN}.vault.azure.net/keys/mlops-azure-prod-cmk-g2"
    )
    assert prod.outputs["lakeAccountName"] == account
    assert prod.outputs["lakeFilesystemNames"] == {z: z for z in ZONES}
    assert prod.outputs["lakeFilesystemIds"] == {
        z: (
            f"{_arm_prefix('azure-prod')}/Microsoft.Storage/storageAccounts/{account}"
            f"/blobServices/default/containers/{z}"
        )
        for z in ZONES
    }


def test_long_stack_names_are_shortened_but_stay_distinct() -> None:
    namer = Namer(project="mlops", stack="azure-research-staging")
    other = Namer(project="mlops", stack="azure-research-stagingb")
    name = namer.global_name("lake", AZURE_SUBSCRIPTION, kind="azure-storage-account")
    assert len(name) == 24
    assert name.startswith("mlopsazurereselake")
    assert name != other.global_name("lake", AZURE_SUBSCRIPTION, kind="azure-storage-account")
    assert name == namer.global_name("lake", AZURE_SUBSCRIPTION, kind="azure-storage-account")
