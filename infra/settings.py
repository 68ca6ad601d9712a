"""One typed, validated model of a stack's settings, the same for every cloud.

`load(stack, values)` turns the flat Pulumi config of a stack (what the Pulumi
CLI hands the program, or what the offline planner hands it the same way) into
`PlatformSettings`. Every check happens here, before a resource is registered;
a bad value raises `SettingsError`, whose text is one line naming the stack
file, the key path and what is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from infra.catalogs import (
    AZURE_LOCATIONS,
    GCP_REGIONS,
    aws_regions,
    close_matches,
    provider_config_keys,
    sagemaker_inference_instance_types,
)

PROJECT = "mlops"
NAMESPACE = f"{PROJECT}:"
STACKS_DIR = "stacks"

Cloud = Literal["aws", "gcp", "azure"]
Environment = Literal["dev", "staging", "prod"]

# Provider config keys that carry placement, per cloud. Only the provider
# block of a stack file differs between clouds.
REGION_KEYS: dict[str, str] = {
    "aws": "aws:region",
    "gcp": "gcp:region",
    "azure": "azure-native:location",
}
PROVIDER_NAMESPACES: dict[str, str] = {"aws": "aws", "gcp": "gcp", "azure": "azure-native"}
REQUIRED_PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "aws": ("aws:region",),
    "gcp": ("gcp:project", "gcp:region"),
    "azure": ("azure-native:location",),
}
GCP_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")

OWNER_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,62}$"
COST_CENTER_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
NAME_RULE = (
    "3 to 20 lowercase letters, digits and single '-', starting with a letter, not ending with '-'"
)
# The strictest rule of the three clouds (Azure container names) so a name works on all.
_NAME = re.compile(r"^(?=.{3,20}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class SettingsError(Exception):
    """A stack file that cannot be planned. `str()` is one line per problem, each
    naming the stack file, the key path and what is wrong."""

    def __init__(self, stack_file: str, key: str, problem: str) -> None:
        self.stack_file = stack_file
        self.key = key
        self.problem = problem
        self.lines = [f"{stack_file}: {_one_line(key)}: {_one_line(problem)}"]
        super().__init__(self.lines[0])

    @classmethod
    def of(cls, problems: Sequence[SettingsError]) -> SettingsError:
        """One error reporting every problem, the first one's key and problem first."""
        first = problems[0]
        error = cls(first.stack_file, first.key, first.problem)
        error.lines = [line for p in problems for line in p.lines]
        error.args = ("\n".join(error.lines),)
        return error


def _one_line(text: str) -> str:
    """`text` with what would break or hide a line (a newline, a control
    character, a Unicode line separator) written as its escape."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def _name(kind: str):
    def check(value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a valid {kind} name ({NAME_RULE})")
        return value

    return AfterValidator(check)


def _unique(kind: str):
    def check(values: list[str]) -> list[str]:
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise ValueError(f"{kind} {value!r} is listed twice")
            seen.add(value)
        return values

    return AfterValidator(check)


def _matches(kind: str, pattern: str, rule: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"{value!r} is not a valid {kind} ({rule})")
        return value

    return AfterValidator(check)


ZoneName = Annotated[str, _name("zone")]
RepositoryName = Annotated[str, _name("repository")]
Days = Annotated[int, Field(ge=1, le=3650)]


class Model(BaseModel):
    """Base for every settings object: immutable, camelCase keys, no unknown keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        strict=False,
    )


class Tiering(Model):
    """When objects move to cheaper storage classes, in days after creation."""

    cool_after_days: Days = 30
    archive_after_days: Days | None = 180

    @model_validator(mode="after")
    def _ordered(self) -> Tiering:
        if self.archive_after_days is not None and self.archive_after_days <= self.cool_after_days:
            raise ValueError(
                f"archiveAfterDays ({self.archive_after_days}) must be later than "
                f"coolAfterDays ({self.cool_after_days})"
            )
        return self


class Retention(Model):
    """How long superseded and deleted data stays recoverable."""

    noncurrent_version_days: Days = 90
    soft_delete_days: Annotated[int, Field(ge=7, le=90)] = 7
    abort_incomplete_upload_days: Annotated[int, Field(ge=1, le=30)] = 7


