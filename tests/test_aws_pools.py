"""AWS accelerator pools on mocks: private nodes booting their kind's DLAMI from an
SSM parameter, IMDSv2 only, encrypted roots, spot or on demand, EFA where the
type has it, a targeted reservation, a least-privilege node role."""

from __future__ import annotations

import copy

import pytest
from conftest import created_as, of_type, one, policy_doc

from infra.aws.pool import image_parameter
from infra.settings import AcceleratorPoolSettings
from tools import stackfiles
from tools.mockcloud import ACCOUNT_ID, stable_uuid
from tools.plan import plan_values
from tools.plandiff import diff_plans

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GROUP = "aws:autoscaling/group:Group"
PLACEMENT = "aws:ec2/placementGroup:PlacementGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
KEY = "aws:kms/key:Key"
RESERVATION = "cr-0123456789abcdef0"
POOLS = {
    "train": {
        "kind": "gpu",
        "type": "g5.2xlarge",
        "spot": True,
        "alternativeTypes": ["g6.2xlarge", "g5.4xlarge"],
        "maxNodes": 4,
    },
    "infer": {
        "kind": "inferentia",
        "type": "inf2.xlarge",
        "maxNodes": 2,
        "image": "/mlops/images/neuron",
    },
    "trn": {
        "kind": "trainium",
        "type": "trn1.32xlarge",
        "maxNodes": 2,
        "diskGb": 500,
        "capacityReservation": RESERVATION,
    },
}
NEURON = "resolve:ssm:/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
GPU = (
    "resolve:ssm:/aws/service/deeplearning/ami/x86_64/"
    "base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
)


# aws-dev's settings in us-east-1, which offers every type above (eu-west-1,
# aws-dev's own region, offers neither trn1 nor g6).
REGION = "us-east-1"


def dev_values(pools: dict) -> dict:
    values = copy.deepcopy(stackfiles.stack_values("aws-dev"))
    values["aws:region"] = REGION
    values["mlops:acceleratorPools"] = copy.deepcopy(pools)
    return values


@pytest.fixture(scope="module")
def plan():
    return plan_values("aws-dev", dev_values(POOLS))


def _template(plan, pool: str):
    return one(plan, TEMPLATE, f"-pool-{pool}-nodes")


def _group(plan, pool: str):
    return one(plan, GROUP, f"-pool-{pool}-nodes")


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _key_arn(plan) -> str:
    key = one(plan, KEY)
    return f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{stable_uuid(KEY, created_as(key))}"


def test_nodes_answer_only_imdsv2_one_hop_past_the_node(plan) -> None:
    for pool in POOLS:
        # Hop limit 2: containers on the Docker bridge reach IMDSv2, nothing further.
        assert _template(plan, pool).inputs["metadataOptions"] == {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 2,
            "instanceMetadataTags": "disabled",
        }


def test_root_volumes_are_encrypted_gp3_under_the_platform_key(plan) -> None:
    sizes = {"train": 200, "infer": 200, "trn": 500}
    for pool, size in sizes.items():
        assert _template(plan, pool).inputs["blockDeviceMappings"] == [
            {
                "deviceName": "/dev/sda1",
                "ebs": {
                    "volumeType": "gp3",
                    "volumeSize": size,
                    "encrypted": "true",
                    "kmsKeyId": _key_arn(plan),
                    "deleteOnTermination": "true",
                },
            }
        ]


def test_nodes_get_no_public_ip_and_only_the_pool_security_group(plan) -> None:
    for pool in ("train", "infer"):
        group = one(plan, SECURITY_GROUP, f"-pool-{pool}-nodes")
        template = _template(plan, pool).inputs
        assert template["networkInterfaces"] == [
            {
                "deviceIndex": 0,
                "networkCardIndex": 0,
                "associatePublicIpAddress": "false",
                "deleteOnTermination": "true",
                "securityGroups": [group.name],
            }
        ]
        assert "vpcSecurityGroupIds" not in template
        profile = one(plan, "aws:iam/instanceProfile:InstanceProfile", f"-pool-{pool}-node")
        assert profile.urn in _template(plan, pool).property_dependencies["iamInstanceProfile"]
        assert "keyName" not in template and "userData" not in template


def test_groups_run_in_the_private_subnets_between_the_bounds_from_zero(plan) -> None:
    for pool, maximum in (("train", 4), ("infer", 2)):
        group = _group(plan, pool).inputs
        assert group["vpcZoneIdentifiers"] == plan.outputs["privateSubnetIds"]
        assert (group["minSize"], group["maxSize"]) == (0, maximum)
        # Scaling owns the desired capacity; a deploy never resets it.
        assert "desiredCapacity" not in group
        assert (group["healthCheckType"], group["waitForCapacityTimeout"]) == ("EC2", "0")
    assert plan.outputs["acceleratorPools"] == {
        "infer": "mlops-aws-dev-pool-infer-nodes",
        "train": "mlops-aws-dev-pool-train-nodes",
        "trn": "mlops-aws-dev-pool-trn-nodes",
    }


