"""Checks that span keys, clouds and catalogs: what the schema alone cannot
say (namespaces, regions, what a cloud supports, network and endpoint fit)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import (
    BaseModel,
)
from pydantic.alias_generators import to_camel

from infra.catalogs import (
    AZURE_LOCATIONS,
    AZURE_ONLINE_ENDPOINT_SKUS,
    AZURE_ONLINE_ENDPOINTS,
    GCP_REGIONS,
    VERTEX_ACCELERATOR_SOURCE,
    VERTEX_ACCELERATOR_TYPES,
    VERTEX_GPU_MACHINE_TYPES,
    VERTEX_MACHINE_TYPES,
    VERTEX_N1_GPUS,
    VERTEX_N1_MACHINE_TYPES,
    VERTEX_PREDICTION,
    VERTEX_TPU_MACHINE_TYPES,
    aws_regions,
    azure_online_endpoint_sku,
    close_matches,
    provider_config_keys,
    sagemaker_inference_instance_types,
    vertex_series_carrying,
)
from infra.settings.endpoints import EndpointAccelerator, EndpointSettings
from infra.settings.errors import NAMESPACE, SettingsError, stack_file
from infra.settings.models import (
    AWS_VPC_PREFIXES,
    AZURE_FLOW_LOG_RETENTION_DAYS,
    CLOUDWATCH_RETENTION_DAYS,
    GCP_PROJECT_ID,
    PROVIDER_NAMESPACES,
    REGION_KEYS,
    REQUIRED_PROVIDER_KEYS,
    ProjectSettings,
)
from infra.settings.pools import check_pool

# Namespaces a stack file may hold besides the providers': the program's own
# and the engine's (`pulumi:tags`, `pulumi:disable-default-providers`).
OWN_NAMESPACES = ("mlops", "pulumi")


def _check_namespaces(
    stack: str, cloud: str | None, values: Mapping[str, Any]
) -> Iterator[SettingsError]:
    """Keys of another cloud, unknown keys of the cloud's provider, unknown
    namespaces. Without a valid cloud, only namespaces no cloud has."""
    own = PROVIDER_NAMESPACES.get(cloud or "", "")
    others = {ns: c for c, ns in PROVIDER_NAMESPACES.items() if c != cloud} if own else {}
    known = (*OWN_NAMESPACES, own) if own else (*OWN_NAMESPACES, *PROVIDER_NAMESPACES.values())
    for key in sorted(values):
        namespace, _, name = key.partition(":")
        if namespace in others:
            yield SettingsError(
                stack_file(stack),
                key,
                f"belongs to {others[namespace]}, but {NAMESPACE}cloud is {cloud}",
            )
        elif namespace == own and name not in provider_config_keys(own):
            yield SettingsError(
                stack_file(stack),
                key,
                f"unknown {own} provider key"
                + close_matches(name, provider_config_keys(own), prefix=f"{own}:"),
            )
        elif namespace not in known:
            yield SettingsError(
                stack_file(stack),
                key,
                f"unknown namespace {namespace!r} (known: {', '.join(known)})",
            )


def _regions(cloud: str) -> tuple[frozenset[str], str]:
    """A cloud's regions and where the list comes from."""
    if cloud == "aws":
        regions, version = aws_regions()
        return regions, f"botocore {version} lists {len(regions)}"
    if cloud == "gcp":
        return GCP_REGIONS, f"the platform's list of {len(GCP_REGIONS)}, infra/catalogs.py"
    return AZURE_LOCATIONS, f"the platform's list of {len(AZURE_LOCATIONS)}, infra/catalogs.py"


REGION_NAMES = {"aws": "an AWS region", "gcp": "a GCP region", "azure": "an Azure location"}