class AccessLogs(Model):
    """Server access logs for every lake bucket, kept in a dedicated log store."""

    enabled: bool = True
    retention_days: Days = 365


class LakeSettings(Model):
    zones: Annotated[list[ZoneName], Field(min_length=1, max_length=10), _unique("zone")] = [
        "raw",
        "curated",
        "features",
    ]
    tiering: Tiering = Tiering()
    retention: Retention = Retention()
    access_logs: AccessLogs = AccessLogs()


class ContainerRegistrySettings(Model):
    repositories: Annotated[
        list[RepositoryName], Field(min_length=1, max_length=50), _unique("repository")
    ] = ["training", "serving"]
    immutable_tags: bool = True
    scan_on_push: bool = True
    untagged_retention_days: Annotated[int, Field(ge=1, le=365)] = 7
    keep_last_images: Annotated[int, Field(ge=1, le=1000)] = 30


class ModelRegistrySettings(Model):
    enabled: bool = True


class RegistrySettings(Model):
    containers: ContainerRegistrySettings = ContainerRegistrySettings()
    models: ModelRegistrySettings = ModelRegistrySettings()


# RFC 1918: the only ranges a private network may use.
PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
# Ranges a stack's network must never overlap, with the reason.
RESERVED_RANGES: dict[str, str] = {
    # Docker's default bridge on the hosts that run training and serving
    # containers; a subnet inside it is unreachable from those containers.
    "172.17.0.0/16": "Docker's default bridge network on container hosts",
}
# Subnet slots per cloud, in the order they are carved from `cidr` (see
# `NetworkSettings.subnets`). Slots are fixed so that changing `zones` or
# `egress` never renumbers, and so never replaces, an existing subnet.
MAX_ZONES = 3
# The prefix lengths an AWS VPC's primary range may have.
AWS_VPC_PREFIXES = (16, 28)
# A VNet flow log's retention policy keeps at most a year.
AZURE_FLOW_LOG_RETENTION_DAYS = 365
# CloudWatch Logs accepts only these retention periods, in days.
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip


def _private_cidr(value: str) -> str:
    try:
        if "/" not in value:
            raise ValueError(value)
        network = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IPv4 range in CIDR notation (like 10.20.0.0/16)"
        ) from None
    if str(network) != value:
        raise ValueError(f"{value!r} has host bits set; the range is {network}")
    if not any(network.subnet_of(r) for r in PRIVATE_RANGES):
        raise ValueError(
            f"{value!r} is not a private range (RFC 1918: "
            f"{', '.join(str(r) for r in PRIVATE_RANGES)})"
        )
    return value


def _usable_cidr(value: str) -> str:
    network = ipaddress.IPv4Network(value)
    for reserved, why in RESERVED_RANGES.items():
        if network.overlaps(ipaddress.IPv4Network(reserved)):
            raise ValueError(f"{value!r} overlaps {reserved} ({why})")
    return value


PrivateCidr = Annotated[str, AfterValidator(_private_cidr)]


class FlowLogs(Model):
    """Flow logs of every network, kept `retentionDays` where the cloud keeps them."""

    retention_days: Annotated[int, Field(ge=1, le=3653)] = 90


class NetworkSettings(Model):
    """The stack's private network: where endpoints and pools run, with private
    access to every platform service."""

    cidr: Annotated[PrivateCidr, AfterValidator(_usable_cidr)] = "10.20.0.0/16"
    zones: Annotated[int, Field(ge=1, le=MAX_ZONES)] = 2
    egress: Literal["none", "nat"] = "none"
    subnet_prefix_length: Annotated[int, Field(ge=16, le=28)] = 20
    # Ranges in use elsewhere (on premises, peered networks) that `cidr` must not overlap.
    reserved_ranges: Annotated[list[PrivateCidr], Field(max_length=50)] = []
    flow_logs: FlowLogs = FlowLogs()

    def slots(self) -> int:
        """How many subnets of `subnetPrefixLength` the range holds."""
        return 2 ** (self.subnet_prefix_length - ipaddress.IPv4Network(self.cidr).prefixlen)

    def subnets(self, cloud: str) -> dict[str, str]:
        """Each subnet's role and range: `private-<i>`/`public-<i>` per zone on AWS,
        `workload` and `endpoints` (regional) on GCP and Azure."""
        if cloud == "aws":
            layout = {f"private-{i}": i for i in range(self.zones)}
            if self.egress == "nat":
                layout |= {f"public-{i}": MAX_ZONES + i for i in range(self.zones)}
        else:
            layout = {"workload": 0, "endpoints": 1}
        first = ipaddress.IPv4Network(self.cidr).network_address
        size = 2 ** (32 - self.subnet_prefix_length)
        return {
            role: f"{first + slot * size}/{self.subnet_prefix_length}"
            for role, slot in layout.items()
        }

    def slots_needed(self, cloud: str) -> int:
        if cloud == "aws":
            return MAX_ZONES + self.zones if self.egress == "nat" else self.zones
        return 2


