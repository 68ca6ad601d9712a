"""The serving rules on Vertex AI and Azure ML: a passing and a failing resource
per check, and the shipped stacks clean under them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import planned
from mlops_policies.model import Resource
from mlops_policies.rules import RULES, serving_azure, serving_gcp

from tools.policy_run import evaluate

PROD = {"environment": "prod"}


def res(
    type_: str, props: dict[str, Any], deps: dict[str, list[str]] | None = None, name: str = "r"
) -> Resource:
    urn = f"urn:pulumi:t::mlops::{type_}::{name}"
    return Resource(type_, urn, name, props, False, deps or {})


# Vertex AI


def vertex_endpoint(**props: Any) -> Resource:
    inputs = {
        "name": "1234567890",
        "labels": PROD,
        "encryptionSpec": {"kmsKeyName": "projects/p/locations/r/keyRings/k/cryptoKeys/c"},
        "privateServiceConnectConfig": {"enablePrivateServiceConnect": True},
        "predictRequestResponseLoggingConfig": {"enabled": True, "samplingRate": 0.1},
        **props,
    }
    return res(serving_gcp.ENDPOINT, inputs, name="endpoint")


def vertex_deployment(endpoint: Resource, **props: Any) -> Resource:
    inputs = {
        "labels": PROD,
        "machineType": "g2-standard-8",
        "acceleratorType": "NVIDIA_L4",
        "minReplicas": 2,
        "maxReplicas": 4,
        "autoscaling": {"metric": "gpuUtilization", "target": 70},
        "model": {"upload": {"imageUri": "i", "kmsKeyName": "k"}},
        **props,
    }
    return res(serving_gcp.DEPLOYMENT, inputs, {"endpoint": [endpoint.urn]}, name="deployment")


def alert_policy(metric: str, endpoint_id: str = "1234567890") -> Resource:
    query = (
        f'resource.type = "aiplatform.googleapis.com/Endpoint" AND '
        f'resource.labels.endpoint_id = "{endpoint_id}" AND metric.type = "{metric}"'
    )
    return res(
        serving_gcp.ALERT_POLICY,
        {"conditions": [{"conditionThreshold": {"filter": query}}]},
        name=metric.rsplit("/", 1)[1],
    )


def test_vertex_encryption() -> None:
    assert list(serving_gcp.encryption(vertex_endpoint())) == []
    assert list(serving_gcp.encryption(vertex_endpoint(encryptionSpec={}))) == [
        "Vertex AI endpoint is not encrypted with the platform key (encryptionSpec)"
    ]
    endpoint = vertex_endpoint()
    assert list(serving_gcp.encryption(vertex_deployment(endpoint))) == []
    unencrypted = vertex_deployment(endpoint, model={"upload": {"imageUri": "i"}})
    assert list(serving_gcp.encryption(unencrypted)) == [
        "uploaded model is not encrypted with the platform key (model.upload.kmsKeyName)"
    ]
    # A registry model was encrypted where it was uploaded.
    named = vertex_deployment(endpoint, model={"name": "projects/p/locations/r/models/m@1"})
    assert list(serving_gcp.encryption(named)) == []


def test_vertex_private_and_capture_in_prod() -> None:
    assert list(serving_gcp.private(vertex_endpoint())) == []
    public = vertex_endpoint(privateServiceConnectConfig={"enablePrivateServiceConnect": False})
    assert len(list(serving_gcp.private(public))) == 1
    assert (
        list(serving_gcp.private(vertex_endpoint(privateServiceConnectConfig={}, labels={}))) == []
    )
    assert list(serving_gcp.data_capture(vertex_endpoint())) == []
    silent = vertex_endpoint(predictRequestResponseLoggingConfig={"enabled": False})
    assert [m.split(" (")[0] for m in serving_gcp.data_capture(silent)] == [
        "prod Vertex AI endpoint logs no requests and responses"
    ]


def test_vertex_replicas_and_autoscaling() -> None:
    endpoint = vertex_endpoint()
    assert list(serving_gcp.replicas(vertex_deployment(endpoint))) == []
    assert list(serving_gcp.replicas(vertex_deployment(endpoint, minReplicas=1))) == [
        "prod deployed model may run 1 replica (at least 2)"
    ]
    assert list(serving_gcp.autoscaling([endpoint, vertex_deployment(endpoint)])) == []
    inverted = vertex_deployment(endpoint, minReplicas=4, maxReplicas=2)
    assert [m for _u, m in serving_gcp.autoscaling([endpoint, inverted])] == [
        "deployed model scales between 4 and 2 replicas"
    ]
    unscaled = vertex_deployment(endpoint, autoscaling={})
    assert [m for _u, m in serving_gcp.autoscaling([endpoint, unscaled])] == [
        "deployed model has no autoscaling metric and target"
    ]
    assert [m for _u, m in serving_gcp.autoscaling([endpoint])] == [
        "Vertex AI endpoint serves no deployed model"
    ]


def test_vertex_alarms_must_filter_on_the_endpoint() -> None:
    endpoint = vertex_endpoint()
    errors = alert_policy(serving_gcp.REQUIRED_METRICS["errors"])
    latency = alert_policy(serving_gcp.REQUIRED_METRICS["latency"])
    assert list(serving_gcp.alarms([endpoint, errors, latency])) == []
    assert [m for _u, m in serving_gcp.alarms([endpoint, errors])] == [
        "Vertex AI endpoint has no latency alert policy filtered on its endpoint_id"
    ]
    elsewhere = alert_policy(serving_gcp.REQUIRED_METRICS["latency"], endpoint_id="42")
    assert [m for _u, m in serving_gcp.alarms([endpoint, errors, elsewhere])] == [
        "Vertex AI endpoint has no latency alert policy filtered on its endpoint_id"
    ]


def test_vertex_accelerators_follow_the_environment_list() -> None:
    endpoint = vertex_endpoint()
    allowed = {"allowedAcceleratorClasses": ["l4", "t4"]}
    assert list(serving_gcp.accelerators(vertex_deployment(endpoint), allowed)) == []
    h100 = vertex_deployment(
        endpoint, machineType="a3-highgpu-8g", acceleratorType="NVIDIA_H100_80GB"
    )
    assert list(serving_gcp.accelerators(h100, allowed)) == [
        "a3-highgpu-8g + NVIDIA_H100_80GB (h100) is not an accelerator class this environment "
        "allows (l4, t4)"
    ]
    cpu = vertex_deployment(endpoint, machineType="n1-standard-4", acceleratorType=None)
    assert list(serving_gcp.accelerators(cpu, {"allowedAcceleratorClasses": []})) == []


# Azure ML


def workspace(**props: Any) -> Resource:
    inputs = {
        "tags": PROD,
        "encryption": {"status": "Enabled", "keyVaultProperties": {"keyIdentifier": "k"}},
        "publicNetworkAccess": "Disabled",
        "managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"},
        **props,
    }
    return res(serving_azure.WORKSPACE, inputs, name="workspace")


def online_endpoint(**properties: Any) -> Resource:
    props = {"authMode": "AADToken", "publicNetworkAccess": "Disabled", **properties}
    return res(serving_azure.ENDPOINT, {"tags": PROD, "properties": props}, name="endpoint")


def online_deployment(capacity: int = 2, **properties: Any) -> Resource:
    props = {
        "instanceType": "Standard_NC4as_T4_v3",
        "dataCollector": {
            "collections": {"model_inputs": {"dataCollectionMode": "Enabled", "samplingRate": 0.1}}
        },
        **properties,
    }
    return res(
        serving_azure.DEPLOYMENT,
        {"tags": PROD, "sku": {"capacity": capacity}, "properties": props},
        name="deployment",
    )


def autoscale(deployment: Resource, minimum: str = "2", maximum: str = "6") -> Resource:
    profile = {
        "capacity": {"minimum": minimum, "maximum": maximum},
        "rules": [{"metricTrigger": {}}],
    }
    return res(
        serving_azure.AUTOSCALE,
        {"tags": PROD, "enabled": True, "profiles": [profile]},
        {"targetResourceUri": [deployment.urn]},
        name="autoscale",
    )


def metric_alert(endpoint: Resource, metric: str) -> Resource:
    return res(
        serving_azure.METRIC_ALERT,
        {"enabled": True, "criteria": {"allOf": [{"metricName": metric}]}},
        {"scopes": [endpoint.urn]},
        name=metric,
    )


def test_azure_workspace_encryption() -> None:
    assert list(serving_azure.encryption(workspace())) == []
    assert len(list(serving_azure.encryption(workspace(encryption={"status": "Disabled"})))) == 1


def test_azure_private_in_prod() -> None:
    assert list(serving_azure.private(workspace())) == []
    assert list(serving_azure.private(online_endpoint())) == []
    assert list(serving_azure.private(online_endpoint(publicNetworkAccess="Enabled"))) == [
        "prod Azure ML online endpoint has a public endpoint (publicNetworkAccess)"
    ]
    open_outbound = workspace(managedNetwork={"isolationMode": "AllowInternetOutbound"})
    assert [m.split(" (")[0] for m in serving_azure.private(open_outbound)] == [
        "prod Azure ML workspace's managed network allows any outbound traffic"
    ]
    dev = res(serving_azure.WORKSPACE, {"tags": {"environment": "dev"}})
    assert list(serving_azure.private(dev)) == []


def test_azure_capture_and_replicas_in_prod() -> None:
    assert list(serving_azure.data_capture(online_deployment())) == []
    assert len(list(serving_azure.data_capture(online_deployment(dataCollector={})))) == 1
    assert list(serving_azure.replicas(online_deployment())) == []
    assert list(serving_azure.replicas(online_deployment(capacity=1))) == [
        "prod deployment starts with 1 instance (at least 2)"
    ]
    deployment = online_deployment()
    assert list(serving_azure.replicas(autoscale(deployment, minimum="1"))) == [
        "prod deployment may scale in to 1 (at least 2)"
    ]


def test_azure_autoscaling_targets_every_deployment() -> None:
    deployment = online_deployment()
    assert list(serving_azure.autoscaling([deployment, autoscale(deployment)])) == []
    assert [m for _u, m in serving_azure.autoscaling([deployment])] == [
        "deployment is not autoscaled (no enabled autoscale setting)"
    ]
    inverted = autoscale(deployment, minimum="4", maximum="2")
    assert [m for _u, m in serving_azure.autoscaling([deployment, inverted])] == [
        "deployment scales between 4 and 2 instances"
    ]


def test_azure_alarms_are_scoped_to_the_endpoint() -> None:
    endpoint = online_endpoint()
    errors = metric_alert(endpoint, "RequestsPerMinute")
    latency = metric_alert(endpoint, "RequestLatency_P99")
    assert list(serving_azure.alarms([endpoint, errors, latency])) == []
    assert [m for _u, m in serving_azure.alarms([endpoint, latency])] == [
        "online endpoint has no errors metric alert scoped to it"
    ]
    other = res(serving_azure.ENDPOINT, {"properties": {}}, name="other")
    assert [m for _u, m in serving_azure.alarms([other, errors, latency])] == [
        "online endpoint has no errors and no latency metric alert scoped to it"
    ]


def test_azure_accelerators_follow_the_environment_list() -> None:
    allowed = {"allowedAcceleratorClasses": ["t4"]}
    assert list(serving_azure.accelerators(online_deployment(), allowed)) == []
    h100 = online_deployment(instanceType="Standard_NC40ads_H100_v5")
    assert list(serving_azure.accelerators(h100, allowed)) == [
        "Standard_NC40ads_H100_v5 (h100) is not an accelerator class this environment allows (t4)"
    ]


def test_every_cloud_contributes_to_every_serving_rule() -> None:
    by_name = {r.name: r for r in RULES}
    for module in (serving_gcp, serving_azure):
        for attribute in ("RESOURCE_CHECKS", "STACK_CHECKS", "CONFIGURED_CHECKS"):
            for name, checks in getattr(module, attribute).items():
                rule = by_name[name]
                registered = rule.resource_checks + rule.stack_checks + rule.configured_checks
                assert set(checks) <= set(registered), name


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod", "azure-dev", "azure-prod"])
def test_shipped_endpoints_pass_every_serving_rule(stack: str) -> None:
    assert [f for f in planned(stack).findings if f.policy.startswith("serving-")] == []


def test_crossguard_stops_an_h100_deployment_in_dev_not_in_prod() -> None:
    def h100(r):
        properties = {**r.inputs["properties"], "instanceType": "Standard_NC40ads_H100_v5"}
        return dataclasses.replace(r, inputs={**r.inputs, "properties": properties})

    registrations = [
        h100(r) if r.type == serving_azure.DEPLOYMENT else r
        for r in planned("azure-dev").registrations
    ]
    found = [(f.policy, f.level) for f in evaluate(registrations, "dev")]
    assert found == [("serving-accelerators", "mandatory")]
    prod = [f for f in evaluate(registrations, "prod") if f.policy == "serving-accelerators"]
    assert prod == []
