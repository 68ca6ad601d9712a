"""Accelerator pools on Compute Engine and Cloud TPU: `mlops:gcp:PoolAgents` (what
a stack's GPU pools share) and `mlops:gcp:AcceleratorPool` (one pool).

A GPU pool is a regional managed instance group over the network's zones, sized
by an autoscaler between `minNodes` and `maxNodes` on the pool's job queue: a
Pub/Sub subscription whose backlog (messages not yet acknowledged, so queued and
running jobs) is a per-group metric, one node per job. A per-instance signal
(CPU) cannot bring a group up from zero, nor take it down to zero: with no node
there is nothing to measure. A job publishes one message to the pool's topic; the
node that pulls it acknowledges it only when the job is done, so a node removed
by a scale-in or a Spot preemption leaves its job to be redelivered after the ack
deadline (jobs checkpoint to the lake).

A TPU pool is `minNodes` slices (`gcp.tpu.V2Vm`, a TPU VM each), which nothing
scales: a queued resource (`gcp.tpu.V2QueuedResource`) would queue for capacity,
but the provider's takes no service account (its VMs would run as the Compute
Engine default account), no Spot or reservation tier and no topology; the TPU API
has them, pulumi-gcp 10.2.0 and terraform-provider-google-beta 7.45 do not. A TPU
boot disk is encrypted with a Google-managed key: neither TPU resource exposes the
API's `bootDiskConfig.customerEncryptionKey`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline, EncryptionKey
from infra.gcp.context import GcpProject, labels
from infra.gcp.key import grant_key_use
from infra.gcp.services import PUBSUB_API
from infra.settings import AcceleratorPoolSettings

# service-<project number>@ this: the Compute Engine service agent, which encrypts disks.
COMPUTE_AGENT_DOMAIN = "compute-system.iam.gserviceaccount.com"
# What a node's own account may do in the project: write its logs and metrics.
NODE_PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
OBJECT_VIEWER = "roles/storage.objectViewer"
REPOSITORY_READER = "roles/artifactregistry.reader"
SUBSCRIBER = "roles/pubsub.subscriber"
# Access is decided by the account's IAM roles, not by OAuth scopes.
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# No SSH keys in metadata: OS Login (IAM) decides who may log in.
NODE_METADATA = {"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE"}

# Deep Learning VM images: CUDA 12.8 and NVIDIA driver 570 on Ubuntu 22.04. A
# family: nodes boot its newest image.
GPU_IMAGE = (
    "projects/deeplearning-platform-release/global/images/family/"
    "common-cu128-ubuntu-2204-nvidia-570"
)
# Series whose boot disk must be Hyperdisk; the others take a balanced persistent disk.
HYPERDISK_SERIES = ("a3-ultragpu", "a4-highgpu")
# A preempted Spot node is deleted, not stopped: nodes keep nothing (jobs write to
# the lake), and a stopped node would keep its disk billed while the group
# recreates it anyway.
SPOT_TERMINATION = "DELETE"
JOBS_METRIC = "pubsub.googleapis.com/subscription/num_undelivered_messages"
# The longest ack deadline Pub/Sub allows; a node extends it while its job runs.
ACK_DEADLINE_SECONDS = 600
# Queued jobs outlive a week-long outage of the pool, not longer.
JOB_RETENTION = f"{7 * 24 * 3600}s"
RESERVATION_KEY = "compute.googleapis.com/reservation-name"

# TPU generations (the type's prefix): the runtime Google names for PyTorch and
# JAX (cloud.google.com/tpu/docs/runtimes) and the AcceleratorConfig type that
# takes a topology (cloud.google.com/tpu/docs/reference/rest/v2/AcceleratorConfig).
TPU_RUNTIMES = {
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}
TPU_CONFIG_TYPES = {"v4": "V4", "v5litepod": "V5LITE_POD", "v5p": "V5P", "v6e": "V6E"}


@dataclass(frozen=True)
class PoolAgentsArgs:
    baseline: Baseline
    project: GcpProject
    encryption: EncryptionKey
    # Resources the agents wait for (the Compute Engine and Pub/Sub APIs).
    requires: Sequence[pulumi.Resource] = ()


class PoolAgents(pulumi.ComponentResource):
    """What the stack's GPU pools share: the Compute Engine service agent,
    allowed to use the platform key (GPU nodes' boot disks), and the Pub/Sub
    service agent, allowed to use it (job queues). Once per stack: a grant per
    pool would be one IAM binding held by several resources, and removing a pool
    would take it from the others."""

    def __init__(
        self, name: str, args: PoolAgentsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:PoolAgents", name, {}, opts)
        baseline = args.baseline
        number = gcp.organizations.get_project_output(project_id=args.project.project_id).number
        # The agent exists once the Compute Engine API is on: the grant waits for it.
        compute = pulumi.Output.all(number, *(api.urn for api in args.requires)).apply(
            lambda values: f"serviceAccount:service-{values[0]}@{COMPUTE_AGENT_DOMAIN}"
        )
        self.disk_key = grant_key_use(
            self, f"{name}-compute-key-user", args.encryption, compute, baseline
        )
        self.pubsub = gcp.projects.ServiceIdentity(
            f"{name}-pubsub-agent",
            service=PUBSUB_API,
            opts=baseline.child(self, depends_on=list(args.requires)),
        )
        self.queue_key = grant_key_use(
            self, f"{name}-pubsub-key-user", args.encryption, self.pubsub.member, baseline
        )
        self.register_outputs({"pubsubAgent": self.pubsub.email})


@dataclass(frozen=True)
class AcceleratorPoolArgs:
    baseline: Baseline
    project: GcpProject
    pool: str
    settings: AcceleratorPoolSettings
    network_id: pulumi.Input[str]
    # The workload subnet.
    subnet_id: pulumi.Input[str]
    # The network's zones.
    zones: pulumi.Output[list[str]]
    encryption: EncryptionKey
    bucket_names: Mapping[str, pulumi.Output[str]]
    repositories: Mapping[str, gcp.artifactregistry.Repository]
    # Resources the pool waits for (the Compute Engine, Cloud TPU, Pub/Sub and IAM APIs).
    requires: Sequence[pulumi.Resource] = ()
    # The stack's pool agents: required by GPU pools (boot disks, job queues).
    agents: PoolAgents | None = None


class AcceleratorPool(pulumi.ComponentResource):
    """Nodes with no external IP in the workload subnet, logged in to by OS Login
    only, running as the pool's own service account, which may write logs and
    metrics, read the lake and pull from the stack's repositories, and (GPU) take
    jobs from the pool's queue, nothing more. Firewall rules name the nodes by that
    account (`target_service_accounts`), not by a network tag: setting a tag takes
    only instance metadata rights, running as the account takes `actAs` on it.

    GPU: an instance template (Shielded VM: Secure Boot, vTPM, integrity
    monitoring; a boot disk of `diskGb` under the platform key; host maintenance
    stops the node; Spot when `spot`, in the named reservation when
    `capacityReservation`) and a regional managed instance group over the network's
    zones, which an autoscaler keeps between `minNodes` and `maxNodes`, one node
    per job in the pool's queue (a Pub/Sub topic and subscription under the
    platform key, kept in the stack's region).

    TPU: `minNodes` slices of `type` (or its generation in `topology`) in the
    network's first zone, Spot when `spot`, Secure Boot on, booting `image` or the
    generation's runtime; no key of ours on their boot disks (see the module)."""

    def __init__(
        self, name: str, args: AcceleratorPoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:AcceleratorPool", name, {}, opts)
        self._args = args
        baseline = args.baseline
        self.node_name = baseline.namer.name("pool", args.pool, kind="gcp-id")
        self.account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=self._account_id(),
            display_name=f"Nodes of accelerator pool {baseline.namer.name(args.pool)}",
            description="Runs one accelerator pool's nodes; see the pool's component",
            opts=baseline.child(self, depends_on=list(args.requires)),
        )
        self.grants = self._grants(name)
        self.template: gcp.compute.InstanceTemplate | None = None
        self.group: gcp.compute.RegionInstanceGroupManager | None = None
        self.autoscaler: gcp.compute.RegionAutoscaler | None = None
        self.topic: gcp.pubsub.Topic | None = None
        self.slices: list[gcp.tpu.V2Vm] = []
        if args.settings.kind == "tpu":
            self.slices = [self._slice(name, index) for index in range(args.settings.min_nodes)]
        else:
            self._gpu(name)
        self.register_outputs(self.summary)

    @property
    def summary(self) -> dict[str, Any]:
        """What a stack exports about the pool: where its nodes are and how to give them work."""
        found: dict[str, Any] = {"serviceAccount": self.account.email}
        if self.group is not None and self.topic is not None:
            found |= {"instanceGroup": self.group.name, "jobTopic": self.topic.id}
        else:
            found["tpuNodes"] = [node.name for node in self.slices]
        return found

    def _account_id(self) -> str:
        """6 to 30 characters: the pool's name, and a digest of the stack so two
        stacks of one project never share an account."""
        digest = hashlib.sha256(self._args.baseline.namer.prefix.encode()).hexdigest()[:6]
        return f"pool-{self._args.pool[:18]}-{digest}"

    def _grants(self, name: str) -> list[pulumi.Resource]:
        args = self._args
        member = self.account.member
        baseline = args.baseline
        grants: list[pulumi.Resource] = [
            gcp.projects.IAMMember(
                f"{name}-{role.rsplit('.', 1)[1].lower()}",
                project=args.project.project_id,
                role=role,
                member=member,
                opts=baseline.child(self),
            )
            for role in NODE_PROJECT_ROLES
        ]
        grants += [
            gcp.storage.BucketIAMMember(
                f"{name}-read-{zone}",
                bucket=bucket,
                role=OBJECT_VIEWER,
                member=member,
                opts=baseline.child(self),
            )
            for zone, bucket in sorted(args.bucket_names.items())
        ]
        grants += [
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-pull-{key}",
                project=repository.project,
                location=repository.location,
                repository=repository.name,
                role=REPOSITORY_READER,
                member=member,
                opts=baseline.child(self),
            )
            for key, repository in sorted(args.repositories.items())
        ]
        return grants

    # --- GPUs -------------------------------------------------------------------

    def _gpu(self, name: str) -> None:
        args = self._args
        baseline, settings = args.baseline, args.settings
        agents = args.agents
        if agents is None:
            raise ValueError(f"GPU pool {args.pool} needs the stack's PoolAgents (agents=)")
        subscription = self._queue(name, agents)
        self.template = gcp.compute.InstanceTemplate(
            f"{name}-template",
            description=f"Nodes of accelerator pool {args.pool} of {baseline.namer.prefix}",
            machine_type=settings.type,
            guest_accelerators=_attached_gpus(settings),
            scheduling=_scheduling(settings.spot),
            reservation_affinity=_reservation(settings.capacity_reservation),
            shielded_instance_config={
                "enable_secure_boot": True,
                "enable_vtpm": True,
                "enable_integrity_monitoring": True,
            },
            disks=[self._boot_disk()],
            # No access config: no external IP.
            network_interfaces=[{"network": args.network_id, "subnetwork": args.subnet_id}],
            service_account={"email": self.account.email, "scopes": [CLOUD_PLATFORM]},
            metadata=NODE_METADATA,
            labels=labels(baseline, {"pool": args.pool}),
            # Templates are immutable: a change makes a new one (autonamed), which the
            # group takes up before the old one goes.
            opts=baseline.child(self, depends_on=[agents.disk_key, *self.grants]),
        )
        self.group = gcp.compute.RegionInstanceGroupManager(
            f"{name}-group",
            base_instance_name=self.node_name,
            region=baseline.region,
            description=f"Accelerator pool {args.pool} of {baseline.namer.prefix}",
            versions=[{"name": "nodes", "instance_template": self.template.self_link}],
            distribution_policy_zones=args.zones,
            # A new template reaches the nodes the autoscaler creates; running jobs
            # are not replaced under them.
            update_policy={"type": "OPPORTUNISTIC", "minimal_action": "REPLACE"},
            # No target size: the autoscaler owns it.
            opts=baseline.child(self),
        )
        self.autoscaler = gcp.compute.RegionAutoscaler(
            f"{name}-autoscaler",
            region=baseline.region,
            target=self.group.id,
            description=f"One node of pool {args.pool} per queued or running job",
            autoscaling_policy={
                "min_replicas": settings.min_nodes,
                "max_replicas": settings.max_nodes,
                "mode": "ON",
                "metrics": [
                    {
                        "name": JOBS_METRIC,
                        "filter": pulumi.Output.concat(
                            "resource.type = pubsub_subscription AND "
                            'resource.labels.subscription_id = "',
                            subscription.name,
                            '"',
                        ),
                        "single_instance_assignment": 1,
                    }
                ],
            },
            opts=baseline.child(self),
        )

    def _boot_disk(self) -> dict[str, Any]:
        settings = self._args.settings
        series = settings.type.rsplit("-", 1)[0]
        return {
            "boot": True,
            "auto_delete": True,
            "source_image": settings.image or GPU_IMAGE,
            "disk_size_gb": settings.disk_gb,
            "disk_type": "hyperdisk-balanced" if series in HYPERDISK_SERIES else "pd-balanced",
            "disk_encryption_key": {"kms_key_self_link": self._args.encryption.id},
            "labels": labels(self._args.baseline, {"pool": self._args.pool}),
        }

    def _queue(self, name: str, agents: PoolAgents) -> gcp.pubsub.Subscription:
        args = self._args
        baseline = args.baseline
        self.topic = gcp.pubsub.Topic(
            f"{name}-jobs",
            name=baseline.namer.name("pool", args.pool, "jobs", kind="gcp-id"),
            kms_key_name=args.encryption.id,
            message_storage_policy={"allowed_persistence_regions": [baseline.region]},
            labels=labels(baseline, {"pool": args.pool}),
            opts=baseline.child(self, depends_on=[agents.queue_key, *args.requires]),
        )
        subscription = gcp.pubsub.Subscription(
            f"{name}-workers",
            name=baseline.namer.name("pool", args.pool, "jobs", kind="gcp-id"),
            topic=self.topic.id,
            ack_deadline_seconds=ACK_DEADLINE_SECONDS,
            message_retention_duration=JOB_RETENTION,
            # Never expires: an idle pool's queue is not an abandoned one.
            expiration_policy={"ttl": ""},
            labels=labels(baseline, {"pool": args.pool}),
            opts=baseline.child(self),
        )
        self.grants.append(
            gcp.pubsub.SubscriptionIAMMember(
                f"{name}-take-jobs",
                subscription=subscription.name,
                role=SUBSCRIBER,
                member=self.account.member,
                opts=baseline.child(self),
            )
        )
        return subscription

    # --- TPUs -------------------------------------------------------------------

    def _slice(self, name: str, index: int) -> gcp.tpu.V2Vm:
        args = self._args
        baseline, settings = args.baseline, args.settings
        generation = settings.type.split("-", 1)[0]
        accelerator: dict[str, Any] = (
            {"accelerator_type": settings.type}
            if settings.topology is None
            else {
                "accelerator_config": {
                    "type": TPU_CONFIG_TYPES[generation],
                    "topology": settings.topology,
                }
            }
        )
        return gcp.tpu.V2Vm(
            f"{name}-slice-{index}",
            zone=args.zones.apply(lambda zones: zones[0]),
            description=f"Slice {index} of accelerator pool {args.pool} of {baseline.namer.prefix}",
            runtime_version=settings.image or TPU_RUNTIMES[generation],
            network_config={
                "network": args.network_id,
                "subnetwork": args.subnet_id,
                "enable_external_ips": False,
                "can_ip_forward": False,
            },
            scheduling_config={"spot": True} if settings.spot else None,
            service_account={"email": self.account.email, "scopes": [CLOUD_PLATFORM]},
            shielded_instance_config={"enable_secure_boot": True},
            metadata=NODE_METADATA,
            labels=labels(baseline, {"pool": args.pool}),
            # The old slice goes first: TPU quota rarely holds two of them.
            opts=baseline.child(self, depends_on=self.grants, delete_before_replace=True),
            **accelerator,
        )


