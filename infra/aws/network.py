"""`mlops:aws:Network`: the stack's VPC, private by construction.

Nothing in it has a public address: workloads run in one private subnet per
zone and reach S3 through a gateway endpoint and every other service the
platform uses through interface endpoints with private DNS. Only `egress: nat`
adds public subnets, and those hold nothing but the NAT gateways.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.context import AwsAccount, https_rule, policy_document
from infra.aws.identity import service_role
from infra.aws.vpc_endpoints import INTERFACE_ENDPOINTS, EndpointScope, s3_gateway_policy
from infra.common import Baseline, EncryptionKey, PrivateNetwork
from infra.settings import NetworkSettings

FLOW_LOG_ACTIONS = sorted(
    [
        "logs:CreateLogStream",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]
)
# Seconds per flow log record: the finest AWS offers, so short connections show.
FLOW_LOG_INTERVAL = 60


@dataclass(frozen=True)
class NetworkArgs:
    baseline: Baseline
    account: AwsAccount
    settings: NetworkSettings
    encryption: EncryptionKey
    # What the endpoint policies let this network's principals reach.
    scope: EndpointScope
    # One NAT gateway per zone (prod) or one for the whole network.
    nat_per_zone: bool


def _pick(names: Sequence[str], count: int, region: str) -> list[str]:
    if len(names) < count:
        raise ValueError(
            f"{region} offers {len(names)} availability zones; network.zones asks for {count}"
        )
    return list(names[:count])


class Network(pulumi.ComponentResource):
    """A VPC with DNS support and hostnames; one private subnet and route table
    per zone, no public IP on launch; the default security group stripped of
    every rule; flow logs of all traffic to a log group encrypted with the
    platform key (retained `flowLogs.retentionDays`); an S3 gateway endpoint and
    interface endpoints with private DNS, each with the tightest endpoint policy
    its service accepts, behind one security group that admits HTTPS from the
    VPC only. `egress: nat` adds public subnets holding only NAT gateways. The
    flow log group is protected and retained in prod."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:Network", name, {}, opts)
        self._args = args
        settings, baseline = args.settings, args.baseline
        self._ranges = settings.subnets("aws")
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=settings.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=self._tags(name),
            opts=baseline.child(self),
        )
        # Declared with no rules, the default group is emptied: nothing that
        # lands in it by accident can talk to anything.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=self._tags(f"{name}-default"),
            opts=baseline.child(self),
        )
        available = aws.get_availability_zones_output(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
        )
        self.zone_names: pulumi.Output[list[str]] = available.names.apply(
            lambda names: _pick(names, settings.zones, baseline.region)
        )
        self.private_subnets = [self._subnet(name, "private", i) for i in range(settings.zones)]
        self.private_route_tables = [
            self._route_table(name, "private", i, subnet)
            for i, subnet in enumerate(self.private_subnets)
        ]
        self.flow_logs = self._flow_logs(name)
        self.endpoint_security_group = self._endpoint_security_group(name)
        self.s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{baseline.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in self.private_route_tables],
            policy=s3_gateway_policy(args.scope, args.account),
            tags=self._tags(f"{name}-s3"),
            opts=baseline.child(self),
        )
        self.interface_endpoints = {
            service: self._interface_endpoint(name, service) for service in INTERFACE_ENDPOINTS
        }
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        if settings.egress == "nat":
            self.nat_gateways = self._nat(name)
        self.subnet_ids = [subnet.id for subnet in self.private_subnets]
        self.network = PrivateNetwork(
            id=self.vpc.id, subnet_ids=self.subnet_ids, zones=self.zone_names, resource=self.vpc
        )
        self.register_outputs(
            {
                "vpcId": self.vpc.id,
                "privateSubnetIds": self.subnet_ids,
                "endpointSecurityGroupId": self.endpoint_security_group.id,
                "zones": self.zone_names,
            }
        )

    def _tags(self, name: str, **extra: str) -> dict[str, str]:
        return {**self._args.baseline.tags, "Name": name, **extra}

    def _subnet(self, name: str, tier: str, index: int) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            f"{name}-{tier}-{index}",
            vpc_id=self.vpc.id,
            cidr_block=self._ranges[f"{tier}-{index}"],
            availability_zone=self.zone_names.apply(lambda zones: zones[index]),
            map_public_ip_on_launch=False,
            tags=self._tags(f"{name}-{tier}-{index}", tier=tier),
            opts=self._args.baseline.child(self),
        )

    def _route_table(
        self, name: str, tier: str, index: int, subnet: aws.ec2.Subnet
    ) -> aws.ec2.RouteTable:
        table = aws.ec2.RouteTable(
            f"{name}-{tier}-{index}",
            vpc_id=self.vpc.id,
            tags=self._tags(f"{name}-{tier}-{index}", tier=tier),
            opts=self._args.baseline.child(self),
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-{tier}-{index}",
            subnet_id=subnet.id,
            route_table_id=table.id,
            opts=self._args.baseline.child(self),
        )
        return table

    def _flow_logs(self, name: str) -> aws.cloudwatch.LogGroup:
        args = self._args
        baseline, account = args.baseline, args.account
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            kms_key_id=args.encryption.id,
            retention_in_days=args.settings.flow_logs.retention_days,
            tags={**baseline.tags, "purpose": "flow-logs"},
            opts=baseline.stateful(self),
        )
        role = service_role(
            self,
            f"{name}-flow-logs",
            description="Delivers the VPC's flow logs to its log group",
            trust=policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    # Confused-deputy guard: only this account's flow logs.
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account.account_id},
                        "ArnLike": {"aws:SourceArn": account.arn("ec2", "vpc-flow-log/*")},
                    },
                }
            ),
            policy=(
                f"{name}-flow-logs",
                {
                    "Sid": "WriteFlowLogs",
                    "Effect": "Allow",
                    "Action": FLOW_LOG_ACTIONS,
                    "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")],
                },
            ),
            baseline=baseline,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=FLOW_LOG_INTERVAL,
            tags=self._tags(f"{name}-flow-logs"),
            opts=baseline.child(self),
        )
        return group

    def _endpoint_security_group(self, name: str) -> aws.ec2.SecurityGroup:
        baseline = self._args.baseline
        group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="Interface endpoints: HTTPS from inside the VPC only",
            # No inline rules: the ingress rule below is a resource of its own
            # (mixing both makes each overwrite the other). The provider removes
            # AWS's default allow-all egress: endpoints never open connections.
            tags=self._tags(f"{name}-endpoints"),
            opts=baseline.child(self),
        )
        https_rule(
            aws.vpc.SecurityGroupIngressRule,
            f"{name}-endpoints-https",
            group.id,
            "HTTPS from the VPC",
            baseline.child(self),
            cidr_ipv4=self._args.settings.cidr,
            tags=self._tags(f"{name}-endpoints-https"),
        )
        return group

    def _subnets_offering(self, service_name: str) -> pulumi.Output[list[str]]:
        """The private subnets in zones that offer the service: an interface
        endpoint cannot be placed in a zone its service does not run in."""
        offered = aws.ec2.get_vpc_endpoint_service_output(service_name=service_name)
        ids = [subnet.id for subnet in self.private_subnets]

        def pick(values: list[Any]) -> list[str]:
            zones, names, *subnet_ids = values
            return [sid for zone, sid in zip(names, subnet_ids, strict=True) if zone in zones]

        return pulumi.Output.all(offered.availability_zones, self.zone_names, *ids).apply(pick)

    def _interface_endpoint(self, name: str, service: str) -> aws.ec2.VpcEndpoint:
        args = self._args
        service_name = f"com.amazonaws.{args.baseline.region}.{service}"
        policy = INTERFACE_ENDPOINTS[service](args.scope, args.account)
        return aws.ec2.VpcEndpoint(
            f"{name}-{service.replace('.', '-')}",
            vpc_id=self.vpc.id,
            service_name=service_name,
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=self._subnets_offering(service_name),
            security_group_ids=[self.endpoint_security_group.id],
            **({"policy": policy} if policy is not None else {}),
            tags=self._tags(f"{name}-{service}"),
            opts=args.baseline.child(self),
        )

    def _nat(self, name: str) -> list[aws.ec2.NatGateway]:
        args = self._args
        baseline, zones = args.baseline, args.settings.zones
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw",
            vpc_id=self.vpc.id,
            tags=self._tags(f"{name}-igw"),
            opts=baseline.child(self),
        )
        public = [self._subnet(name, "public", i) for i in range(zones)]
        nats: list[aws.ec2.NatGateway] = []
        for index, subnet in enumerate(public):
            table = self._route_table(name, "public", index, subnet)
            aws.ec2.Route(
                f"{name}-public-{index}-internet",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=gateway.id,
                opts=baseline.child(self),
            )
            if index == 0 or args.nat_per_zone:
                nats.append(self._nat_gateway(f"{name}-nat-{index}", subnet, gateway))
        for index, table in enumerate(self.private_route_tables):
            aws.ec2.Route(
                f"{name}-private-{index}-nat",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[index if args.nat_per_zone else 0].id,
                opts=baseline.child(self),
            )
        return nats

    def _nat_gateway(
        self, name: str, subnet: aws.ec2.Subnet, gateway: aws.ec2.InternetGateway
    ) -> aws.ec2.NatGateway:
        baseline = self._args.baseline
        address = aws.ec2.Eip(name, domain="vpc", tags=self._tags(name), opts=baseline.child(self))
        return aws.ec2.NatGateway(
            name,
            subnet_id=subnet.id,
            allocation_id=address.allocation_id,
            connectivity_type="public",
            tags=self._tags(name),
            opts=baseline.child(self, depends_on=[gateway]),
        )


def network_outputs(network: Network) -> Mapping[str, Any]:
    return {
        "vpcId": network.vpc.id,
        "privateSubnetIds": network.subnet_ids,
        "endpointSecurityGroupId": network.endpoint_security_group.id,
        "networkZones": network.zone_names,
        "flowLogGroup": network.flow_logs.name,
    }
