"""Accelerator pools: their settings checks, the Azure ML compute cluster, and the
pool rules (a failing and a passing resource each)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import one, plan_with, planned
from mlops_policies.model import Resource
from mlops_policies.rules import pools

from infra.catalogs import ec2_accelerated_regions
from infra.settings import SettingsError, load
from tools import stackfiles

COMPUTE = "azure-native:machinelearningservices:Compute"


def test_the_azure_cluster_idles_at_zero_without_public_ips() -> None:
    dev = one(planned("azure-dev"), COMPUTE)
    props = dev.inputs["properties"]
    assert props["computeType"] == "AmlCompute"
    assert props["disableLocalAuth"] is True
    nodes = props["properties"]
    assert nodes["vmSize"] == "Standard_NC4as_T4_v3"
    assert nodes["vmPriority"] == "LowPriority"
    assert nodes["enableNodePublicIp"] is False
    assert nodes["remoteLoginPortPublicAccess"] == "Disabled"
    assert nodes["scaleSettings"] == {
        "minNodeCount": 0,
        "maxNodeCount": 2,
        "nodeIdleTimeBeforeScaleDown": "PT10M",
    }
    workspace = one(planned("azure-dev"), "azure-native:machinelearningservices:Workspace")
    assert workspace.urn in dev.property_dependencies["workspaceName"]
    prod = one(planned("azure-prod"), COMPUTE).inputs["properties"]["properties"]
    assert prod["vmPriority"] == "Dedicated"
    assert prod["scaleSettings"]["nodeIdleTimeBeforeScaleDown"] == "PT15M"


POOL = {"kind": "gpu", "type": "Standard_NC4as_T4_v3"}


@pytest.mark.parametrize(
    ("stack", "pool", "key", "problem"),
    [
        (
            "azure-dev",
            {"kind": "tpu", "type": "v5litepod-8"},
            "kind",
            "tpu is not offered on azure",
        ),
        ("aws-dev", {"kind": "gpu", "type": "inf2.xlarge"}, "type", "carries no gpu accelerator"),
        ("aws-dev", {"kind": "inferentia", "type": "g5.xlarge"}, "type", "carries no inferentia"),
        ("aws-dev", {"kind": "gpu", "type": "g5.xlarg"}, "type", "is not an EC2 instance type"),
        ("gcp-dev", {"kind": "tpu", "type": "v5litepod-3"}, "type", "is not a Cloud TPU type"),
        ("gcp-dev", {"kind": "gpu", "type": "n1-standard-8"}, "accelerator", "is required"),
        ("azure-dev", {"kind": "gpu", "type": "Standard_DS3_v2"}, "type", "is not a GPU VM size"),
        ("azure-dev", {**POOL, "topology": "2x4"}, "topology", "has no effect on azure"),
        (
            "gcp-dev",
            {"kind": "gpu", "type": "g2-standard-8", "idleMinutes": 5},
            "idleMinutes",
            "has no effect on gcp",
        ),
        (
            "aws-dev",
            {"kind": "gpu", "type": "g5.xlarge", "spot": True, "capacityReservation": "cr-1"},
            "capacityReservation",
            "a spot pool runs on spare capacity",
        ),
    ],
)
def test_a_pool_a_cloud_cannot_run_is_one_line(
    stack: str, pool: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        plan_with(stack, acceleratorPools={"pool": pool})
    lines = str(caught.value).splitlines()
    prefix = f"stacks/Pulumi.{stack}.yaml: mlops:acceleratorPools.pool.{key}: "
    assert [line for line in lines if line.startswith(prefix) and problem in line], lines


def test_alternative_types_are_for_spot_pools() -> None:
    with pytest.raises(SettingsError) as caught:
        plan_with(
            "aws-dev",
            acceleratorPools={
                "p": {"kind": "gpu", "type": "g5.xlarge", "alternativeTypes": ["g5.2xlarge"]}
            },
        )
    assert "alternativeTypes apply to spot pools (spot: true)" in str(caught.value)


def _load_aws(region: str, pools: dict[str, Any]) -> list[str]:
    """The settings lines for aws-dev's settings in `region` with these pools."""
    values = stackfiles.stack_values("aws-dev")
    values["aws:region"] = region
    values["mlops:acceleratorPools"] = pools
    try:
        load("aws-dev", stackfiles.as_engine_strings(values))
    except SettingsError as caught:
        return str(caught).splitlines()
    return []