def _check_region(stack: str, cloud: str, values: Mapping[str, Any]) -> Iterator[SettingsError]:
    missing = [key for key in REQUIRED_PROVIDER_KEYS[cloud] if not values.get(key)]
    for key in missing:
        yield SettingsError(stack_file(stack), key, f"is required when {NAMESPACE}cloud is {cloud}")
    key = REGION_KEYS[cloud]
    if key in missing:
        return
    region = str(values[key])
    regions, source = _regions(cloud)
    if region in regions:
        return
    for other in sorted(REGION_KEYS):
        if other != cloud and region in _regions(other)[0]:
            yield SettingsError(
                stack_file(stack), key, f"{region!r} is a region of {other}, not of {cloud}"
            )
            return
    yield SettingsError(
        stack_file(stack),
        key,
        f"{region!r} is not {REGION_NAMES[cloud]} ({source})" + close_matches(region, regions),
    )


def _check_gcp_project(
    stack: str, cloud: str, values: Mapping[str, Any]
) -> Iterator[SettingsError]:
    project = values.get("gcp:project")
    if cloud == "gcp" and project and not GCP_PROJECT_ID.match(str(project)):
        yield SettingsError(stack_file(stack), "gcp:project", f"{project!r} is not a project id")


# Settings a cloud has no control for. Set explicitly, they are refused rather
# than accepted and ignored; their defaults are documented per cloud instead.
UNSUPPORTED: dict[str, dict[tuple[str, ...], str]] = {
    "gcp": {
        ("network", "flowLogs", "retentionDays"): (
            "VPC flow logs go to Cloud Logging, which keeps them for its log bucket's "
            "retention, not per network"
        ),
    },
    "azure": {
        ("registries", "containers", "keepLastImages"): (
            "ACR retention covers untagged manifests only; it cannot keep the newest N images"
        ),
        ("registries", "containers", "immutableTags"): (
            "ACR locks tags per repository or tag (az acr repository update --write-enabled), "
            "not per registry"
        ),
        ("registries", "containers", "scanOnPush"): (
            "ACR images are scanned by Microsoft Defender for Containers, a subscription plan"
        ),
        ("lake", "retention", "abortIncompleteUploadDays"): (
            "Azure Storage discards uncommitted blocks after 7 days by itself"
        ),
    },
}
AZURE_LOG_RETENTION = (30, 730)


def _explicitly_set(model: BaseModel, path: tuple[str, ...]) -> bool:
    node: Any = model
    for alias in path:
        names = {f.alias: n for n, f in type(node).model_fields.items()}
        if names[alias] not in node.model_fields_set:
            return False
        node = getattr(node, names[alias])
    return True


def _check_azure(stack: str, project: ProjectSettings) -> Iterator[SettingsError]:
    low, high = AZURE_LOG_RETENTION
    days = project.lake.access_logs.retention_days
    if not low <= days <= high:
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}lake.accessLogs.retentionDays",
            f"{days} is outside what a Log Analytics workspace keeps on azure ({low} to {high})",
        )


def _check_unsupported(stack: str, cloud: str, project: ProjectSettings) -> Iterator[SettingsError]:
    for path, reason in UNSUPPORTED.get(cloud, {}).items():
        if _explicitly_set(project, path):
            yield SettingsError(
                stack_file(stack),
                f"{NAMESPACE}{'.'.join(path)}",
                f"is not supported on {cloud}: {reason}; remove it",
            )


