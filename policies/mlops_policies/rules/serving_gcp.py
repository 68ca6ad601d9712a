"""The model-serving controls on Vertex AI, under the names SageMaker's use.

A Vertex endpoint is a `gcp:vertex/aiEndpoint:AiEndpoint`; what runs on it is
the platform's `VertexModelDeployment` dynamic resource; its alerts are Cloud
Monitoring alert policies whose filters name the endpoint's id. "In prod"
means the resource's `environment` label.
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

ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
DEPLOYMENT = "pulumi-python:dynamic/gcp:VertexModelDeployment"
ALERT_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
REQUIRED_METRICS = {
    "errors": "aiplatform.googleapis.com/prediction/online/error_count",
    "latency": "aiplatform.googleapis.com/prediction/online/prediction_latencies",
}


def _prod(resource: Resource) -> bool:
    # A mapping; some types list their tags instead (an auto scaling group).
    tags = resource.props.get("labels")
    return isinstance(tags, Mapping) and tags.get("environment") == "prod"


def _endpoint_id(endpoint: Resource) -> str:
    return str(endpoint.props.get("name") or "")


def _deployments(resources: Sequence[Resource], endpoint: Resource) -> list[Resource]:
    return [d for d in by_type(resources, DEPLOYMENT) if d.depends_on("endpoint", endpoint)]


# serving-encryption


def encryption(resource: Resource) -> Iterator[str]:
    if resource.type == ENDPOINT:
        if not section(resource.props, "encryptionSpec").get("kmsKeyName"):
            yield "Vertex AI endpoint is not encrypted with the platform key (encryptionSpec)"
    elif resource.type == DEPLOYMENT:
        upload = section(section(resource.props, "model"), "upload")
        if upload and not upload.get("kmsKeyName"):
            yield "uploaded model is not encrypted with the platform key (model.upload.kmsKeyName)"


# serving-private


def private(resource: Resource) -> Iterator[str]:
    if resource.type != ENDPOINT or not _prod(resource):
        return
    psc = section(resource.props, "privateServiceConnectConfig")
    if not psc.get("enablePrivateServiceConnect") and not resource.props.get("network"):
        yield (
            "prod Vertex AI endpoint is public: enable Private Service Connect "
            "(privateServiceConnectConfig)"
        )


# serving-data-capture


def data_capture(resource: Resource) -> Iterator[str]:
    if resource.type != ENDPOINT or not _prod(resource):
        return
    logging = section(resource.props, "predictRequestResponseLoggingConfig")
    if not logging.get("enabled") or not logging.get("samplingRate"):
        yield (
            "prod Vertex AI endpoint logs no requests and responses "
            "(predictRequestResponseLoggingConfig), so drift cannot be seen"
        )


# serving-replicas


def replicas(resource: Resource) -> Iterator[str]:
    if resource.type != DEPLOYMENT or not _prod(resource):
        return
    minimum = int(resource.props.get("minReplicas") or 0)
    if minimum < MIN_PROD_REPLICAS:
        yield f"prod deployed model may run {minimum} replica (at least {MIN_PROD_REPLICAS})"


# serving-autoscaling


def autoscaling(resources: Sequence[Resource]) -> Findings:
    for endpoint in by_type(resources, ENDPOINT):
        deployments = _deployments(resources, endpoint)
        if not deployments:
            yield endpoint.urn, "Vertex AI endpoint serves no deployed model"
        for deployment in deployments:
            low, high = deployment.props.get("minReplicas"), deployment.props.get("maxReplicas")
            if low is None or high is None or int(high) < int(low):
                yield deployment.urn, f"deployed model scales between {low} and {high} replicas"
            scaling = section(deployment.props, "autoscaling")
            if not scaling.get("metric") or not scaling.get("target"):
                yield deployment.urn, "deployed model has no autoscaling metric and target"


# serving-alarms


def _watched(resources: Sequence[Resource], endpoint_id: str) -> set[str]:
    metrics = set()
    for policy in by_type(resources, ALERT_POLICY):
        for condition in as_list(policy.props.get("conditions")):
            if not isinstance(condition, Mapping):
                continue
            query = str(section(condition, "conditionThreshold").get("filter", ""))
            if f'resource.labels.endpoint_id = "{endpoint_id}"' in query:
                metrics |= {k for k, m in REQUIRED_METRICS.items() if f'"{m}"' in query}
    return metrics


def alarms(resources: Sequence[Resource]) -> Findings:
    for endpoint in by_type(resources, ENDPOINT):
        endpoint_id = _endpoint_id(endpoint)
        missing = sorted(set(REQUIRED_METRICS) - _watched(resources, endpoint_id))
        if missing:
            yield (
                endpoint.urn,
                f"Vertex AI endpoint has no {' and no '.join(missing)} alert policy filtered "
                "on its endpoint_id",
            )


# serving-accelerators


def accelerators(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = config.get(ALLOWED_CLASSES)
    if resource.type != DEPLOYMENT or allowed is None:
        return
    machine = str(resource.props.get("machineType", ""))
    accelerator = resource.props.get("acceleratorType") or None
    label = f"{machine} + {accelerator}" if accelerator else machine
    yield from not_allowed(label, accelerator_class("gcp", machine, accelerator), allowed)


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
