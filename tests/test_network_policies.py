"""The network rules on every cloud: one resource that passes and one that fails
per check, the shipped stacks clean, and a broken plan caught through CrossGuard."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from conftest import planned
from mlops_policies.exemptions import exemption_for
from mlops_policies.model import Resource
from mlops_policies.rules import RULES, aws_network, azure, gcp

from tools.policy_run import evaluate

VPC_URN = "urn:pulumi:t::mlops::aws:ec2/vpc:Vpc::vpc"
VNET_URN = "urn:pulumi:t::mlops::azure-native:network:VirtualNetwork::vnet"


def res(type_: str, props: dict[str, Any], deps: dict[str, list[str]] | None = None) -> Resource:
    urn = f"urn:pulumi:t::mlops::{type_}::{type_.rsplit(':', 1)[-1].lower()}"
    return Resource(type_, urn, "r", props, False, deps or {})


def found(check, *resources: Resource) -> list[str]:
    return [message for _urn, message in check(list(resources))]


def messages(check, resource: Resource) -> list[str]:
    return list(check(resource))


# AWS

VPC = Resource(aws_network.VPC, VPC_URN, "vpc", {"cidrBlock": "10.20.0.0/16"})


def flow_log(**props: Any) -> Resource:
    defaults = {"trafficType": "ALL", "logDestination": "arn:aws:logs:::log-group:g"}
    return res(aws_network.FLOW_LOG, {**defaults, **props}, {"vpcId": [VPC_URN]})


def test_aws_vpc_flow_logs() -> None:
    assert found(aws_network.vpc_flow_logs, VPC, flow_log()) == []
    expected = ["VPC has no flow log recording ALL traffic to a destination"]
    assert found(aws_network.vpc_flow_logs, VPC) == expected
    assert found(aws_network.vpc_flow_logs, VPC, flow_log(trafficType="REJECT")) == expected
    # A flow log of another VPC does not count.
    other = res(aws_network.FLOW_LOG, {"trafficType": "ALL", "logDestination": "x"})
    assert found(aws_network.vpc_flow_logs, VPC, other) == expected


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        (aws_network.SECURITY_GROUP, {"ingress": [{"cidrBlocks": ["0.0.0.0/0"], "fromPort": 22}]}),
        (aws_network.DEFAULT_SECURITY_GROUP, {"ingress": [{"ipv6CidrBlocks": ["::/0"]}]}),
        (aws_network.INGRESS_RULE, {"cidrIpv4": "0.0.0.0/0", "fromPort": 443}),
        (aws_network.SECURITY_GROUP_RULE, {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"]}),
    ],
)
def test_aws_open_ingress_fails(type_: str, props: dict[str, Any]) -> None:
    assert len(messages(aws_network.open_ingress, res(type_, props))) == 1


def test_aws_narrow_ingress_and_open_egress_pass() -> None:
    narrow = res(aws_network.INGRESS_RULE, {"cidrIpv4": "10.20.0.0/16", "fromPort": 443})
    egress = res(aws_network.SECURITY_GROUP_RULE, {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]})
    for resource in (narrow, egress, res(aws_network.SECURITY_GROUP, {"egress": []})):
        assert messages(aws_network.open_ingress, resource) == []
    assert messages(
        aws_network.open_ingress, res(aws_network.INGRESS_RULE, {"cidrIpv4": "0.0.0.0/0"})
    ) == ["security group admits ingress from 0.0.0.0/0"]


def endpoint(service: str, kind: str = "Interface", **props: Any) -> Resource:
    inputs = {
        "serviceName": f"com.amazonaws.eu-west-1.{service}",
        "vpcEndpointType": kind,
        **({"privateDnsEnabled": True} if kind == "Interface" else {}),
        **props,
    }
    return res(aws_network.VPC_ENDPOINT, inputs, {"vpcId": [VPC_URN]})


PRIVATE = [endpoint("s3", "Gateway")] + [endpoint(s) for s in aws_network.PRIVATE_SERVICES]


def test_aws_vpc_private_access() -> None:
    assert found(aws_network.vpc_private_access, VPC, *PRIVATE) == []
    assert found(aws_network.vpc_private_access, VPC, *PRIVATE[1:]) == [
        "VPC reaches S3 only through the internet (no S3 gateway endpoint)"
    ]
    no_dns = [*PRIVATE[:-1], endpoint("logs", privateDnsEnabled=False)]
    assert found(aws_network.vpc_private_access, VPC, *no_dns) == [
        "VPC has no interface endpoint with private DNS for logs"
    ]


def _endpoint_policy(statement: dict[str, Any]) -> Resource:
    return endpoint("kms", policy=json.dumps({"Statement": [statement]}))


def test_aws_endpoint_policy_never_opens_a_service_to_everyone() -> None:
    open_all = {"Sid": "All", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
    assert messages(aws_network.endpoint_policy, _endpoint_policy(open_all)) == [
        "All opens the endpoint to every principal and every resource"
    ]
    account = {**open_all, "Condition": {"StringEquals": {"aws:PrincipalAccount": "1"}}}
    bucket = {**open_all, "Resource": ["arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*"]}
    for statement in (account, bucket):
        assert messages(aws_network.endpoint_policy, _endpoint_policy(statement)) == []


# GCP


def subnet(**props: Any) -> Resource:
    defaults = {"logConfig": {"flowSampling": 1}, "privateIpGoogleAccess": True}
    return res(gcp.SUBNETWORK, {**defaults, **props})


def test_gcp_subnet_flow_logs() -> None:
    assert messages(gcp.subnet_flow_logs, subnet()) == []
    assert messages(gcp.subnet_flow_logs, subnet(logConfig=None)) == [
        "subnet records no flow logs (logConfig)"
    ]
    assert messages(gcp.subnet_flow_logs, subnet(logConfig={"flowSampling": 0})) == [
        "subnet flow logs sample nothing (logConfig.flowSampling is 0)"
    ]


def firewall(**props: Any) -> Resource:
    return res(gcp.FIREWALL, props)


def test_gcp_firewall_open_ingress() -> None:
    ssh = [{"protocol": "tcp", "ports": ["22"]}]
    assert messages(
        gcp.firewall_open_ingress, firewall(allows=ssh, sourceRanges=["0.0.0.0/0"])
    ) == ["firewall rule allows ingress from 0.0.0.0/0"]
    passing = (
        firewall(allows=ssh, sourceRanges=["35.235.240.0/20"]),
        firewall(denies=[{"protocol": "all"}], sourceRanges=["0.0.0.0/0"]),
        firewall(allows=ssh, sourceRanges=["0.0.0.0/0"], disabled=True),
        firewall(allows=ssh, direction="EGRESS", destinationRanges=["0.0.0.0/0"]),
    )
    for rule in passing:
        assert messages(gcp.firewall_open_ingress, rule) == []


def test_gcp_subnet_private_access() -> None:
    assert messages(gcp.subnet_private_access, subnet()) == []
    assert messages(gcp.subnet_private_access, subnet(privateIpGoogleAccess=False)) == [
        "subnet reaches Google APIs only through external addresses (privateIpGoogleAccess)"
    ]


# Azure

VNET = Resource(azure.VIRTUAL_NETWORK, VNET_URN, "vnet", {})


def test_azure_vnet_flow_logs() -> None:
    log = res(azure.FLOW_LOG, {"enabled": True}, {"targetResourceId": [VNET_URN]})
    assert found(azure.vnet_flow_logs, VNET, log) == []
    disabled = res(azure.FLOW_LOG, {"enabled": False}, {"targetResourceId": [VNET_URN]})
    expected = ["virtual network has no enabled flow log (targetResourceId)"]
    assert found(azure.vnet_flow_logs, VNET, disabled) == expected
    assert found(azure.vnet_flow_logs, VNET) == expected


def rule(**props: Any) -> dict[str, Any]:
    return {"name": "r", "direction": "Inbound", "access": "Allow", **props}


@pytest.mark.parametrize("source", ["*", "Internet", "0.0.0.0/0", "any"])
def test_azure_nsg_rule_from_anywhere_fails(source: str) -> None:
    inline = res(azure.NSG, {"securityRules": [rule(sourceAddressPrefix=source)]})
    standalone = res(azure.SECURITY_RULE, rule(sourceAddressPrefixes=["10.0.0.0/8", source]))
    for resource in (inline, standalone):
        assert messages(azure.nsg_open_ingress, resource) == [
            "security rule 'r' allows inbound traffic from anywhere"
        ]


def test_azure_nsg_deny_and_narrow_rules_pass() -> None:
    rules = [
        rule(access="Deny", sourceAddressPrefix="Internet"),
        rule(sourceAddressPrefix="VirtualNetwork"),
        rule(direction="Outbound", sourceAddressPrefix="*"),
    ]
    assert messages(azure.nsg_open_ingress, res(azure.NSG, {"securityRules": rules})) == []


def _service(type_: str, environment: str, access: str) -> Resource:
    props: dict[str, Any] = {"tags": {"environment": environment}}
    if type_ == azure.KEY_VAULT:
        props["properties"] = {"publicNetworkAccess": access}
    else:
        props["publicNetworkAccess"] = access
    return res(type_, props)


@pytest.mark.parametrize(
    "type_",
    [azure.STORAGE_ACCOUNT, azure.KEY_VAULT, azure.CONTAINER_REGISTRY, azure.ML_REGISTRY],
)
def test_azure_prod_services_have_no_public_endpoint(type_: str) -> None:
    assert messages(azure.prod_private_access, _service(type_, "prod", "Disabled")) == []
    assert messages(azure.prod_private_access, _service(type_, "prod", "Enabled")) == [
        "prod service has a public endpoint (publicNetworkAccess is not Disabled)"
    ]
    # Dev keeps its endpoints behind deny-by-default firewalls.
    assert messages(azure.prod_private_access, _service(type_, "dev", "Enabled")) == []


# Registration, exemptions and the shipped stacks


def test_every_network_check_is_registered_under_its_rule() -> None:
    by_name = {r.name: r for r in RULES}
    assert by_name["network-flow-logs"].stack_checks == (
        aws_network.vpc_flow_logs,
        azure.vnet_flow_logs,
    )
    assert by_name["network-flow-logs"].resource_checks == (gcp.subnet_flow_logs,)
    assert by_name["network-no-open-ingress"].resource_checks == (
        aws_network.open_ingress,
        gcp.firewall_open_ingress,
        azure.nsg_open_ingress,
    )
    assert by_name["network-private-access"].stack_checks == (aws_network.vpc_private_access,)
    assert by_name["network-private-access"].resource_checks == (
        gcp.subnet_private_access,
        azure.prod_private_access,
    )
    assert aws_network.endpoint_policy in by_name["iam-least-privilege"].resource_checks


def test_only_the_registry_bootstrap_vault_may_stay_public_in_prod() -> None:
    boot = _service(azure.KEY_VAULT, "prod", "Enabled")
    boot = dataclasses.replace(
        boot,
        props={**boot.props, "tags": {"environment": "prod", "purpose": "registry-bootstrap-key"}},
    )
    assert exemption_for("network-private-access", boot).id == "EX-204"
    assert (
        exemption_for("network-private-access", _service(azure.KEY_VAULT, "prod", "Enabled"))
        is None
    )
    key = res("azure-native:keyvault:Key", {})
    assert exemption_for("stateful-protected", key).id == "EX-203"
    assert (
        exemption_for("stateful-protected", _service(azure.KEY_VAULT, "prod", "Disabled")) is None
    )


@pytest.mark.parametrize(
    "stack", ["aws-dev", "aws-prod", "gcp-dev", "gcp-prod", "azure-dev", "azure-prod"]
)
def test_shipped_networks_pass_every_network_rule(stack: str) -> None:
    assert [f for f in planned(stack).findings if f.policy.startswith("network-")] == []


def _without(stack: str, type_: str) -> list:
    return [r for r in planned(stack).registrations if r.type != type_]


@pytest.mark.parametrize(
    ("stack", "dropped", "environment"),
    [
        ("aws-dev", "aws:ec2/flowLog:FlowLog", "dev"),
        ("azure-prod", "azure-native:network:FlowLog", "prod"),
    ],
)
def test_crossguard_reports_a_network_without_flow_logs(
    stack: str, dropped: str, environment: str
) -> None:
    findings = evaluate(_without(stack, dropped), environment)
    assert [(f.policy, f.level, f.urn.rsplit("::", 1)[1]) for f in findings] == [
        (
            "network-flow-logs",
            "mandatory",
            f"mlops-{stack}-network-{'vpc' if stack.startswith('aws') else 'vnet'}",
        )
    ]


def test_crossguard_reports_an_open_firewall_and_a_public_prod_vault() -> None:
    registrations = [
        dataclasses.replace(r, inputs={**r.inputs, "sourceRanges": ["0.0.0.0/0"]})
        if r.name.endswith("-iap-ssh")
        else r
        for r in planned("gcp-prod").registrations
    ]
    assert [(f.policy, f.urn.rsplit("::", 1)[1]) for f in evaluate(registrations, "prod")] == [
        ("network-no-open-ingress", "mlops-gcp-prod-network-iap-ssh")
    ]
    vaults = [
        dataclasses.replace(
            r,
            inputs={
                **r.inputs,
                "properties": {**r.inputs["properties"], "publicNetworkAccess": "Enabled"},
            },
        )
        if r.name.endswith("-key-vault")
        else r
        for r in planned("azure-prod").registrations
    ]
    assert [(f.policy, f.urn.rsplit("::", 1)[1]) for f in evaluate(vaults, "prod")] == [
        ("network-private-access", "mlops-azure-prod-key-vault")
    ]


def test_crossguard_sees_an_open_inline_rule_through_the_engines_proxies() -> None:
    """The engine hands lists to policies as sequence proxies, not lists; the
    offline run does the same, so a check that only knows `list` fails here."""
    registrations = [
        dataclasses.replace(
            r, inputs={**r.inputs, "ingress": [{"cidrBlocks": ["0.0.0.0/0"], "fromPort": 22}]}
        )
        if r.type == aws_network.DEFAULT_SECURITY_GROUP
        else r
        for r in planned("aws-dev").registrations
    ]
    assert [(f.policy, f.message) for f in evaluate(registrations, "dev")] == [
        ("network-no-open-ingress", "security group admits ingress from 0.0.0.0/0")
    ]
