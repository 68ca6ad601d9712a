"""The model-serving controls on Azure Machine Learning, under the names SageMaker's use.

An endpoint is a managed online endpoint in a workspace; what runs on it are
its deployments, scaled by Azure Monitor autoscale settings that target them and
watched by metric alerts scoped to the endpoint. "In prod" means the resource's
`environment` tag.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_policies.catalog import accelerator_class
from mlops_policies.model import Resource, as_list, by_type, section
from mlops_policies.rules.serving import (
    ALLOWED_CLASSES,
    MIN_PROD_REPLICAS,
    Findings,
    not_allowed,
)

WORKSPACE = "azure-native:machinelearningservices:Workspace"
ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
REQUIRED_METRICS = {"errors": "RequestsPerMinute", "latency": "RequestLatency_P99"}


def _prod(resource: Resource) -> bool:
    # A mapping; some types list their tags instead (an auto scaling group).
    tags = resource.props.get("tags")
    return isinstance(tags, Mapping) and tags.get("environment") == "prod"


# serving-encryption


def encryption(resource: Resource) -> Iterator[str]:
    if resource.type != WORKSPACE:
        return
    encryption = section(resource.props, "encryption")
    key = section(encryption, "keyVaultProperties")
    if str(encryption.get("status", "")).lower() != "enabled" or not key.get("keyIdentifier"):
        yield (
            "Azure ML workspace (its endpoints, models and captured data) is not encrypted "
            "with the platform key (encryption)"
        )


# serving-private


def private(resource: Resource) -> Iterator[str]:
    if resource.type not in (WORKSPACE, ENDPOINT) or not _prod(resource):
        return
    props = resource.props if resource.type == WORKSPACE else section(resource.props, "properties")
    if props.get("publicNetworkAccess") != "Disabled":
        kind = "workspace" if resource.type == WORKSPACE else "online endpoint"
        yield f"prod Azure ML {kind} has a public endpoint (publicNetworkAccess)"
    if resource.type == WORKSPACE:
        network = section(resource.props, "managedNetwork")
        if network.get("isolationMode") != "AllowOnlyApprovedOutbound":
            yield (
                "prod Azure ML workspace's managed network allows any outbound traffic "
                "(managedNetwork.isolationMode)"
            )


# serving-data-capture


def data_capture(resource: Resource) -> Iterator[str]:
    if resource.type != DEPLOYMENT or not _prod(resource):
        return
    collections = section(section(resource.props, "properties"), "dataCollector").get("collections")
    # `request` (payload logging) or `model_inputs` (the collector SDK in the container).
    found = collections if isinstance(collections, Mapping) else {}
    inputs = found.get("request") or found.get("model_inputs")
    if (
        not isinstance(inputs, Mapping)
        or inputs.get("dataCollectionMode") != "Enabled"
        or not inputs.get("samplingRate")
    ):
        yield (
            "prod deployment collects no requests (properties.dataCollector), "
            "so drift cannot be seen"
        )


# serving-replicas


def replicas(resource: Resource) -> Iterator[str]:
    if not _prod(resource):
        return
    if resource.type == DEPLOYMENT:
        count = int(section(resource.props, "sku").get("capacity") or 0)
        if count < MIN_PROD_REPLICAS:
            yield f"prod deployment starts with {count} instance (at least {MIN_PROD_REPLICAS})"
    elif resource.type == AUTOSCALE:
        for profile in as_list(resource.props.get("profiles")):
            if not isinstance(profile, Mapping):
                continue
            minimum = int(section(profile, "capacity").get("minimum") or 0)
            if minimum < MIN_PROD_REPLICAS:
                yield f"prod deployment may scale in to {minimum} (at least {MIN_PROD_REPLICAS})"


# serving-autoscaling


def autoscaling(resources: Sequence[Resource]) -> Findings:
    for deployment in by_type(resources, DEPLOYMENT):
        settings = [
            s
            for s in by_type(resources, AUTOSCALE)
            if s.depends_on("targetResourceUri", deployment) and s.props.get("enabled") is not False
        ]
        if not settings:
            yield deployment.urn, "deployment is not autoscaled (no enabled autoscale setting)"
        for setting in settings:
            for profile in as_list(setting.props.get("profiles")):
                if not isinstance(profile, Mapping):
                    continue
                capacity = section(profile, "capacity")
                low, high = capacity.get("minimum"), capacity.get("maximum")
                if low is None or high is None or int(high) < int(low):
                    yield setting.urn, f"deployment scales between {low} and {high} instances"
                if not as_list(profile.get("rules")):
                    yield setting.urn, "autoscale profile has no metric rules"


# serving-alarms


def _alerted(resources: Sequence[Resource], endpoint: Resource) -> set[str]:
    metrics = set()
    for alert in by_type(resources, METRIC_ALERT):
        if not alert.depends_on("scopes", endpoint) or alert.props.get("enabled") is False:
            continue
        for criterion in as_list(section(alert.props, "criteria").get("allOf")):
            if isinstance(criterion, Mapping):
                name = criterion.get("metricName")
                metrics |= {k for k, m in REQUIRED_METRICS.items() if m == name}
    return metrics


def alarms(resources: Sequence[Resource]) -> Findings:
    for endpoint in by_type(resources, ENDPOINT):
        missing = sorted(set(REQUIRED_METRICS) - _alerted(resources, endpoint))
        if missing:
            yield (
                endpoint.urn,
                f"online endpoint has no {' and no '.join(missing)} metric alert scoped to it",
            )


# serving-accelerators


def accelerators(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = config.get(ALLOWED_CLASSES)
    if resource.type != DEPLOYMENT or allowed is None:
        return
    size = str(section(resource.props, "properties").get("instanceType", ""))
    yield from not_allowed(size, accelerator_class("azure", size, None), allowed)


RESOURCE_CHECKS = {
    "serving-encryption": (encryption,),
    "serving-private": (private,),
    "serving-data-capture": (data_capture,),
    "serving-replicas": (replicas,),
}
STACK_CHECKS = {
    "serving-autoscaling": (autoscaling,),
    "serving-alarms": (alarms,),
}
CONFIGURED_CHECKS = {"serving-accelerators": (accelerators,)}