def _check_network(stack: str, cloud: str, project: ProjectSettings) -> Iterator[SettingsError]:
    network = project.network
    key = f"{NAMESPACE}network"
    if project.environment == "prod" and network.zones < 2:
        yield SettingsError(
            stack_file(stack),
            f"{key}.zones",
            f"prod spreads over at least 2 zones, got {network.zones}",
        )
    prefix = ipaddress.IPv4Network(network.cidr).prefixlen
    if cloud == "aws" and not AWS_VPC_PREFIXES[0] <= prefix <= AWS_VPC_PREFIXES[1]:
        yield SettingsError(
            stack_file(stack),
            f"{key}.cidr",
            f"{network.cidr}: an AWS VPC takes a /16 to a /28 (a prefix length from "
            f"{AWS_VPC_PREFIXES[0]} to {AWS_VPC_PREFIXES[1]})",
        )
        return
    if network.subnet_prefix_length <= prefix:
        yield SettingsError(
            stack_file(stack),
            f"{key}.subnetPrefixLength",
            f"/{network.subnet_prefix_length} is not smaller than cidr {network.cidr} itself",
        )
        return
    for index, reserved in enumerate(network.reserved_ranges):
        if ipaddress.IPv4Network(network.cidr).overlaps(ipaddress.IPv4Network(reserved)):
            yield SettingsError(
                stack_file(stack),
                f"{key}.cidr",
                f"{network.cidr} overlaps {reserved} (reservedRanges[{index}])",
            )
    needed, slots = network.slots_needed(cloud), network.slots()
    if slots < needed:
        yield SettingsError(
            stack_file(stack),
            f"{key}.cidr",
            f"{network.cidr} is too small: it holds {slots} subnets of "
            f"/{network.subnet_prefix_length} (subnetPrefixLength) and this stack needs "
            f"{needed} (zones {network.zones}, egress {network.egress} on {cloud})",
        )
    days = network.flow_logs.retention_days
    if cloud == "azure" and days > AZURE_FLOW_LOG_RETENTION_DAYS:
        yield SettingsError(
            stack_file(stack),
            f"{key}.flowLogs.retentionDays",
            f"{days} is more than Azure keeps flow logs ({AZURE_FLOW_LOG_RETENTION_DAYS} days)",
        )
    if cloud == "aws" and days not in CLOUDWATCH_RETENTION_DAYS:
        yield SettingsError(
            stack_file(stack),
            f"{key}.flowLogs.retentionDays",
            f"{days} is not a retention CloudWatch Logs offers "
            f"({', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))})",
        )


def _check_endpoint_sources(
    stack: str, project: ProjectSettings, name: str, endpoint: EndpointSettings
) -> Iterator[SettingsError]:
    key = f"{NAMESPACE}endpoints.{name}.model"
    model = endpoint.model
    repositories = project.registries.containers.repositories
    if model.image is not None and model.image.repository not in repositories:
        yield SettingsError(
            stack_file(stack),
            f"{key}.image.repository",
            f"{model.image.repository!r} is not one of the stack's repositories "
            f"({', '.join(repositories)}; registries.containers.repositories)",
        )
    if model.artifact is not None and model.artifact.zone not in project.lake.zones:
        yield SettingsError(
            stack_file(stack),
            f"{key}.artifact.zone",
            f"{model.artifact.zone!r} is not a lake zone ({', '.join(project.lake.zones)})",
        )
    capture_zone = endpoint.data_capture.zone
    if capture_zone is not None and capture_zone not in project.lake.zones:
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}endpoints.{name}.dataCapture.zone",
            f"{capture_zone!r} is not a lake zone ({', '.join(project.lake.zones)})",
        )
    if model.registry_version is not None and not project.registries.models.enabled:
        yield SettingsError(
            stack_file(stack),
            f"{key}.registryVersion",
            "needs the stack's model registry (registries.models.enabled is false)",
        )
    baseline = endpoint.monitoring.baseline
    if baseline is not None and baseline.zone not in project.lake.zones:
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}endpoints.{name}.monitoring.baseline.zone",
            f"{baseline.zone!r} is not a lake zone ({', '.join(project.lake.zones)})",
        )


def _check_sagemaker_endpoint(
    stack: str, name: str, endpoint: EndpointSettings
) -> Iterator[SettingsError]:
    key = f"{NAMESPACE}endpoints.{name}"
    types, version = sagemaker_inference_instance_types()
    if endpoint.instance_type not in types:
        yield SettingsError(
            stack_file(stack),
            f"{key}.instanceType",
            f"{endpoint.instance_type!r} is not a SageMaker real-time inference instance type "
            f"(botocore {version} lists {len(types)})"
            + close_matches(endpoint.instance_type, types),
        )
    if endpoint.accelerator is not None:
        yield SettingsError(
            stack_file(stack),
            f"{key}.accelerator",
            "is not supported on aws: a SageMaker instance type carries its accelerators "
            "(ml.g5, ml.p4d, ml.inf2, ...); choose the type instead; remove it",
        )
    if endpoint.rollout.strategy != "allAtOnce" and endpoint.min_replicas < 2:
        yield SettingsError(
            stack_file(stack),
            f"{key}.minReplicas",
            f"a {endpoint.rollout.strategy} rollout shifts part of the instances, so it needs "
            f"at least 2 (got {endpoint.min_replicas})",
        )