AcceleratorKind = Literal["gpu", "tpu", "inferentia", "trainium"]
ACCELERATOR_CLOUDS: dict[str, frozenset[str]] = {
    "gpu": frozenset({"aws", "gcp", "azure"}),
    "tpu": frozenset({"gcp"}),
    "inferentia": frozenset({"aws"}),
    "trainium": frozenset({"aws"}),
}


IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_DIGEST = r"^sha256:[a-f0-9]{64}$"
# A relative object path: no leading '/', no '..' segment, no empty segment.
ARTIFACT_PATH = r"^(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$"


class ImageRef(Model):
    """A serving image in the stack's own container registry, pinned by tag or digest."""

    repository: RepositoryName
    tag: Annotated[str, _matches("image tag", IMAGE_TAG, "letters, digits, _ . -")] | None = None
    digest: Annotated[str, _matches("image digest", IMAGE_DIGEST, "sha256:<64 hex>")] | None = None

    @model_validator(mode="after")
    def _pinned(self) -> ImageRef:
        if (self.tag is None) == (self.digest is None):
            raise ValueError("give the image exactly one of tag or digest")
        return self


class ArtifactRef(Model):
    """Where the model's artifact lies in the lake: a zone and a path inside it."""

    zone: ZoneName
    path: Annotated[
        str,
        _matches(
            "artifact path", ARTIFACT_PATH, "a relative path like models/churn/3/model.tar.gz"
        ),
    ]


class ServedModel(Model):
    """The image (and its artifact from the lake), or a version of the stack's model registry."""

    image: ImageRef | None = None
    artifact: ArtifactRef | None = None
    registry_version: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ServedModel:
        if self.registry_version is not None and (self.image or self.artifact):
            raise ValueError(
                "registryVersion names image and artifact itself; give one or the other"
            )
        if self.registry_version is None and self.image is None:
            raise ValueError("give an image (with its artifact) or a registryVersion")
        return self


UTILIZATION_METRICS = ("cpuUtilization", "gpuUtilization")


class Autoscaling(Model):
    """Target tracking between minReplicas and maxReplicas."""

    metric: Literal["invocationsPerReplica", "cpuUtilization", "gpuUtilization"] = (
        "invocationsPerReplica"
    )
    # Invocations per replica per minute, or a utilization percentage.
    target: Annotated[int, Field(ge=1, le=100_000)] = 100
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60

    @model_validator(mode="after")
    def _percent(self) -> Autoscaling:
        if self.metric in UTILIZATION_METRICS and self.target > 100:
            raise ValueError(f"target {self.target} is not a percentage for {self.metric}")
        return self


class DataCapture(Model):
    """The share of requests and responses kept in the lake, encrypted with the platform key,
    under `capture/<endpoint>/` in `zone` (the lake's first zone unless named)."""

    percent: Annotated[int, Field(ge=0, le=100)] = 10
    zone: ZoneName | None = None


class Alarms(Model):
    """When the endpoint is unhealthy: these alarms also roll a rollout back."""

    errors_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 5
    latency_p99_ms: Annotated[int, Field(ge=1, le=600_000)] = 1000
    evaluation_minutes: Annotated[int, Field(ge=1, le=60)] = 3


