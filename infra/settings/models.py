"""The settings schema: one pydantic model per block of a stack file, the
same for every cloud, each field with its own checks."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from infra.settings.endpoints import EndpointAccelerator, EndpointSettings
from infra.settings.errors import PROJECT
from infra.settings.fields import (
    NAME,
    NAME_RULE,
    Days,
    Model,
    RepositoryName,
    ZoneName,
    matching,
    unique_items,
)

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
    zones: Annotated[list[ZoneName], Field(min_length=1, max_length=10), unique_items("zone")] = [
        "raw",
        "curated",
        "features",
    ]
    tiering: Tiering = Tiering()
    retention: Retention = Retention()
    access_logs: AccessLogs = AccessLogs()


class ContainerRegistrySettings(Model):
    repositories: Annotated[
        list[RepositoryName], Field(min_length=1, max_length=50), unique_items("repository")
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


EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
WEBHOOK = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?$"


class AlertSettings(Model):
    """Where every alarm, alert and drift finding of the stack goes: one route per
    stack (an SNS topic, a Cloud Monitoring channel per address, an action group)."""

    emails: Annotated[
        list[Annotated[str, matching("email address", EMAIL, "name@domain")]],
        Field(max_length=20),
        unique_items("address"),
    ] = []
    webhook: Annotated[str, matching("webhook", WEBHOOK, "an https:// URL")] | None = None


REPOSITORY = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"
OIDC_PROVIDER_ARN = (
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
GitHubRepository = Annotated[str, matching("GitHub repository", REPOSITORY, "owner/name")]


class CiSettings(Model):
    """The GitHub repositories whose workflows act on the stack through OIDC, with
    no stored secret."""

    # This platform's repository (`owner/name`).
    repository: GitHubRepository
    # Repositories whose default-branch workflows may push images to the stack's
    # registries (teams calling the reusable publishing workflow).
    publishers: Annotated[
        list[GitHubRepository], Field(max_length=20), unique_items("repository")
    ] = []
    # AWS: an account has one GitHub OIDC provider. `create` makes it with the
    # stack; an existing provider's ARN uses that one.
    oidc_provider: Annotated[
        str, matching("OIDC provider", f"^create$|{OIDC_PROVIDER_ARN}", "create or its ARN")
    ] = "create"
    # The GitHub environment the deploy job of this stack runs in (the stack's
    # environment unless named).
    environment: (
        Annotated[
            str,
            matching("GitHub environment", r"^[A-Za-z0-9_.-]{1,255}$", "letters, digits, _ . -"),
        ]
        | None
    ) = None
    # AWS: the S3 bucket of the Pulumi backend, where previews take their locks.
    state_bucket: (
        Annotated[
            str, matching("bucket", r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "an S3 bucket name")
        ]
        | None
    ) = None

    # GitHub's OIDC token subjects each CI identity accepts, on every cloud.
    def preview_subjects(self) -> list[str]:
        """Pull requests of the repository (a fork's name the fork, so they get
        nothing) and its default branch, where the nightly drift check runs."""
        return [
            f"repo:{self.repository}:pull_request",
            f"repo:{self.repository}:ref:refs/heads/main",
        ]

    def deploy_subject(self, stack_environment: str) -> str:
        """Only jobs in the stack's GitHub environment, whose rules gate each deploy."""
        return f"repo:{self.repository}:environment:{self.environment or stack_environment}"

    def publisher_subjects(self) -> dict[str, str]:
        """The default branch of the repository and of each publisher, by repository."""
        return {r: f"repo:{r}:ref:refs/heads/main" for r in [self.repository, *self.publishers]}