def _one_of(values: tuple[int, ...] | list[str]) -> str:
    """`a, b or c`."""
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


VERTEX_AS_OF = f"(Vertex AI's machine types as of {VERTEX_PREDICTION.checked}, infra/catalogs.py)"


def _vertex_fixed_gpus(
    machine: str, accelerator: EndpointAccelerator | None
) -> tuple[str, str] | None:
    """An accelerator-optimized type (a2, a3, a4, g2) states the GPUs it carries."""
    carried, count = VERTEX_GPU_MACHINE_TYPES[machine]
    if accelerator is None:
        return "accelerator", (
            f"is required for {machine}: Vertex AI takes the GPUs it carries stated, "
            f"type {carried} and count {count} {VERTEX_AS_OF}"
        )
    if accelerator.type != carried:
        return (
            "accelerator.type",
            f"{machine} carries {carried}, not {accelerator.type} {VERTEX_AS_OF}",
        )
    if accelerator.count != count:
        return "accelerator.count", (
            f"{machine} carries {count} {carried}, not {accelerator.count} {VERTEX_AS_OF}"
        )
    return None


def _vertex_attached_gpus(machine: str, accelerator: EndpointAccelerator) -> tuple[str, str] | None:
    """An N1 type takes the GPUs Vertex AI attaches to N1, as many as its vCPUs need."""
    kind, count = accelerator.type, accelerator.count
    if kind not in VERTEX_ACCELERATOR_TYPES:
        return "accelerator.type", (
            f"{kind!r} is not a Vertex AI accelerator type ({VERTEX_ACCELERATOR_SOURCE}, "
            "infra/catalogs.py)" + close_matches(kind, VERTEX_ACCELERATOR_TYPES)
        )
    if kind not in VERTEX_N1_GPUS:
        series = vertex_series_carrying(kind)
        where = f"; {kind} comes with {', '.join(f'{s}-*' for s in series)} types" if series else ""
        return "accelerator.type", (
            f"{machine} takes {_one_of(sorted(VERTEX_N1_GPUS))}, not {kind} {VERTEX_AS_OF}{where}"
        )
    counts = VERTEX_N1_GPUS[kind][VERTEX_N1_MACHINE_TYPES[machine]]
    if count not in counts:
        return "accelerator.count", (
            f"{machine} takes {_one_of(counts)} {kind}, not {count} {VERTEX_AS_OF}"
        )
    return None


def _vertex_accelerator_problem(
    machine: str, accelerator: EndpointAccelerator | None
) -> tuple[str, str] | None:
    """(key under the endpoint, problem) where the accelerator does not fit the
    machine type the way Vertex AI requires, else None."""
    if machine in VERTEX_GPU_MACHINE_TYPES:
        return _vertex_fixed_gpus(machine, accelerator)
    if accelerator is None:
        return None
    if machine in VERTEX_N1_MACHINE_TYPES:
        return _vertex_attached_gpus(machine, accelerator)
    if machine in VERTEX_TPU_MACHINE_TYPES:
        return "accelerator", (
            f"{machine} takes no accelerator {VERTEX_AS_OF}: its "
            f"{VERTEX_TPU_MACHINE_TYPES[machine]} TPU v5e chips come with the machine type; "
            "remove it"
        )
    return "accelerator", (
        f"{machine} takes no accelerator {VERTEX_AS_OF}: Vertex AI attaches GPUs to n1 types "
        "only, and a2, a3, a4 and g2 types carry their own; remove it"
    )