class Rollout(Model):
    """How a new model version takes the traffic; any alarm of the endpoint rolls it back."""

    strategy: Literal["allAtOnce", "canary", "linear"] = "allAtOnce"
    canary_percent: Annotated[int, Field(ge=1, le=50)] = 10
    linear_step_percent: Annotated[int, Field(ge=5, le=50)] = 20
    # The bake time: how long each step waits, watching the alarms, before the next.
    # SageMaker takes at most an hour per step (WaitIntervalInSeconds <= 3600).
    wait_minutes: Annotated[int, Field(ge=1, le=60)] = 10

    @model_validator(mode="after")
    def _applies(self) -> Rollout:
        for key, strategy in (("canaryPercent", "canary"), ("linearStepPercent", "linear")):
            name = "canary_percent" if strategy == "canary" else "linear_step_percent"
            if name in self.model_fields_set and self.strategy != strategy:
                raise ValueError(f"{key} applies to strategy {strategy}, not {self.strategy}")
        return self


class EndpointAccelerator(Model):
    """Accelerators attached to a machine type, where the cloud separates them (GCP)."""

    type: Annotated[str, Field(min_length=1)]
    count: Annotated[int, Field(ge=1, le=16)] = 1


class EndpointSettings(Model):
    """A private, autoscaled model endpoint that captures its traffic and rolls out safely."""

    model: ServedModel
    instance_type: Annotated[str, Field(min_length=1)]
    accelerator: EndpointAccelerator | None = None
    min_replicas: Annotated[int, Field(ge=1, le=100)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 2
    autoscaling: Autoscaling = Autoscaling()
    data_capture: DataCapture = DataCapture()
    rollout: Rollout = Rollout()
    alarms: Alarms = Alarms()
    # The container makes no outbound call (models that download at start-up cannot).
    network_isolation: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> EndpointSettings:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) is below minReplicas ({self.min_replicas})"
            )
        return self


class AcceleratorPoolSettings(Model):
    kind: AcceleratorKind
    type: Annotated[str, Field(min_length=1)]
    min_nodes: Annotated[int, Field(ge=0, le=1000)] = 0
    max_nodes: Annotated[int, Field(ge=1, le=1000)] = 1
    spot: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> AcceleratorPoolSettings:
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"maxNodes ({self.max_nodes}) is below minNodes ({self.min_nodes})")
        return self


def _named_map(kind: str):
    def check(values: dict[str, Any]) -> dict[str, Any]:
        for key in values:
            if not _NAME.match(key):
                raise ValueError(f"{key!r} is not a valid {kind} name ({NAME_RULE})")
        return values

    return AfterValidator(check)


class ProjectSettings(Model):
    """The `mlops:*` keys of a stack file (namespace stripped)."""

    cloud: Cloud
    environment: Environment
    owner: Annotated[
        str,
        _matches("owner", r"^[a-z0-9][a-z0-9._@-]{0,62}$", "lowercase letters, digits, . _ @ -"),
    ]
    cost_center: Annotated[
        str,
        _matches("cost center", r"^[a-z0-9][a-z0-9_-]{0,62}$", "lowercase letters, digits, _ -"),
    ]
    lake: LakeSettings = LakeSettings()
    registries: RegistrySettings = RegistrySettings()
    network: NetworkSettings = NetworkSettings()
    endpoints: Annotated[dict[str, EndpointSettings], _named_map("endpoint")] = {}
    accelerator_pools: Annotated[
        dict[str, AcceleratorPoolSettings], _named_map("accelerator pool")
    ] = {}


class PlatformSettings(Model):
    """Everything a cloud package needs to build a stack."""

    stack: str
    stack_file: str
    cloud: Cloud
    environment: Environment
    region: str
    gcp_project: str | None = None
    owner: str
    cost_center: str
    lake: LakeSettings
    registries: RegistrySettings
    network: NetworkSettings
    endpoints: dict[str, EndpointSettings]
    accelerator_pools: dict[str, AcceleratorPoolSettings]

    @property
    def protect(self) -> bool:
        """Prod protects everything stateful from deletion."""
        return self.environment == "prod"

    @property
    def tags(self) -> dict[str, str]:
        """Tags (AWS, Azure) and labels (GCP): one set of keys valid on every cloud."""
        return {
            "project": PROJECT,
            "stack": self.stack,
            "environment": self.environment,
            "owner": self.owner.replace("@", "_").replace(".", "_"),
            "cost-center": self.cost_center,
            "managed-by": "pulumi",
        }


def stack_file(stack: str) -> str:
    return f"{STACKS_DIR}/Pulumi.{stack}.yaml"