def _attached_gpus(settings: AcceleratorPoolSettings) -> list[dict[str, Any]] | None:
    """N1 only (settings refuse `accelerator` elsewhere): accelerator-optimized types
    (a2, a3, a4, g2) come with their GPUs. Compute Engine names them in lowercase
    with hyphens (nvidia-tesla-t4) where Vertex AI writes NVIDIA_TESLA_T4."""
    if settings.accelerator is None:
        return None
    kind = settings.accelerator.type.lower().replace("_", "-")
    return [{"type": kind, "count": settings.accelerator.count}]


def _scheduling(spot: bool) -> dict[str, Any]:
    """GPUs cannot live-migrate: host maintenance stops the node. The API takes a
    termination action for Spot only, and a preemptible node never restarts itself."""
    if spot:
        return {
            "on_host_maintenance": "TERMINATE",
            "provisioning_model": "SPOT",
            "preemptible": True,
            "automatic_restart": False,
            "instance_termination_action": SPOT_TERMINATION,
        }
    return {
        "on_host_maintenance": "TERMINATE",
        "provisioning_model": "STANDARD",
        "preemptible": False,
        "automatic_restart": True,
    }


def _reservation(reservation: str | None) -> dict[str, Any] | None:
    if reservation is None:
        return None
    return {
        "type": "SPECIFIC_RESERVATION",
        "specific_reservation": {"key": RESERVATION_KEY, "values": [reservation]},
    }