def _check_vertex_endpoint(
    stack: str, name: str, endpoint: EndpointSettings
) -> Iterator[SettingsError]:
    key = f"{NAMESPACE}endpoints.{name}"
    machine = endpoint.instance_type
    if machine not in VERTEX_MACHINE_TYPES:
        yield SettingsError(
            stack_file(stack),
            f"{key}.instanceType",
            f"{machine!r} is not a Vertex AI prediction machine type "
            f"({VERTEX_PREDICTION.cite(len(VERTEX_MACHINE_TYPES))})"
            + close_matches(machine, VERTEX_MACHINE_TYPES),
        )
        return
    problem = _vertex_accelerator_problem(machine, endpoint.accelerator)
    if problem is not None:
        yield SettingsError(stack_file(stack), f"{key}.{problem[0]}", problem[1])


def _check_azureml_endpoint(
    stack: str, name: str, endpoint: EndpointSettings
) -> Iterator[SettingsError]:
    key = f"{NAMESPACE}endpoints.{name}"
    if azure_online_endpoint_sku(endpoint.instance_type) is None:
        yield SettingsError(
            stack_file(stack),
            f"{key}.instanceType",
            f"{endpoint.instance_type!r} is not a VM size Azure ML managed online endpoints "
            f"take ({AZURE_ONLINE_ENDPOINTS.cite(len(AZURE_ONLINE_ENDPOINT_SKUS))})"
            + close_matches(endpoint.instance_type, AZURE_ONLINE_ENDPOINT_SKUS, ignore_case=True),
        )
    if endpoint.accelerator is not None:
        yield SettingsError(
            stack_file(stack),
            f"{key}.accelerator",
            "is not supported on azure: an Azure ML VM size carries its GPUs "
            "(Standard_NC4as_T4_v3, Standard_NC24ads_A100_v4, ...); choose the size instead; "
            "remove it",
        )


# Endpoint keys a cloud's service has no control for: setting one is an error there.
ENDPOINT_KEY_CLOUDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "networkIsolation": ("network_isolation", ("aws",)),
    "dataCapture.zone": ("data_capture.zone", ("aws", "azure")),
    "autoscaling.scaleInCooldownSeconds": (
        "autoscaling.scale_in_cooldown_seconds",
        ("aws", "azure"),
    ),
    "autoscaling.scaleOutCooldownSeconds": (
        "autoscaling.scale_out_cooldown_seconds",
        ("aws", "azure"),
    ),
}
WHY_NOT: dict[str, str] = {
    "networkIsolation": "Vertex AI and Azure ML endpoints make no outbound call but through "
    "the stack's network",
    "dataCapture.zone": "Vertex AI logs requests and responses to the stack's BigQuery dataset",
    "autoscaling.scaleInCooldownSeconds": "Vertex AI's autoscaler has no cooldown setting",
    "autoscaling.scaleOutCooldownSeconds": "Vertex AI's autoscaler has no cooldown setting",
}


def _was_set(endpoint: EndpointSettings, path: str) -> bool:
    """Whether the stack file gives `path` (a dotted field path) itself."""
    model: Any = endpoint
    *parents, field = path.split(".")
    for parent in parents:
        if parent not in model.model_fields_set:
            return False
        model = getattr(model, parent)
    return field in model.model_fields_set


def _check_endpoint_keys(
    stack: str, cloud: str, name: str, endpoint: EndpointSettings
) -> Iterator[SettingsError]:
    for key, (path, clouds) in ENDPOINT_KEY_CLOUDS.items():
        if cloud not in clouds and _was_set(endpoint, path):
            yield SettingsError(
                stack_file(stack),
                f"{NAMESPACE}endpoints.{name}.{key}",
                f"has no effect on {cloud} ({WHY_NOT[key]}); remove it",
            )


