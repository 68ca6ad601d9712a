"""Accelerator pools: no public address on any node, IMDSv2 on AWS nodes, dev
pools idle at zero (and, advisory, on spot), and only the accelerator classes
the environment allows, as endpoints. "Dev" is the resource's environment tag
or label."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_policies.catalog import accelerator_class
from mlops_policies.model import Resource, as_list, section
from mlops_policies.rules.serving import ALLOWED_CLASSES

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
INSTANCE_TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
REGION_AUTOSCALER = "gcp:compute/regionAutoscaler:RegionAutoscaler"
TPU = "gcp:tpu/v2QueuedResource:V2QueuedResource"
TPU_VM = "gcp:tpu/v2Vm:V2Vm"
AML_COMPUTE = "azure-native:machinelearningservices:Compute"


def _environment(resource: Resource) -> str:
    for key in ("tags", "labels"):
        tags = resource.props.get(key)
        if isinstance(tags, Mapping) and tags.get("environment"):
            return str(tags["environment"])
        # An auto scaling group lists its tags as {key, value, propagateAtLaunch}.
        for tag in as_list(tags) if not isinstance(tags, Mapping) else []:
            if isinstance(tag, Mapping) and tag.get("key") == "environment":
                return str(tag.get("value", ""))
    return ""


def _aml(resource: Resource) -> Mapping[str, Any]:
    return section(section(resource.props, "properties"), "properties")


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


# node-no-public-ip


def no_public_ip(resource: Resource) -> Iterator[str]:
    if resource.type == LAUNCH_TEMPLATE:
        interfaces = [
            i for i in as_list(resource.props.get("networkInterfaces")) if isinstance(i, Mapping)
        ]
        # With several interfaces EC2 refuses the parameter (even false) and
        # gives none of them a public IP; with one, unset follows the subnet.
        unset = "false" if len(interfaces) > 1 else "true"
        if not interfaces or any(
            _true(i.get("associatePublicIpAddress", unset)) for i in interfaces
        ):
            yield "nodes may get a public IP (networkInterfaces.associatePublicIpAddress)"
    elif resource.type == INSTANCE_TEMPLATE:
        for interface in as_list(resource.props.get("networkInterfaces")):
            if isinstance(interface, Mapping) and as_list(interface.get("accessConfigs")):
                yield "nodes get an external IP (networkInterfaces.accessConfigs)"
    elif resource.type == TPU:
        nodes = as_list(section(resource.props, "tpu").get("nodeSpecs"))
        for spec in nodes:
            network = (
                section(section(spec, "node"), "networkConfig") if isinstance(spec, Mapping) else {}
            )
            if network.get("enableExternalIps") is not False:
                yield "TPU VMs get external IPs (networkConfig.enableExternalIps)"
    elif resource.type == TPU_VM:
        if section(resource.props, "networkConfig").get("enableExternalIps") is not False:
            yield "TPU VM gets an external IP (networkConfig.enableExternalIps)"
    elif resource.type == AML_COMPUTE and _aml(resource).get("enableNodePublicIp") is not False:
        yield "cluster nodes get public IPs (enableNodePublicIp)"


# node-imdsv2


def imdsv2(resource: Resource) -> Iterator[str]:
    if resource.type != LAUNCH_TEMPLATE:
        return
    if section(resource.props, "metadataOptions").get("httpTokens") != "required":
        yield "nodes answer IMDSv1 (metadataOptions.httpTokens is not required)"


# pool-scale-to-zero


def scale_to_zero(resource: Resource) -> Iterator[str]:
    if _environment(resource) != "dev":
        return
    minimum: Any = None
    if resource.type == ASG:
        minimum = resource.props.get("minSize")
    elif resource.type == REGION_AUTOSCALER:
        minimum = section(resource.props, "autoscalingPolicy").get("minReplicas")
    elif resource.type == AML_COMPUTE:
        minimum = section(_aml(resource), "scaleSettings").get("minNodeCount")
    elif resource.type == TPU_VM:
        # A slice runs, and bills, for as long as it exists.
        yield "dev TPU slice runs while it exists (nothing scales it to zero)"
    if minimum is not None and int(minimum) > 0:
        yield f"dev pool keeps {int(minimum)} node running when idle (scale it to zero)"


# pool-spot-in-dev


def spot_in_dev(resource: Resource) -> Iterator[str]:
    if _environment(resource) != "dev":
        return
    if resource.type == ASG and not section(resource.props, "mixedInstancesPolicy"):
        yield "dev pool runs on demand (spot: true is cheaper for experiments)"
    elif resource.type == INSTANCE_TEMPLATE:
        if section(resource.props, "scheduling").get("provisioningModel") != "SPOT":
            yield "dev pool runs on demand (spot: true is cheaper for experiments)"
    elif resource.type == AML_COMPUTE and _aml(resource).get("vmPriority") != "LowPriority":
        yield "dev pool runs on dedicated nodes (spot: true gives low-priority ones)"


# serving-accelerators (pools)


def _pool_class(resource: Resource) -> tuple[str, str | None] | None:
    if resource.type == LAUNCH_TEMPLATE:
        instance = str(resource.props.get("instanceType", ""))
        return instance, accelerator_class("aws", instance)
    if resource.type == INSTANCE_TEMPLATE:
        machine = str(resource.props.get("machineType", ""))
        attached = as_list(resource.props.get("guestAccelerators"))
        kind = attached[0].get("type") if attached and isinstance(attached[0], Mapping) else None
        return machine, accelerator_class("gcp", machine, kind)
    if resource.type in (TPU, TPU_VM):
        return "TPU", "tpu"
    if resource.type == AML_COMPUTE:
        size = str(_aml(resource).get("vmSize", ""))
        return size, accelerator_class("azure", size)
    return None


def accelerators(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = config.get(ALLOWED_CLASSES)
    found = _pool_class(resource)
    if allowed is None or found is None:
        return
    name, kind = found
    if kind is not None and kind not in allowed:
        yield (
            f"pool of {name} ({kind}) uses an accelerator class this environment does not "
            f"allow ({', '.join(allowed) or 'none'})"
        )


def gcp_groups_scale_to_zero(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    """A regional autoscaler carries no labels: a dev one is found through the
    group it scales and that group's instance template."""
    by_urn = {r.urn: r for r in resources}
    for scaler in (r for r in resources if r.type == REGION_AUTOSCALER):
        groups = [by_urn[u] for u in scaler.property_dependencies.get("target", ()) if u in by_urn]
        templates = [
            by_urn[u]
            for g in groups
            for u in g.property_dependencies.get("versions", ())
            if u in by_urn and by_urn[u].type == INSTANCE_TEMPLATE
        ]
        if not any(_environment(t) == "dev" for t in templates):
            continue
        minimum = section(scaler.props, "autoscalingPolicy").get("minReplicas")
        if minimum is not None and int(minimum) > 0:
            yield (
                scaler.urn,
                f"dev pool keeps {int(minimum)} node running when idle (scale it to zero)",
            )


RESOURCE_CHECKS = {
    "node-no-public-ip": (no_public_ip,),
    "node-imdsv2": (imdsv2,),
    "pool-scale-to-zero": (scale_to_zero,),
    "pool-spot-in-dev": (spot_in_dev,),
}
STACK_CHECKS = {"pool-scale-to-zero": (gcp_groups_scale_to_zero,)}
CONFIGURED_CHECKS = {"serving-accelerators": (accelerators,)}
