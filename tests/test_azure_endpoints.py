"""Azure ML online endpoints on mocks: the workspace they live in (encrypted,
closed, identity-based), the endpoint and its deployment, the identity's grants,
autoscale, alerts and the traffic rollout."""

from __future__ import annotations

import re

import pytest
from conftest import of_type, one, plan_with, planned

from infra.settings import SettingsError
from tools.mockcloud import AZURE_SUBSCRIPTION

WORKSPACE = "azure-native:machinelearningservices:Workspace"
ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
DATASTORE = "azure-native:machinelearningservices:Datastore"
ENVIRONMENT = "azure-native:machinelearningservices:EnvironmentVersion"
MODEL = "azure-native:machinelearningservices:ModelVersion"
DATA = "azure-native:machinelearningservices:DataVersion"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
ALERT = "azure-native:monitor:MetricAlert"
TRAFFIC = "pulumi-python:dynamic/azure:OnlineEndpointTraffic"
ACCOUNT = "azure-native:storage:StorageAccount"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
INSIGHTS = "azure-native:applicationinsights:Component"
ROLE = {
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
}


@pytest.fixture(scope="module")
def dev():
    return planned("azure-dev")


@pytest.fixture(scope="module")
def prod():
    return planned("azure-prod")


def test_workspace_is_encrypted_closed_and_identity_based(prod, dev) -> None:
    workspace = one(prod, WORKSPACE)
    inputs = workspace.inputs
    key = one(prod, "azure-native:keyvault:Key", "-key-g2")
    vault = one(prod, "azure-native:keyvault:Vault", "-key-vault")
    identity = one(prod, "azure-native:managedidentity:UserAssignedIdentity", "-key-identity")
    encryption = inputs["encryption"]
    assert encryption["status"] == "Enabled"
    # Azure ML takes the key with its version (the mocks' version: 32 hex digits).
    assert re.fullmatch(
        rf"https://[^/]+\.vault\.azure\.net/keys/{key.inputs['keyName']}/[0-9a-f]{{32}}",
        encryption["keyVaultProperties"]["keyIdentifier"],
    )
    assert key.urn in workspace.property_dependencies["encryption"]
    assert vault.urn in workspace.property_dependencies["encryption"]
    assert identity.urn in workspace.property_dependencies["encryption"]
    assert inputs["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert inputs["systemDatastoresAuthMode"] == "identity"
    assert inputs["publicNetworkAccess"] == "Disabled"
    assert inputs["allowPublicAccessWhenBehindVnet"] is False
    assert one(dev, WORKSPACE).inputs["publicNetworkAccess"] == "Enabled"
    assert inputs["managedNetwork"]["isolationMode"] == "AllowOnlyApprovedOutbound"
    assert inputs["provisionNetworkNow"] is True
    assert workspace.protect and workspace.retain_on_delete
    # Its own flat-namespace storage, never the lake; the stack's vault and registry.
    storage = one(prod, ACCOUNT, "-ml-storage")
    assert storage.inputs["isHnsEnabled"] is False
    assert storage.inputs["allowSharedKeyAccess"] is False
    assert storage.urn in workspace.property_dependencies["storageAccount"]
    assert vault.urn in workspace.property_dependencies["keyVault"]
    registry = one(prod, "azure-native:containerregistry:Registry")
    assert registry.urn in workspace.property_dependencies["containerRegistry"]


def test_managed_network_reaches_the_lake_and_registry_only(prod, dev) -> None:
    lake = one(prod, ACCOUNT, "-lake-account")
    rules = one(prod, WORKSPACE).inputs["managedNetwork"]["outboundRules"]
    # The workspace's own registry is one of Azure's required rules, not ours.
    assert set(rules) == {"lake-blob", "lake-dfs"}
    for target in ("blob", "dfs"):
        rule = rules[f"lake-{target}"]
        assert rule["type"] == "PrivateEndpoint"
        assert rule["destination"]["subresourceTarget"] == target
        assert rule["destination"]["serviceResourceId"].endswith(lake.inputs["accountName"])
    # Only a Premium registry takes a private endpoint: dev reaches ACR by service tag.
    dev_rule = one(dev, WORKSPACE).inputs["managedNetwork"]["outboundRules"]["registry"]
    assert dev_rule["type"] == "ServiceTag"
    assert dev_rule["destination"] == {
        "serviceTag": "AzureContainerRegistry.westeurope",
        "protocol": "TCP",
        "portRanges": "443",
        "action": "Allow",
    }


def test_insights_and_storage_logs_go_to_the_stack_workspace(prod) -> None:
    logs = one(prod, "azure-native:operationalinsights:Workspace", "-lake-logs")
    insights = one(prod, INSIGHTS)
    assert insights.inputs["disableLocalAuth"] is True
    assert insights.inputs["ingestionMode"] == "LogAnalytics"
    assert logs.urn in insights.property_dependencies["workspaceResourceId"]
    workspace = one(prod, WORKSPACE)
    assert insights.urn in workspace.property_dependencies["applicationInsights"]
    blob = one(prod, "azure-native:storage:BlobServiceProperties", "-ml-storage")
    assert blob.inputs["isVersioningEnabled"] is True


def test_without_access_logs_the_workspace_brings_its_own_log_store() -> None:
    plan = plan_with("azure-dev", lake={"accessLogs": {"enabled": False}})
    logs = one(plan, "azure-native:operationalinsights:Workspace", "-ml-logs")
    assert logs.inputs["features"] == {"disableLocalAuth": True}
    assert logs.urn in one(plan, INSIGHTS).property_dependencies["workspaceResourceId"]


def test_lake_zones_are_identity_based_datastores(dev) -> None:
    stores = {d.inputs["name"]: d.inputs["properties"] for d in of_type(dev, DATASTORE)}
    assert set(stores) == {"lake_raw", "lake_curated", "lake_features"}
    for store in stores.values():
        assert store["datastoreType"] == "AzureDataLakeGen2"
        assert store["credentials"] == {"credentialsType": "None"}
        assert store["serviceDataAccessAuthIdentity"] == "WorkspaceSystemAssignedIdentity"


def test_endpoint_takes_entra_tokens_and_is_closed_in_prod(prod, dev) -> None:
    endpoint = one(prod, ENDPOINT)
    assert endpoint.inputs["properties"]["authMode"] == "AADToken"
    assert endpoint.inputs["properties"]["publicNetworkAccess"] == "Disabled"
    assert one(dev, ENDPOINT).inputs["properties"]["publicNetworkAccess"] == "Enabled"
    assert endpoint.inputs["identity"] == {"type": "SystemAssigned"}
    # Part of the scoring URL, unique in the region: a digest of subscription and stack.
    name = endpoint.inputs["endpointName"]
    assert re.fullmatch(r"[a-z][a-z0-9-]{2,31}", name), name
    assert "traffic" not in endpoint.inputs["properties"]  # OnlineEndpointTraffic routes it


def test_deployment_serves_the_image_and_model_and_collects_traffic(prod) -> None:
    deployment = one(prod, DEPLOYMENT)
    props = deployment.inputs["properties"]
    assert re.fullmatch(r"churn-[0-9a-f]{10}", deployment.inputs["deploymentName"])
    assert deployment.inputs["sku"] == {"name": "Default", "capacity": 2}
    assert props["requestSettings"]["requestTimeout"] == "PT6S"
    assert props["endpointComputeType"] == "Managed"
    assert props["instanceType"] == "Standard_NC4as_T4_v3"
    assert props["scaleSettings"] == {"scaleType": "Default"}
    assert props["appInsightsEnabled"] is True
    assert props["livenessProbe"]["period"] == "PT10S"
    environment = one(prod, ENVIRONMENT)
    model = one(prod, MODEL)
    assert {environment.urn, model.urn} <= set(deployment.property_dependencies["properties"])
    assert environment.inputs["properties"]["image"].endswith(".azurecr.io/serving:1.4.2")
    assert environment.inputs["properties"]["inferenceConfig"]["scoringRoute"] == {
        "path": "/invocations",
        "port": 8080,
    }
    assert model.inputs["properties"]["modelUri"] == (
        "azureml://datastores/lake_curated/paths/models/churn/1.4.2/model.tar.gz"
    )
    collections = props["dataCollector"]["collections"]
    # Payload logging: what the endpoint receives and answers, no SDK in the container.
    assert set(collections) == {"request", "response"}
    for collection, kind in (("request", "inputs"), ("response", "outputs")):
        assert collections[collection]["dataCollectionMode"] == "Enabled"
        assert collections[collection]["samplingRate"] == 0.1
        asset = one(prod, DATA, f"-capture-{kind}")
        assert asset.urn in deployment.property_dependencies["properties"]
        assert asset.inputs["properties"]["dataUri"] == (
            f"azureml://datastores/lake_raw/paths/capture/churn/{kind}/"
        )


def test_the_endpoint_identity_may_read_the_model_and_write_capture_only(prod) -> None:
    endpoint = one(prod, ENDPOINT)
    grants = [
        g
        for g in of_type(prod, ROLE_ASSIGNMENT)
        if endpoint.urn in g.property_dependencies.get("principalId", [])
    ]
    found = sorted(
        (ROLE[g.inputs["roleDefinitionId"].rsplit("/", 1)[1]], g.inputs["scope"].rsplit("/", 1)[1])
        for g in grants
    )
    # AcrPull on the workspace's registry Azure ML assigns itself (a second is refused).
    assert found == [
        ("Storage Blob Data Contributor", "raw"),
        ("Storage Blob Data Reader", "curated"),
    ]
    deployment = one(prod, DEPLOYMENT)
    assert {g.urn for g in grants} <= set(deployment.dependencies)


def test_autoscale_moves_the_deployment_between_the_replica_bounds(prod, dev) -> None:
    setting = one(prod, AUTOSCALE)
    deployment = one(prod, DEPLOYMENT)
    assert deployment.urn in setting.property_dependencies["targetResourceUri"]
    (profile,) = setting.inputs["profiles"]
    assert profile["capacity"] == {"minimum": "2", "maximum": "6", "default": "2"}
    out, scale_in = profile["rules"]
    assert out["metricTrigger"]["metricName"] == "GpuUtilizationPercentage"
    assert (out["metricTrigger"]["operator"], out["metricTrigger"]["threshold"]) == (
        "GreaterThan",
        70,
    )
    assert (scale_in["metricTrigger"]["operator"], scale_in["metricTrigger"]["threshold"]) == (
        "LessThan",
        35,
    )
    # As Azure writes durations back, so a refresh shows no change.
    assert out["scaleAction"]["cooldown"] == "PT1M"
    assert scale_in["scaleAction"]["cooldown"] == "PT5M"
    # Requests per replica: the endpoint's metric for this deployment, per instance.
    trigger = one(dev, AUTOSCALE).inputs["profiles"][0]["rules"][0]["metricTrigger"]
    assert trigger["metricName"] == "RequestsPerMinute"
    assert trigger["dividePerInstance"] is True
    assert trigger["dimensions"] == [
        {
            "dimensionName": "deployment",
            "operator": "Equals",
            "values": [one(dev, DEPLOYMENT).inputs["deploymentName"]],
        }
    ]


def test_alerts_watch_the_endpoint_on_5xx_and_latency(prod) -> None:
    endpoint = one(prod, ENDPOINT)
    alerts = {a.name.rsplit("-", 1)[1]: a for a in of_type(prod, ALERT)}
    assert set(alerts) == {"errors", "latency"}
    group = one(prod, "azure-native:monitor:ActionGroup")
    for alert in alerts.values():
        assert endpoint.urn in alert.property_dependencies["scopes"]
        # Three evaluation minutes: the shortest window Azure Monitor offers that covers them.
        assert alert.inputs["windowSize"] == "PT5M"
        assert alert.inputs["enabled"] is True
        assert group.urn in alert.property_dependencies["actions"]
    (errors,) = alerts["errors"].inputs["criteria"]["allOf"]
    assert errors["metricName"] == "RequestsPerMinute"
    assert errors["dimensions"] == [
        {"name": "statusCodeClass", "operator": "Include", "values": ["5xx"]}
    ]
    assert (errors["threshold"], errors["timeAggregation"]) == (5, "Average")
    (latency,) = alerts["latency"].inputs["criteria"]["allOf"]
    assert (latency["metricName"], latency["threshold"]) == ("RequestLatency_P99", 1000)


def test_traffic_rolls_out_to_the_deployment_after_its_alerts_exist(prod) -> None:
    traffic = one(prod, TRAFFIC)
    deployment = one(prod, DEPLOYMENT)
    assert traffic.inputs["deployment"] == deployment.inputs["deploymentName"]
    assert traffic.inputs["rollout"]["strategy"] == "canary"
    assert traffic.inputs["rollout"]["canaryPercent"] == 10
    assert traffic.inputs["alarms"] == {"errorsPerMinute": 5, "latencyP99Ms": 1000}
    assert {a.urn for a in of_type(prod, ALERT)} <= set(traffic.dependencies)
    assert traffic.inputs["endpointId"].startswith(f"/subscriptions/{AZURE_SUBSCRIPTION}/")


def test_a_cooldown_azure_cannot_keep_is_one_line() -> None:
    churn = {
        "model": {"image": {"repository": "serving", "tag": "1"}},
        "instanceType": "Standard_DS3_v2",
        "autoscaling": {"scaleOutCooldownSeconds": 30},
    }
    with pytest.raises(SettingsError) as caught:
        plan_with("azure-dev", endpoints={"churn": churn})
    assert str(caught.value) == (
        "stacks/Pulumi.azure-dev.yaml: mlops:endpoints.churn.autoscaling.scaleOutCooldownSeconds: "
        "30 is below the minute Azure Monitor autoscale waits at least (60)"
    )