TRAINIUM = {"kind": "trainium", "type": "trn1.32xlarge", "maxNodes": 1}
SPOT_GPU = {"kind": "gpu", "type": "g5.xlarge", "spot": True, "alternativeTypes": ["g6.xlarge"]}


def test_an_aws_pool_type_must_be_offered_in_the_stacks_region() -> None:
    source = "AWS's price list as of 2026-01-21, infra/data/ec2_accelerated_regions.json"
    assert _load_aws("eu-west-1", {"trn": TRAINIUM, "gpu": SPOT_GPU}) == [
        "stacks/Pulumi.aws-dev.yaml: mlops:acceleratorPools.gpu.alternativeTypes[0]: "
        "g6.xlarge is not offered in eu-west-1 (offered in ap-northeast-1, ap-northeast-2, "
        "ap-south-1, ap-south-2, ap-southeast-2, ap-southeast-5, ca-central-1, eu-central-1, "
        "eu-central-2, eu-north-1, eu-south-2, eu-west-2, eu-west-3, me-central-1, sa-east-1, "
        f"us-east-1, us-east-2, us-gov-east-1, us-gov-west-1, us-west-2; {source})",
        "stacks/Pulumi.aws-dev.yaml: mlops:acceleratorPools.trn.type: trn1.32xlarge is not "
        f"offered in eu-west-1 (offered in us-east-1, us-east-2, us-west-2; {source})",
    ]
    assert _load_aws("us-east-2", {"trn": TRAINIUM, "gpu": SPOT_GPU}) == []


def test_a_region_that_does_not_exist_is_said_once_not_per_pool() -> None:
    (line,) = _load_aws("eu-west-9", {"trn": TRAINIUM})
    assert line.startswith(
        "stacks/Pulumi.aws-dev.yaml: aws:region: 'eu-west-9' is not an AWS region"
    )


def test_the_shipped_aws_stacks_run_their_pools_where_they_are_offered() -> None:
    offers = ec2_accelerated_regions()
    for stack in ("aws-dev", "aws-prod"):
        plan = planned(stack)
        for name, pool in plan.settings.accelerator_pools.items():
            for type_ in (pool.type, *pool.alternative_types):
                # Every shipped type is in the table: none escapes the check.
                assert plan.settings.region in offers.regions[type_], (stack, name, type_)


def res(type_: str, props: dict[str, Any]) -> Resource:
    return Resource(type_, f"urn:pulumi:t::mlops::{type_}::r", "r", props, False, {})


DEV = {"environment": "dev"}


def test_no_node_gets_a_public_ip() -> None:
    private = {"networkInterfaces": [{"associatePublicIpAddress": "false"}]}
    assert list(pools.no_public_ip(res(pools.LAUNCH_TEMPLATE, private))) == []
    public = {"networkInterfaces": [{"associatePublicIpAddress": "true"}]}
    assert len(list(pools.no_public_ip(res(pools.LAUNCH_TEMPLATE, public)))) == 1
    # No interface given: the subnet's default decides, which is no guarantee.
    assert len(list(pools.no_public_ip(res(pools.LAUNCH_TEMPLATE, {})))) == 1
    gcp_private = {"networkInterfaces": [{"subnetwork": "s"}]}
    assert list(pools.no_public_ip(res(pools.INSTANCE_TEMPLATE, gcp_private))) == []
    gcp_public = {"networkInterfaces": [{"accessConfigs": [{}]}]}
    assert len(list(pools.no_public_ip(res(pools.INSTANCE_TEMPLATE, gcp_public)))) == 1
    tpu = {"tpu": {"nodeSpecs": [{"node": {"networkConfig": {"enableExternalIps": False}}}]}}
    assert list(pools.no_public_ip(res(pools.TPU, tpu))) == []
    tpu_public = {"tpu": {"nodeSpecs": [{"node": {"networkConfig": {}}}]}}
    assert len(list(pools.no_public_ip(res(pools.TPU, tpu_public)))) == 1
    aml = {"properties": {"properties": {"enableNodePublicIp": False}}}
    assert list(pools.no_public_ip(res(pools.AML_COMPUTE, aml))) == []
    assert len(list(pools.no_public_ip(res(pools.AML_COMPUTE, {"properties": {}})))) == 1