class AuditSettings(Model):
    """The trail of who read or changed the lake, the registries, the keys and the models."""

    retention_days: Days = 365
    # Prod's audit store is write-once for retentionDays: compliance (nobody may
    # shorten it) or governance (a privileged principal may).
    lock_mode: Literal["compliance", "governance"] = "compliance"
    # AWS: also deliver the trail to CloudWatch Logs (for metric filters and queries).
    cloud_watch_logs: bool = False
    # Azure: also collect the subscription's activity log (a subscription-level
    # setting; off where the organization collects it centrally).
    activity_log: bool = True


TPU_TOPOLOGY = r"^[1-9][0-9]{0,2}(x[1-9][0-9]{0,2}){1,2}$"


class AcceleratorPoolSettings(Model):
    """Nodes with accelerators for training and batch work, idle at `minNodes`
    (0 by default: nothing runs, nothing is billed for compute)."""

    kind: AcceleratorKind
    # AWS: an EC2 instance type (g5.xlarge, inf2.xlarge, trn1.32xlarge); GCP: a
    # machine type (g2-standard-8, a2-highgpu-1g, n1-standard-8 with `accelerator`)
    # or, for TPUs, a TPU type (v5litepod-8); Azure: a VM size (Standard_NC4as_T4_v3).
    type: Annotated[str, Field(min_length=1)]
    # GCP N1 machine types only: the GPUs attached to each node.
    accelerator: EndpointAccelerator | None = None
    # TPUs: the slice's topology (2x4); the TPU type's default when left out.
    topology: Annotated[str, matching("TPU topology", TPU_TOPOLOGY, "like 2x4 or 2x2x2")] | None = (
        None
    )
    min_nodes: Annotated[int, Field(ge=0, le=1000)] = 0
    max_nodes: Annotated[int, Field(ge=1, le=1000)] = 1
    # Spot (AWS), Spot VMs (GCP), low priority (Azure): cheaper, reclaimable.
    spot: bool = False
    # AWS spot: more instance types the pool may run, for capacity.
    alternative_types: Annotated[list[str], Field(max_length=10)] = []
    # A capacity reservation to run in: AWS `cr-...`, a GCP reservation name.
    capacity_reservation: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    # What the nodes boot: AWS an SSM parameter naming an AMI, GCP an image
    # (family) or a TPU runtime version; each kind has a default.
    image: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    disk_gb: Annotated[int, Field(ge=50, le=16_000)] = 200
    # Azure: how long a node stays idle before the cluster scales it in.
    idle_minutes: Annotated[int, Field(ge=1, le=1440)] = 10

    @model_validator(mode="after")
    def _bounds(self) -> AcceleratorPoolSettings:
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"maxNodes ({self.max_nodes}) is below minNodes ({self.min_nodes})")
        if self.alternative_types and not self.spot:
            raise ValueError("alternativeTypes apply to spot pools (spot: true)")
        return self


def _named_map(kind: str):
    def check(values: dict[str, Any]) -> dict[str, Any]:
        for key in values:
            if not NAME.match(key):
                raise ValueError(f"{key!r} is not a valid {kind} name ({NAME_RULE})")
        return values

    return AfterValidator(check)


class ProjectSettings(Model):
    """The `mlops:*` keys of a stack file (namespace stripped)."""

    cloud: Cloud
    environment: Environment
    owner: Annotated[
        str,
        matching("owner", r"^[a-z0-9][a-z0-9._@-]{0,62}$", "lowercase letters, digits, . _ @ -"),
    ]
    cost_center: Annotated[
        str,
        matching("cost center", r"^[a-z0-9][a-z0-9_-]{0,62}$", "lowercase letters, digits, _ -"),
    ]
    lake: LakeSettings = LakeSettings()
    registries: RegistrySettings = RegistrySettings()
    network: NetworkSettings = NetworkSettings()
    endpoints: Annotated[dict[str, EndpointSettings], _named_map("endpoint")] = {}
    alerts: AlertSettings = AlertSettings()
    audit: AuditSettings = AuditSettings()
    ci: CiSettings | None = None
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
    alerts: AlertSettings
    audit: AuditSettings
    ci: CiSettings | None = None
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
