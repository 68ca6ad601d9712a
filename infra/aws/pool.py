"""`mlops:aws:AcceleratorPool`: an Auto Scaling group of GPU, Inferentia or
Trainium nodes in the stack's private subnets, idle at `minNodes` (0 by default).

Nodes boot AWS's current Deep Learning AMI for their kind, resolved by EC2 from a
public SSM parameter at each launch (`resolve:ssm:`), so nothing is looked up
while the program is built and a pool that scales from zero starts on the newest
image. They are reached through Session Manager only: no public address, no SSH
key, no inbound port but the pool's own nodes (EFA needs all traffic among
them), outbound HTTPS only to the VPC's endpoints and S3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.context import AwsAccount, https_rule, policy_document
from infra.aws.registry import PULL_ACTIONS
from infra.catalogs import Published
from infra.common import Baseline, EncryptionKey
from infra.settings import AcceleratorPoolSettings

# AWS's public parameters naming the current Deep Learning AMI for each kind
# (Ubuntu 24.04: Neuron ended Ubuntu 22.04 DLAMIs). The GPU parameter follows the
# DLAMI guide's rule, /aws/service/deeplearning/ami/<arch>/<AMI name without
# "Deep Learning" and "AMI">/latest/ami-id, for the "Deep Learning Base OSS Nvidia
# Driver GPU AMI (Ubuntu 24.04)": driver, CUDA, Docker, the NVIDIA container
# toolkit and EFA. The Neuron one is the multi-framework DLAMI's (all Inf2 and
# Trn types), from the Neuron DLAMI guide's SSM parameter table.
IMAGE_SOURCES = (
    Published("docs.aws.amazon.com/dlami/latest/devguide/find-dlami-id.html", "2026-11-28"),
    Published(
        "awsdocs-neuron.readthedocs-hosted.com/en/latest/deploy/environments/dlami.html",
        "2026-11-28",
    ),
)
GPU_IMAGE = (
    "/aws/service/deeplearning/ami/{arch}/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
)
NEURON_IMAGE = "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
# GPU families on Graviton, which boot the arm64 image.
ARM_FAMILIES = frozenset({"g5g"})
# Both default images are Ubuntu, whose root device is /dev/sda1: the mapping
# below re-specifies the root volume (size, type, key) instead of adding one.
ROOT_DEVICE = "/dev/sda1"

# EFA interfaces per instance type, one per network card (what
# DescribeInstanceTypes reports as EfaInfo.MaximumEfaInterfaces): trn1 and trn1n
# from the Neuron guide ("trn1.32xlarge has 8 EFA devices, trn1n.32xlarge has
# 16"), the P types as EFA launch tooling lists them, trn2 still to confirm with
# `aws ec2 describe-instance-types`. The layout is the EC2 guide's (below). A
# type not listed gets a plain interface and no placement group; adding one is a line.
EFA_SOURCE = Published(
    "docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html", "2026-11-28"
)
EFA_INTERFACES: Mapping[str, int] = {
    "p4d.24xlarge": 4,
    "p4de.24xlarge": 4,
    "p5.48xlarge": 32,
    "p5e.48xlarge": 32,
    "p5en.48xlarge": 16,
    "trn1.32xlarge": 8,
    "trn1n.32xlarge": 16,
    "trn2.48xlarge": 16,
}

# IMDSv2 only, with one hop beyond the node: workloads run in containers on the
# Docker bridge (the GPU DLAMI ships Docker and the NVIDIA container toolkit), one
# hop further from the metadata service, and need the node role's credentials to
# pull images and read the lake. With a hop limit of 1 the token's response
# never reaches them; 2 reaches the bridge and no further.
METADATA_HOP_LIMIT = 2
# EC2 health checks only (no load balancer); seconds a new node gets to boot.
HEALTH_CHECK_GRACE_SECONDS = 300

# Session Manager, as AmazonSSMManagedInstanceCore grants it but spelled out (no
# managed policy, no wildcard action): the agent registers the node and opens
# its channels. None of these actions takes a resource ARN.
SESSION_ACTIONS = sorted(
    [
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        # Agents before 3.3.40.0 poll for commands through ec2messages.
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
    ]
)
# Reading the lake decrypts its objects (SSE-KMS) through S3; images are
# decrypted by ECR. Nodes write nothing under the key.
KEY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey"]
KEY_SERVICES = ("s3", "ecr")


@dataclass(frozen=True)
class AcceleratorPoolArgs:
    baseline: Baseline
    account: AwsAccount
    pool: str
    settings: AcceleratorPoolSettings
    vpc_id: pulumi.Input[str]
    # The stack's private subnets, one per zone.
    subnet_ids: Sequence[pulumi.Input[str]]
    vpc_cidr: str
    encryption: EncryptionKey
    # Lake zone -> bucket ARN.
    bucket_arns: Mapping[str, pulumi.Output[str]]
    repository_arns: Sequence[pulumi.Output[str]]


def image_parameter(settings: AcceleratorPoolSettings) -> str:
    """The SSM parameter EC2 resolves to the nodes' AMI: the settings' own, or the kind's."""
    if settings.image is not None:
        return settings.image
    if settings.kind == "gpu":
        arch = "arm64" if settings.type.split(".")[0] in ARM_FAMILIES else "x86_64"
        return GPU_IMAGE.format(arch=arch)
    return NEURON_IMAGE