def _decode(value: Any) -> Any:
    """Config values reach a program as strings; objects and lists JSON-encoded."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = f"{NAMESPACE}{loc[0]}"
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed beside the unknown one at `loc`, for the error message."""
    model: Any = ProjectSettings
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, Model)):
            return []
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return []
        model = field.annotation
    if not (isinstance(model, type) and issubclass(model, Model)):
        return []
    return sorted(f.alias or n for n, f in model.model_fields.items())


def _problem(error: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc)
        return f"unknown key (known keys: {', '.join(known)})" if known else "unknown key"
    if kind == "missing":
        return "is required but missing"
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping of settings, got {error.get('input')!r}"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if "input" in error and kind not in ("model_type", "dict_type"):
        shown = error["input"]
        if isinstance(shown, str | int | float | bool) and repr(shown) not in message:
            message = f"{shown!r}: {message}"
    return message


def _all_errors(exc: ValidationError, stack: str) -> list[SettingsError]:
    found = []
    for error in sorted(exc.errors(), key=lambda e: tuple(str(p) for p in e["loc"])):
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        key = _key_path(loc) if loc else f"{NAMESPACE}*"
        found.append(SettingsError(stack_file(stack), key, _problem(error, loc)))
    return found


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


def _check_endpoint(
    stack: str, cloud: str, project: ProjectSettings, name: str, endpoint: EndpointSettings
) -> Iterator[SettingsError]:
    yield from _check_endpoint_sources(stack, project, name, endpoint)
    if cloud == "aws":
        yield from _check_sagemaker_endpoint(stack, name, endpoint)


def _check_cloud_support(
    stack: str, cloud: str, project: ProjectSettings
) -> Iterator[SettingsError]:
    yield from _check_unsupported(stack, cloud, project)
    yield from _check_network(stack, cloud, project)
    if cloud == "azure":
        yield from _check_azure(stack, project)
    for name, pool in sorted(project.accelerator_pools.items()):
        if cloud not in ACCELERATOR_CLOUDS[pool.kind]:
            yield SettingsError(
                stack_file(stack),
                f"{NAMESPACE}acceleratorPools.{name}.kind",
                f"{pool.kind} is not offered on {cloud} "
                f"(offered on {', '.join(sorted(ACCELERATOR_CLOUDS[pool.kind]))})",
            )
    if project.accelerator_pools:
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}acceleratorPools",
            "is validated but not provisioned by this release; remove it until it is",
        )
    for name, endpoint in sorted(project.endpoints.items()):
        yield from _check_endpoint(stack, cloud, project, name, endpoint)
    if project.endpoints and cloud != "aws":
        yield SettingsError(
            stack_file(stack),
            f"{NAMESPACE}endpoints",
            f"is validated but not provisioned on {cloud} by this release; remove it until it is",
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


def load(stack: str, values: Mapping[str, Any]) -> PlatformSettings:
    """Validate a stack's flat config (`{"mlops:lake": "...json...", "aws:region": ...}`).

    Every problem of the file is reported at once, one line each (`SettingsError`)."""
    own = {
        key[len(NAMESPACE) :]: _decode(v) for key, v in values.items() if key.startswith(NAMESPACE)
    }
    problems: list[SettingsError] = []
    project: ProjectSettings | None = None
    try:
        project = ProjectSettings.model_validate(own)
    except ValidationError as exc:
        problems += _all_errors(exc, stack)
    cloud = project.cloud if project else own.get("cloud")
    if not isinstance(cloud, str) or cloud not in PROVIDER_NAMESPACES:
        cloud = None
    problems += _check_namespaces(stack, cloud, values)
    if cloud is not None:
        problems += _check_region(stack, cloud, values)
        problems += _check_gcp_project(stack, cloud, values)
    if project is not None:
        problems += _check_cloud_support(stack, project.cloud, project)
    if problems:
        raise SettingsError.of(problems)
    assert project is not None  # no problem means the model validated
    return PlatformSettings(
        stack=stack,
        stack_file=stack_file(stack),
        region=str(values[REGION_KEYS[project.cloud]]),
        gcp_project=str(values["gcp:project"]) if project.cloud == "gcp" else None,
        # The validated objects themselves: validators run once, on the stack file's keys.
        **{field: getattr(project, field) for field in ProjectSettings.model_fields},
    )