def test_each_kind_boots_the_ssm_parameter_of_its_image(plan) -> None:
    # Resolved by EC2 at each launch: no AMI lookup while planning.
    assert _template(plan, "train").inputs["imageId"] == GPU
    assert _template(plan, "trn").inputs["imageId"] == NEURON
    assert _template(plan, "infer").inputs["imageId"] == "resolve:ssm:/mlops/images/neuron"
    assert image_parameter(AcceleratorPoolSettings(kind="inferentia", type="inf2.xlarge")) == (
        NEURON.removeprefix("resolve:ssm:")
    )
    graviton = AcceleratorPoolSettings(kind="gpu", type="g5g.xlarge")
    assert "/deeplearning/ami/arm64/" in image_parameter(graviton)


def test_a_spot_pool_runs_all_spot_capacity_optimized_over_its_types(plan) -> None:
    group = _group(plan, "train")
    template = _template(plan, "train")
    assert "launchTemplate" not in group.inputs
    assert group.inputs["mixedInstancesPolicy"] == {
        "instancesDistribution": {
            "onDemandBaseCapacity": 0,
            "onDemandPercentageAboveBaseCapacity": 0,
            "spotAllocationStrategy": "capacity-optimized",
        },
        "launchTemplate": {
            "launchTemplateSpecification": {"launchTemplateId": template.name, "version": "1"},
            "overrides": [
                {"instanceType": "g5.2xlarge"},
                {"instanceType": "g6.2xlarge"},
                {"instanceType": "g5.4xlarge"},
            ],
        },
    }
    assert template.urn in group.property_dependencies["mixedInstancesPolicy"]


def test_an_on_demand_pool_launches_its_template_directly(plan) -> None:
    group = _group(plan, "infer")
    template = _template(plan, "infer")
    assert "mixedInstancesPolicy" not in group.inputs
    # The template's numbered version, so a template change shows on the group.
    assert group.inputs["launchTemplate"] == {"id": template.name, "version": "1"}
    assert template.inputs["instanceType"] == "inf2.xlarge"
    assert "instanceMarketOptions" not in template.inputs


def test_efa_types_get_one_efa_per_card_and_a_cluster_placement_group(plan) -> None:
    interfaces = _template(plan, "trn").inputs["networkInterfaces"]
    group = one(plan, SECURITY_GROUP, "-pool-trn-nodes")
    # trn1.32xlarge: 8 network cards, an EFA on each.
    assert [(i["networkCardIndex"], i["deviceIndex"], i["interfaceType"]) for i in interfaces] == [
        (0, 0, "efa"),
        *[(card, 0, "efa-only") for card in range(1, 8)],
    ]
    assert all(i["securityGroups"] == [group.name] for i in interfaces)
    # EC2 refuses the parameter (even false) on a launch with several interfaces,
    # and gives such a launch no public IP.
    assert not [i for i in interfaces if "associatePublicIpAddress" in i]
    placement = one(plan, PLACEMENT, "-pool-trn-nodes")
    assert placement.inputs["strategy"] == "cluster"
    asg = _group(plan, "trn").inputs
    assert asg["placementGroup"] == placement.name
    # A cluster placement group is one zone: the first private subnet only.
    assert asg["vpcZoneIdentifiers"] == plan.outputs["privateSubnetIds"][:1]


def test_types_without_efa_get_no_efa_and_no_placement_group(plan) -> None:
    for pool in ("train", "infer"):
        interfaces = _template(plan, pool).inputs["networkInterfaces"]
        assert [i.get("interfaceType") for i in interfaces] == [None]
        assert "placementGroup" not in _group(plan, pool).inputs
    assert [p.name for p in of_type(plan, PLACEMENT)] == ["mlops-aws-dev-pool-trn-nodes"]


def test_a_capacity_reservation_is_targeted(plan) -> None:
    assert _template(plan, "trn").inputs["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": RESERVATION}
    }
    assert "mixedInstancesPolicy" not in _group(plan, "trn").inputs
    for pool in ("train", "infer"):
        assert "capacityReservationSpecification" not in _template(plan, pool).inputs