def _check_endpoint(
    stack: str, cloud: str, project: ProjectSettings, name: str, endpoint: EndpointSettings
) -> Iterator[SettingsError]:
    yield from _check_endpoint_sources(stack, project, name, endpoint)
    yield from _check_endpoint_keys(stack, cloud, name, endpoint)
    if cloud == "aws":
        yield from _check_sagemaker_endpoint(stack, name, endpoint)
    elif cloud == "gcp":
        yield from _check_vertex_endpoint(stack, name, endpoint)
        artifact = endpoint.model.artifact
        if artifact is not None and "/" not in artifact.path:
            yield SettingsError(
                stack_file(stack),
                f"{NAMESPACE}endpoints.{name}.model.artifact.path",
                f"{artifact.path!r} lies at the bucket's root; Vertex AI reads the artifact's "
                "folder, so put it in one (models/<name>/<version>/...)",
            )
    elif cloud == "azure":
        yield from _check_azureml_endpoint(stack, name, endpoint)
        yield from _check_azure_autoscale(stack, name, endpoint)


# Log Analytics keeps data 30 to 730 days (interactive retention).
LOG_ANALYTICS_RETENTION = (30, 730)
AUDIT_KEY_CLOUDS = {"cloudWatchLogs": "aws", "activityLog": "azure"}


def _check_audit(stack: str, cloud: str, project: ProjectSettings) -> Iterator[SettingsError]:
    audit = project.audit
    low, high = LOG_ANALYTICS_RETENTION
    if cloud == "azure" and not low <= audit.retention_days <= high:
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}audit.retentionDays",
            f"{audit.retention_days} is outside what Log Analytics keeps ({low} to {high} days)",
        )
    set_keys = {to_camel(field) for field in audit.model_fields_set}
    for key, only in AUDIT_KEY_CLOUDS.items():
        if key in set_keys and cloud != only:
            yield SettingsError(
                stack_file(stack),
                f"{NAMESPACE}audit.{key}",
                f"applies to {only} only; remove it",
            )


# Azure Monitor autoscale waits at least a minute between scaling actions.
AZURE_MIN_COOLDOWN_SECONDS = 60


def _check_azure_autoscale(
    stack: str, name: str, endpoint: EndpointSettings
) -> Iterator[SettingsError]:
    scaling = endpoint.autoscaling
    for key, seconds in (
        ("scaleInCooldownSeconds", scaling.scale_in_cooldown_seconds),
        ("scaleOutCooldownSeconds", scaling.scale_out_cooldown_seconds),
    ):
        if seconds < AZURE_MIN_COOLDOWN_SECONDS:
            yield SettingsError(
                stack_file(stack),
                f"{NAMESPACE}endpoints.{name}.autoscaling.{key}",
                f"{seconds} is below the minute Azure Monitor autoscale waits at least "
                f"({AZURE_MIN_COOLDOWN_SECONDS})",
            )


def _check_cloud_support(
    stack: str, cloud: str, project: ProjectSettings
) -> Iterator[SettingsError]:
    yield from _check_unsupported(stack, cloud, project)
    yield from _check_network(stack, cloud, project)
    if cloud == "azure":
        yield from _check_azure(stack, project)
    for name, pool in sorted(project.accelerator_pools.items()):
        yield from check_pool(stack, cloud, name, pool)
    for name, endpoint in sorted(project.endpoints.items()):
        yield from _check_endpoint(stack, cloud, project, name, endpoint)
    yield from _check_audit(stack, cloud, project)
    if project.ci is not None and cloud == "azure" and len(project.ci.publishers) > 19:
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}ci.publishers",
            "Azure takes at most 20 federated credentials per identity: the repository "
            "and 19 publishers",
        )
    if project.endpoints and not (project.alerts.emails or project.alerts.webhook):
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}alerts.emails",
            "give at least one address (or a webhook): the endpoints' alarms and drift "
            "findings would notify nobody",
        )
    tiering = project.lake.tiering
    if (
        cloud == "aws"
        and tiering.archive_after_days is not None
        and tiering.archive_after_days - tiering.cool_after_days < 30
    ):
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}lake.tiering.archiveAfterDays",
            f"{tiering.archive_after_days} is too early: S3 keeps objects in STANDARD_IA "
            "for 30 days before the next transition",
        )
    if cloud == "aws" and project.lake.tiering.cool_after_days < 30:
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}lake.tiering.coolAfterDays",
            f"{project.lake.tiering.cool_after_days} is too early: S3 moves objects to "
            "STANDARD_IA no sooner than 30 days after creation",
        )