def test_aws_nodes_answer_only_imdsv2() -> None:
    required = {"metadataOptions": {"httpTokens": "required"}}
    assert list(pools.imdsv2(res(pools.LAUNCH_TEMPLATE, required))) == []
    optional = {"metadataOptions": {"httpTokens": "optional"}}
    assert list(pools.imdsv2(res(pools.LAUNCH_TEMPLATE, optional))) == [
        "nodes answer IMDSv1 (metadataOptions.httpTokens is not required)"
    ]


def test_dev_pools_idle_at_zero_and_prefer_spot() -> None:
    tags = [{"key": "environment", "value": "dev", "propagateAtLaunch": True}]
    assert list(pools.scale_to_zero(res(pools.ASG, {"tags": tags, "minSize": 0}))) == []
    assert list(pools.scale_to_zero(res(pools.ASG, {"tags": tags, "minSize": 1}))) == [
        "dev pool keeps 1 node running when idle (scale it to zero)"
    ]
    prod = [{"key": "environment", "value": "prod"}]
    assert list(pools.scale_to_zero(res(pools.ASG, {"tags": prod, "minSize": 2}))) == []
    scaling = {"labels": DEV, "autoscalingPolicy": {"minReplicas": 1}}
    assert len(list(pools.scale_to_zero(res(pools.REGION_AUTOSCALER, scaling)))) == 1
    dedicated = {"tags": DEV, "properties": {"properties": {"vmPriority": "Dedicated"}}}
    assert len(list(pools.spot_in_dev(res(pools.AML_COMPUTE, dedicated)))) == 1
    low = {"tags": DEV, "properties": {"properties": {"vmPriority": "LowPriority"}}}
    assert list(pools.spot_in_dev(res(pools.AML_COMPUTE, low))) == []


def test_pool_accelerators_follow_the_environment_list() -> None:
    allowed = {"allowedAcceleratorClasses": ["t4"]}
    t4 = {"properties": {"properties": {"vmSize": "Standard_NC4as_T4_v3"}}}
    assert list(pools.accelerators(res(pools.AML_COMPUTE, t4), allowed)) == []
    a100 = {"properties": {"properties": {"vmSize": "Standard_NC24ads_A100_v4"}}}
    assert list(pools.accelerators(res(pools.AML_COMPUTE, a100), allowed)) == [
        "pool of Standard_NC24ads_A100_v4 (a100) uses an accelerator class this environment "
        "does not allow (t4)"
    ]
    p5 = {"instanceType": "p5.48xlarge"}
    assert len(list(pools.accelerators(res(pools.LAUNCH_TEMPLATE, p5), allowed))) == 1


def test_crossguard_refuses_an_a100_pool_in_dev_and_an_idle_node() -> None:
    plan_findings = plan_with(
        "azure-dev",
        acceleratorPools={
            "big": {"kind": "gpu", "type": "Standard_NC24ads_A100_v4", "minNodes": 1, "spot": True}
        },
    ).findings
    assert sorted((f.policy, f.level) for f in plan_findings) == [
        ("pool-scale-to-zero", "mandatory"),
        ("serving-accelerators", "mandatory"),
    ]