def test_the_security_group_admits_only_the_pool_and_reaches_only_endpoints_and_s3(plan) -> None:
    group = one(plan, SECURITY_GROUP, "-pool-trn-nodes")
    assert "ingress" not in group.inputs and "egress" not in group.inputs
    ingress = [
        r.inputs for r in of_type(plan, INGRESS) if r.inputs["securityGroupId"] == group.name
    ]
    assert [(r["ipProtocol"], r["referencedSecurityGroupId"]) for r in ingress] == [
        ("-1", group.name)
    ]
    egress = sorted(
        (
            r.inputs["ipProtocol"],
            r.inputs.get("toPort", ""),
            r.inputs.get("cidrIpv4") or r.inputs.get("prefixListId") or "",
            r.inputs.get("referencedSecurityGroupId", ""),
        )
        for r in of_type(plan, EGRESS)
        if r.inputs["securityGroupId"] == group.name
    )
    assert egress == [
        ("-1", "", "", group.name),
        ("tcp", 443, "10.20.0.0/16", ""),
        ("tcp", 443, "pl-6da54004", ""),
    ]


def test_the_node_role_is_least_privilege(plan) -> None:
    role = one(plan, "aws:iam/role:Role", "-pool-train-node")
    assert policy_doc(role.inputs["assumeRolePolicy"])["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
        }
    ]
    policy = one(plan, ROLE_POLICY, "-pool-train-node")
    assert role.urn in policy.property_dependencies["role"]
    statements = {s["Sid"]: s for s in policy_doc(policy.inputs["policy"])["Statement"]}
    assert set(statements) == {
        "SessionManager",
        "EcrLogin",
        "PullStackImages",
        "ListLake",
        "ReadLake",
        "DecryptWithPlatformKey",
    }
    assert "ssm:UpdateInstanceInformation" in statements["SessionManager"]["Action"]
    assert statements["PullStackImages"]["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    repositories = plan.outputs["containerRepositoryUrls"]
    assert len(statements["PullStackImages"]["Resource"]) == len(repositories)
    buckets = sorted(plan.outputs["lakeBucketArns"].values())
    assert statements["ListLake"] == {
        "Sid": "ListLake",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": buckets,
    }
    assert statements["ReadLake"]["Action"] == "s3:GetObject"
    assert statements["ReadLake"]["Resource"] == [f"{arn}/*" for arn in buckets]
    assert statements["DecryptWithPlatformKey"] == {
        "Sid": "DecryptWithPlatformKey",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": _key_arn(plan),
        "Condition": {
            "StringEquals": {
                "kms:ViaService": [f"s3.{REGION}.amazonaws.com", f"ecr.{REGION}.amazonaws.com"]
            }
        },
    }
    actions = [a for s in statements.values() for a in _actions(s)]
    assert not [a for a in actions if "*" in a]
    # Nodes write nothing to the lake, the registries or the key.
    writes = ("Put", "Delete", "Encrypt", "GenerateDataKey", "Upload", "Initiate", "Complete")
    stores = [a.split(":") for a in actions if a.split(":")[0] in ("s3", "ecr", "kms")]
    assert not [f"{s}:{a}" for s, a in stores if a.startswith(writes)]
    # No managed policy anywhere.
    assert of_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []


def test_tags_reach_nodes_volumes_and_interfaces(plan) -> None:
    template = _template(plan, "infer").inputs
    tags = template["tags"]
    assert (tags["pool"], tags["environment"], tags["Name"]) == (
        "infer",
        "dev",
        "mlops-aws-dev-pool-infer",
    )
    assert template["tagSpecifications"] == [
        {"resourceType": kind, "tags": tags} for kind in ("instance", "volume", "network-interface")
    ]
    group_tags = _group(plan, "infer").inputs["tags"]
    assert {t["key"]: t["value"] for t in group_tags} == tags
    assert all(t["propagateAtLaunch"] is True for t in group_tags)


def test_only_the_pool_of_a_class_dev_does_not_allow_is_refused(plan) -> None:
    def found(pool: str) -> list[tuple[str, str]]:
        return sorted((f.policy, f.level) for f in plan.findings if f"-pool-{pool}-" in f.urn)

    assert found("train") == []
    assert found("infer") == [("pool-spot-in-dev", "advisory")]
    # Trainium is not among dev's accelerator classes; its EFA template passes
    # the node rules (no interface may carry a public IP).
    assert found("trn") == [
        ("pool-spot-in-dev", "advisory"),
        ("serving-accelerators", "mandatory"),
    ]


def test_resizing_the_disk_updates_the_template_in_place(plan) -> None:
    values = dev_values(POOLS)
    values["mlops:acceleratorPools"]["trn"]["diskGb"] = 800
    head = plan_values("aws-dev", values).preview_json()
    diff = diff_plans("aws-dev", plan.preview_json(), head)
    assert (diff.added, diff.removed) == ((), ())
    assert [(c.after.type, c.replaces) for c in diff.changed] == [(TEMPLATE, False)]
