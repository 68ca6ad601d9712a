"""AWS's checks for the network controls: VPC flow logs, security groups that
admit nobody from anywhere, private paths to the platform's services, and
endpoint policies that never open a service to every principal."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_policies.model import Resource, as_list, by_type
from mlops_policies.rules.aws_storage import statements

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ANYWHERE = ("0.0.0.0/0", "::/0")
# Services a workload in the VPC needs without a route to the internet:
# images (ECR API, registry, S3 for layers), keys, credentials and logs.
PRIVATE_SERVICES = ("ecr.api", "ecr.dkr", "kms", "sts", "logs")

Findings = Iterator[tuple[str, str]]


def _for_vpc(resources: Sequence[Resource], vpc: Resource, kind: str) -> list[Resource]:
    return [r for r in by_type(resources, kind) if r.depends_on("vpcId", vpc)]


# network-flow-logs


def vpc_flow_logs(resources: Sequence[Resource]) -> Findings:
    for vpc in by_type(resources, VPC):
        logs = [
            log
            for log in _for_vpc(resources, vpc, FLOW_LOG)
            if log.props.get("trafficType") == "ALL" and log.props.get("logDestination")
        ]
        if not logs:
            yield vpc.urn, "VPC has no flow log recording ALL traffic to a destination"


# network-no-open-ingress


def _open(blocks: Any) -> list[str]:
    return [str(v) for v in as_list(blocks) if v in ANYWHERE]


def _inline_rules(resource: Resource) -> list[Mapping[str, Any]]:
    return [r for r in resource.props.get("ingress") or [] if isinstance(r, Mapping)]


def open_ingress(resource: Resource) -> Iterator[str]:
    props = resource.props
    found: list[str] = []
    if resource.type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        for rule in _inline_rules(resource):
            found += _open(rule.get("cidrBlocks")) + _open(rule.get("ipv6CidrBlocks"))
    elif resource.type == INGRESS_RULE:
        found = _open(props.get("cidrIpv4")) + _open(props.get("cidrIpv6"))
    elif resource.type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        found = _open(props.get("cidrBlocks")) + _open(props.get("ipv6CidrBlocks"))
    if found:
        yield f"security group admits ingress from {', '.join(sorted(set(found)))}"


# network-private-access


def _service(endpoint: Resource) -> str:
    """`ecr.api` from `com.amazonaws.<region>.ecr.api`."""
    return ".".join(str(endpoint.props.get("serviceName", "")).split(".")[3:])


def vpc_private_access(resources: Sequence[Resource]) -> Findings:
    for vpc in by_type(resources, VPC):
        endpoints = _for_vpc(resources, vpc, VPC_ENDPOINT)
        gateways = {_service(e) for e in endpoints if e.props.get("vpcEndpointType") == "Gateway"}
        private_dns = {
            _service(e)
            for e in endpoints
            if e.props.get("vpcEndpointType") == "Interface"
            and e.props.get("privateDnsEnabled") is True
        }
        if "s3" not in gateways:
            yield vpc.urn, "VPC reaches S3 only through the internet (no S3 gateway endpoint)"
        missing = [s for s in PRIVATE_SERVICES if s not in private_dns]
        if missing:
            yield (
                vpc.urn,
                f"VPC has no interface endpoint with private DNS for {', '.join(missing)}",
            )


# iam-least-privilege


def endpoint_policy(resource: Resource) -> Iterator[str]:
    """An endpoint policy may name every principal ("*": some callers, such as the
    URLs ECR signs for image layers, are not the account's), but only if the
    statement is narrowed by a condition or to named resources."""
    if resource.type != VPC_ENDPOINT:
        return
    for index, statement in enumerate(statements(resource.props.get("policy"))):
        if statement.get("Effect") != "Allow" or statement.get("Principal") not in (
            "*",
            {"AWS": "*"},
        ):
            continue
        label = statement.get("Sid") or f"statement {index}"
        if not statement.get("Condition") and statement.get("Resource") in (None, "*", ["*"]):
            yield f"{label} opens the endpoint to every principal and every resource"


RESOURCE_CHECKS = {
    "network-no-open-ingress": (open_ingress,),
    "iam-least-privilege": (endpoint_policy,),
}
STACK_CHECKS = {
    "network-flow-logs": (vpc_flow_logs,),
    "network-private-access": (vpc_private_access,),
}