def efa_interfaces(instance_type: str) -> int:
    return EFA_INTERFACES.get(instance_type, 0)


class AcceleratorPool(pulumi.ComponentResource):
    """An Auto Scaling group between `minNodes` and `maxNodes` (desired capacity
    left to scaling), on demand or, with `spot`, all spot over `type` and
    `alternativeTypes` (capacity-optimized), in the stack's private subnets.
    Its launch template boots the kind's DLAMI (or `image`) with IMDSv2 only, a
    gp3 root volume of `diskGb` encrypted with the platform key, no public IP,
    the pool's security group and instance profile; EFA types get one EFA per
    network card and a cluster placement group in one zone; a
    `capacityReservation` is targeted. The node role may register with Session
    Manager, pull the stack's images, read the lake and decrypt with the
    platform key through S3 and ECR, nothing more."""

    def __init__(
        self, name: str, args: AcceleratorPoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:AcceleratorPool", name, {}, opts)
        self._args = args
        self._efa = efa_interfaces(args.settings.type)
        self.security_group = self._security_group(name)
        self.role = self._role(name)
        self.instance_profile = aws.iam.InstanceProfile(
            f"{name}-node",
            role=self.role.name,
            tags=self._tags(),
            opts=args.baseline.child(self),
        )
        self.placement_group: aws.ec2.PlacementGroup | None = None
        if self._efa:
            # EFA's OS-bypass traffic wants the nodes close: one cluster group.
            self.placement_group = aws.ec2.PlacementGroup(
                f"{name}-nodes",
                strategy="cluster",
                tags=self._tags(),
                opts=args.baseline.child(self),
            )
        self.launch_template = self._launch_template(name)
        self.group = self._group(name)
        self.register_outputs(
            {
                "groupName": self.group.name,
                "launchTemplateId": self.launch_template.id,
                "roleArn": self.role.arn,
            }
        )

    def _tags(self, **extra: str) -> dict[str, str]:
        return {**self._args.baseline.tags, "pool": self._args.pool, **extra}

    def _security_group(self, name: str) -> aws.ec2.SecurityGroup:
        args = self._args
        baseline = args.baseline
        group = aws.ec2.SecurityGroup(
            f"{name}-nodes",
            vpc_id=args.vpc_id,
            description=(
                f"Accelerator pool {args.pool}: traffic among its nodes, HTTPS to the "
                "VPC's endpoints and S3"
            ),
            # No inline rules: the rules below are resources of their own (mixing
            # both makes each overwrite the other). The provider removes AWS's
            # default allow-all egress.
            tags=self._tags(Name=f"{name}-nodes"),
            opts=baseline.child(self),
        )
        # EFA needs every protocol to and from the group itself; without EFA the
        # same rules carry multi-node jobs (NCCL or torch.distributed over TCP).
        peers = {"ip_protocol": "-1", "referenced_security_group_id": group.id}
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-nodes-in",
            security_group_id=group.id,
            description="All traffic from the pool's own nodes",
            opts=baseline.child(self),
            **peers,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-nodes-out",
            security_group_id=group.id,
            description="All traffic to the pool's own nodes",
            opts=baseline.child(self),
            **peers,
        )
        egress = aws.vpc.SecurityGroupEgressRule
        https_rule(
            egress,
            f"{name}-endpoints",
            group.id,
            "HTTPS to the VPC's interface endpoints",
            baseline.child(self),
            cidr_ipv4=args.vpc_cidr,
        )
        s3 = aws.ec2.get_prefix_list_output(name=f"com.amazonaws.{baseline.region}.s3")
        https_rule(
            egress,
            f"{name}-s3",
            group.id,
            "HTTPS to S3 through the gateway endpoint",
            baseline.child(self),
            prefix_list_id=s3.id,
        )
        return group

    def _role(self, name: str) -> aws.iam.Role:
        args = self._args
        role = aws.iam.Role(
            f"{name}-node",
            description=f"Nodes of accelerator pool {args.pool}",
            assume_role_policy=policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
            max_session_duration=3600,
            tags=self._tags(),
            opts=args.baseline.child(self),
        )
        aws.iam.RolePolicy(
            f"{name}-node",
            role=role.id,
            policy=policy_document(*self._statements()),
            opts=args.baseline.child(self),
        )
        return role

    def _statements(self) -> list[dict[str, Any]]:
        args = self._args
        buckets = [args.bucket_arns[zone] for zone in sorted(args.bucket_arns)]
        statements: list[dict[str, Any]] = [
            {
                "Sid": "SessionManager",
                "Effect": "Allow",
                "Action": SESSION_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "EcrLogin",
                "Effect": "Allow",
                # ECR grants login tokens only on "*".
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
        ]
        if args.repository_arns:
            statements.append(
                {
                    "Sid": "PullStackImages",
                    "Effect": "Allow",
                    "Action": PULL_ACTIONS,
                    "Resource": list(args.repository_arns),
                }
            )
        if buckets:
            statements += [
                {
                    "Sid": "ListLake",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": buckets,
                },
                {
                    "Sid": "ReadLake",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": [pulumi.Output.concat(arn, "/*") for arn in buckets],
                },
            ]
        statements.append(
            {
                "Sid": "DecryptWithPlatformKey",
                "Effect": "Allow",
                "Action": KEY_ACTIONS,
                "Resource": args.encryption.id,
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [args.account.service_host(s) for s in KEY_SERVICES]
                    }
                },
            }
        )
        return statements

    def _interfaces(self) -> list[dict[str, Any]]:
        """One interface on card 0 (an EFA on EFA types), then one EFA-only
        interface on each further card: EC2's layout for EFA on multi-card types
        (the primary interface carries the node's IP traffic; EFA-only ones take
        no IP address from the subnet)."""
        groups = [self.security_group.id]
        primary: dict[str, Any] = {
            "device_index": 0,
            "network_card_index": 0,
            "delete_on_termination": "true",
            "security_groups": groups,
        }
        if self._efa:
            primary["interface_type"] = "efa"
        if self._efa <= 1:
            # EC2 refuses associatePublicIpAddress (even false) on a launch with
            # several interfaces, and never gives such a launch a public IP.
            primary["associate_public_ip_address"] = "false"
            return [primary]
        return [primary] + [
            {
                "device_index": 0,
                "network_card_index": card,
                "interface_type": "efa-only",
                "delete_on_termination": "true",
                "security_groups": groups,
            }
            for card in range(1, self._efa)
        ]

    def _launch_template(self, name: str) -> aws.ec2.LaunchTemplate:
        args = self._args
        settings = args.settings
        tags = self._tags(Name=name)
        extra: dict[str, Any] = {}
        if settings.capacity_reservation is not None:
            extra["capacity_reservation_specification"] = {
                "capacity_reservation_target": {
                    "capacity_reservation_id": settings.capacity_reservation
                }
            }
        return aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            description=f"Accelerator pool {args.pool} of {args.baseline.namer.prefix}",
            # EC2 resolves the parameter at every launch (public parameters and
            # the account's own of data type aws:ec2:image).
            image_id=f"resolve:ssm:{image_parameter(settings)}",
            instance_type=settings.type,
            iam_instance_profile={"arn": self.instance_profile.arn},
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": METADATA_HOP_LIMIT,
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=[
                {
                    "device_name": ROOT_DEVICE,
                    "ebs": {
                        "volume_type": "gp3",
                        "volume_size": settings.disk_gb,
                        "encrypted": "true",
                        "kms_key_id": args.encryption.id,
                        "delete_on_termination": "true",
                    },
                }
            ],
            network_interfaces=self._interfaces(),
            tag_specifications=[
                {"resource_type": kind, "tags": tags}
                for kind in ("instance", "volume", "network-interface")
            ],
            # Consoles and `$Default` launches see the current version too.
            update_default_version=True,
            tags=tags,
            opts=args.baseline.child(self),
            **extra,
        )

    def _group(self, name: str) -> aws.autoscaling.Group:
        args = self._args
        settings = args.settings
        # A numbered version, not `$Latest`: a template change then shows on the
        # group in the preview, and instances launch from the version deployed.
        template = {
            "id": self.launch_template.id,
            "version": self.launch_template.latest_version.apply(str),
        }
        choice: dict[str, Any] = {"launch_template": template}
        if settings.spot:
            types = [settings.type, *settings.alternative_types]
            choice = {
                "mixed_instances_policy": {
                    "instances_distribution": {
                        "on_demand_base_capacity": 0,
                        "on_demand_percentage_above_base_capacity": 0,
                        # Deepest spot pools first: an interruption costs a job
                        # hours; a cheaper but thinner pool is not worth it.
                        "spot_allocation_strategy": "capacity-optimized",
                    },
                    "launch_template": {
                        "launch_template_specification": {
                            "launch_template_id": template["id"],
                            "version": template["version"],
                        },
                        "overrides": [{"instance_type": t} for t in types],
                    },
                }
            }
        # A cluster placement group lives in one zone, and an Auto Scaling group
        # with one may not span several: EFA pools take the first private subnet.
        subnets = list(args.subnet_ids[:1] if self.placement_group else args.subnet_ids)
        tags = self._tags(Name=name)
        return aws.autoscaling.Group(
            f"{name}-nodes",
            min_size=settings.min_nodes,
            max_size=settings.max_nodes,
            # No desired capacity: whatever scales the pool owns it, deploys don't reset it.
            vpc_zone_identifiers=subnets,
            placement_group=self.placement_group.id if self.placement_group else None,
            health_check_type="EC2",
            health_check_grace_period=HEALTH_CHECK_GRACE_SECONDS,
            # Don't hold the deployment until accelerators are found: capacity
            # (spot above all) may take a while, and scaling retries on its own.
            wait_for_capacity_timeout="0",
            tags=[
                {"key": key, "value": value, "propagate_at_launch": True}
                for key, value in sorted(tags.items())
            ],
            opts=args.baseline.child(self),
            **choice,
        )
