"""The model-serving controls: endpoints encrypted with the platform key, private
and capturing their traffic in prod, at least two replicas in prod, autoscaled,
alarmed, and on accelerators the environment allows.

SageMaker's checks live here; Vertex AI's (serving_gcp) and Azure ML's
(serving_azure) add theirs under the same rule names. "In prod" means the
resource's `environment` tag, which required-tags guarantees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_policies.catalog import ACCELERATOR_CLASSES, accelerator_class, has_local_storage
from mlops_policies.model import Resource, by_type, section

SM_MODEL = "aws:sagemaker/model:Model"
SM_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SM_ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# What an endpoint must be alarmed on: server errors and model latency.
REQUIRED_ALARMS = {"errors": ("Invocation5XXErrors",), "latency": ("ModelLatency",)}
MIN_PROD_REPLICAS = 2

Findings = Iterator[tuple[str, str]]


def _prod(resource: Resource) -> bool:
    # A mapping; some types list their tags instead (an auto scaling group).
    tags = resource.props.get("tags")
    return isinstance(tags, Mapping) and tags.get("environment") == "prod"


def _variants(config: Resource) -> list[Mapping[str, Any]]:
    return [v for v in config.props.get("productionVariants") or [] if isinstance(v, Mapping)]


# serving-encryption


def encryption(resource: Resource) -> Iterator[str]:
    if resource.type != SM_CONFIG:
        return
    types = [str(v.get("instanceType", "")) for v in _variants(resource)]
    hardware = bool(types) and all(has_local_storage(t) for t in types)
    if not resource.props.get("kmsKeyArn") and not hardware:
        yield (
            "endpoint configuration does not encrypt its serving volume with the platform key "
            "(kmsKeyArn)"
        )
    capture = section(resource.props, "dataCaptureConfig")
    if capture.get("enableCapture") and not capture.get("kmsKeyId"):
        yield "captured traffic is not encrypted with the platform key (dataCaptureConfig.kmsKeyId)"


# serving-private


def private(resource: Resource) -> Iterator[str]:
    if resource.type != SM_MODEL or not _prod(resource):
        return
    vpc = section(resource.props, "vpcConfig")
    if not (vpc.get("subnets") and vpc.get("securityGroupIds")):
        yield "prod model runs outside the stack's private network (vpcConfig)"


# serving-data-capture


def data_capture(resource: Resource) -> Iterator[str]:
    if resource.type != SM_CONFIG or not _prod(resource):
        return
    capture = section(resource.props, "dataCaptureConfig")
    if not capture.get("enableCapture") or not capture.get("initialSamplingPercentage"):
        yield "prod endpoint captures no traffic (dataCaptureConfig), so drift cannot be seen"


# serving-replicas


def replicas(resource: Resource) -> Iterator[str]:
    if not _prod(resource):
        return
    if resource.type == SM_CONFIG:
        for variant in _variants(resource):
            count = int(variant.get("initialInstanceCount") or 0)
            if count < MIN_PROD_REPLICAS:
                yield (
                    f"prod variant {variant.get('variantName')!r} starts with {count} instance; "
                    f"one zone's outage would take it down (at least {MIN_PROD_REPLICAS})"
                )
    elif resource.type == SCALING_TARGET and resource.props.get("serviceNamespace") == "sagemaker":
        minimum = int(resource.props.get("minCapacity") or 0)
        if minimum < MIN_PROD_REPLICAS:
            yield f"prod endpoint may scale in to {minimum} instance (at least {MIN_PROD_REPLICAS})"


# serving-autoscaling


def _for_endpoint(resources: Sequence[Resource], endpoint: Resource, kind: str) -> list[Resource]:
    name = str(endpoint.props.get("name", ""))
    return [
        r
        for r in by_type(resources, kind)
        if r.depends_on("resourceId", endpoint)
        or (name and str(r.props.get("resourceId", "")).startswith(f"endpoint/{name}/"))
    ]


def autoscaling(resources: Sequence[Resource]) -> Findings:
    for endpoint in by_type(resources, SM_ENDPOINT):
        targets = _for_endpoint(resources, endpoint, SCALING_TARGET)
        if not targets:
            yield endpoint.urn, "endpoint is not autoscaled (no scalable target)"
            continue
        for target in targets:
            low, high = target.props.get("minCapacity"), target.props.get("maxCapacity")
            if low is None or high is None or int(high) < int(low):
                yield endpoint.urn, f"endpoint scales between {low} and {high} instances"
        policies = [
            p
            for p in _for_endpoint(resources, endpoint, SCALING_POLICY)
            if p.props.get("policyType") == "TargetTrackingScaling"
        ]
        if not policies:
            yield endpoint.urn, "endpoint has no target-tracking scaling policy"


# serving-alarms


def _watches(alarm: Resource, endpoint: Resource) -> bool:
    dimensions = alarm.props.get("dimensions") or {}
    return bool(endpoint.props.get("name")) and (
        dimensions.get("EndpointName") == endpoint.props.get("name")
        and bool(dimensions.get("VariantName"))
    )


def alarms(resources: Sequence[Resource]) -> Findings:
    for endpoint in by_type(resources, SM_ENDPOINT):
        metrics = {
            str(a.props.get("metricName"))
            for a in by_type(resources, ALARM)
            if a.props.get("namespace") == "AWS/SageMaker" and _watches(a, endpoint)
        }
        missing = [kind for kind, names in REQUIRED_ALARMS.items() if not metrics & set(names)]
        if missing:
            yield (
                endpoint.urn,
                f"endpoint has no {' and no '.join(missing)} alarm on its EndpointName and "
                "VariantName",
            )


# serving-accelerators


ALLOWED_CLASSES = "allowedAcceleratorClasses"


def accelerators(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    """Accelerator classes the environment allows (`allowedAcceleratorClasses` in
    its pack config: t4, l4, a100, h100, inferentia, tpu, ...: one name per
    accelerator, whatever each cloud calls the instance type); without that
    setting every class is allowed."""
    allowed = config.get(ALLOWED_CLASSES)
    if resource.type != SM_CONFIG or allowed is None:
        return
    for variant in _variants(resource):
        instance_type = str(variant.get("instanceType", ""))
        yield from not_allowed(instance_type, accelerator_class("aws", instance_type), allowed)


def not_allowed(label: str, kind: str | None, allowed: Sequence[str]) -> Iterator[str]:
    """The finding for an instance type whose accelerator class is not allowed."""
    if kind is not None and kind not in allowed:
        yield (
            f"{label} ({kind}) is not an accelerator class this environment allows "
            f"({', '.join(allowed) or 'none'})"
        )


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
CONFIG_PROPERTIES = {
    "serving-accelerators": {
        ALLOWED_CLASSES: {
            "type": "array",
            "items": {"type": "string", "enum": sorted(ACCELERATOR_CLASSES)},
            "description": "Accelerator classes endpoints may use (t4, l4, a100, h100, ...)",
        }
    }
}
