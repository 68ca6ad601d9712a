"""Model endpoints on mocks: private, encrypted, capturing, autoscaled, alarmed,
rolled out blue/green, and a model version that ships as an update."""

from __future__ import annotations

import copy

import pytest
from conftest import created_as, of_type, one, plan_with, planned, policy_doc

from tools import stackfiles
from tools.mockcloud import ACCOUNT_ID, stable_uuid
from tools.plandiff import diff_plans

MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
KEY = "aws:kms/key:Key"


@pytest.fixture(scope="module")
def dev():
    return planned("aws-dev")


@pytest.fixture(scope="module")
def prod():
    return planned("aws-prod")


def _key_arn(plan) -> str:
    key = one(plan, KEY)
    region = plan.settings.region  # aws-dev's eu-west-1, aws-prod's us-east-1
    return f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{stable_uuid(KEY, created_as(key))}"


def test_model_runs_privately_as_the_runtime_role_from_the_stack_registry(dev) -> None:
    model = one(dev, MODEL)
    runtime = one(dev, "aws:iam/role:Role", "-runtime")
    assert runtime.urn in model.property_dependencies["executionRoleArn"]
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["primaryContainer"] == {
        "image": f"{ACCOUNT_ID}.dkr.ecr.eu-west-1.amazonaws.com/mlops-aws-dev/serving:1.4.2",
        "mode": "SingleModel",
        "modelDataUrl": "s3://mlops-aws-dev-lake-curated/models/churn/1.4.2/model.tar.gz",
    }
    assert "name" not in model.inputs  # immutable: autonamed, replaced create-before-delete
    vpc = model.inputs["vpcConfig"]
    assert vpc["subnets"] == dev.outputs["privateSubnetIds"]
    group = one(dev, "aws:ec2/securityGroup:SecurityGroup", "-serve-churn-model")
    assert vpc["securityGroupIds"] == [group.name]
    # No inline rules (they would overwrite the rule resources), and no ingress rule.
    assert "ingress" not in group.inputs and "egress" not in group.inputs
    ingress = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    assert [r for r in of_type(dev, ingress) if r.inputs["securityGroupId"] == group.name] == []
    rules = [
        r.inputs
        for r in of_type(dev, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.inputs["securityGroupId"] == group.name
    ]
    assert sorted(
        (r.get("cidrIpv4", ""), r.get("prefixListId", ""), r["toPort"]) for r in rules
    ) == [
        ("", "pl-6da54004", 443),
        ("10.20.0.0/16", "", 443),
    ]


def test_configuration_is_encrypted_and_captures_into_the_lake(dev) -> None:
    config = one(dev, CONFIG)
    assert "name" not in config.inputs and "namePrefix" not in config.inputs
    assert config.inputs["kmsKeyArn"] == _key_arn(dev)
    assert config.inputs["productionVariants"] == [
        {
            "variantName": "primary",
            "modelName": one(dev, MODEL).name,
            "instanceType": "ml.m5.large",
            "initialInstanceCount": 1,
            "initialVariantWeight": 1,
        }
    ]
    capture = config.inputs["dataCaptureConfig"]
    assert capture["enableCapture"] is True
    assert capture["initialSamplingPercentage"] == 20
    # The lake's first zone, under the endpoint's own prefix, under the platform key.
    assert capture["destinationS3Uri"] == "s3://mlops-aws-dev-lake-raw/capture/churn/"
    assert capture["kmsKeyId"] == _key_arn(dev)
    assert capture["captureOptions"] == [{"captureMode": "Input"}, {"captureMode": "Output"}]


def test_local_nvme_instance_types_are_encrypted_in_hardware_not_with_a_key(prod) -> None:
    config = one(prod, CONFIG)
    assert config.inputs["productionVariants"][0]["instanceType"] == "ml.g5.xlarge"
    # SageMaker refuses a KmsKeyId for them; the capture still uses the platform key.
    assert "kmsKeyArn" not in config.inputs
    assert config.inputs["dataCaptureConfig"]["kmsKeyId"] == _key_arn(prod)


def test_endpoint_rolls_out_blue_green_and_rolls_back_on_its_alarms(dev, prod) -> None:
    endpoint = one(prod, ENDPOINT)
    assert endpoint.inputs["name"] == "mlops-aws-prod-churn"
    policy = endpoint.inputs["deploymentConfig"]
    assert policy["blueGreenUpdatePolicy"] == {
        "trafficRoutingConfiguration": {
            "type": "CANARY",
            "canarySize": {"type": "CAPACITY_PERCENT", "value": 10},
            "waitIntervalInSeconds": 900,
        },
        "terminationWaitInSeconds": 900,
    }
    alarms = {a.name for a in of_type(prod, ALARM)}
    assert {a["alarmName"] for a in policy["autoRollbackConfiguration"]["alarms"]} == alarms
    assert one(dev, ENDPOINT).inputs["deploymentConfig"]["blueGreenUpdatePolicy"][
        "trafficRoutingConfiguration"
    ] == {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 600}


def test_alarms_watch_this_endpoint_and_variant(prod) -> None:
    alarms = {a.name.rsplit("-", 1)[1]: a.inputs for a in of_type(prod, ALARM)}
    assert set(alarms) == {"5xx", "latency"}
    for alarm in alarms.values():
        assert alarm["namespace"] == "AWS/SageMaker"
        assert alarm["dimensions"] == {
            "EndpointName": "mlops-aws-prod-churn",
            "VariantName": "primary",
        }
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["period"] == 60 and alarm["evaluationPeriods"] == 3
    assert (alarms["5xx"]["metricName"], alarms["5xx"]["threshold"]) == ("Invocation5XXErrors", 5)
    assert alarms["latency"]["metricName"] == "ModelLatency"
    assert alarms["latency"]["extendedStatistic"] == "p99"
    assert alarms["latency"]["threshold"] == 1_000_000  # microseconds


def test_autoscaling_tracks_invocations_between_the_replica_bounds(prod) -> None:
    target = one(prod, TARGET)
    assert target.inputs["tags"]["environment"] == "prod"
    assert {k: v for k, v in target.inputs.items() if k != "tags"} == {
        "serviceNamespace": "sagemaker",
        "resourceId": "endpoint/mlops-aws-prod-churn/variant/primary",
        "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "minCapacity": 2,
        "maxCapacity": 6,
    }
    assert one(prod, ENDPOINT).urn in target.property_dependencies["resourceId"]
    policy = one(prod, POLICY).inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    assert policy["targetTrackingScalingPolicyConfiguration"] == {
        "targetValue": 200,
        "scaleInCooldown": 300,
        "scaleOutCooldown": 60,
        "predefinedMetricSpecification": {
            "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        },
    }


def test_runtime_role_reads_only_its_model_and_writes_only_its_capture(dev) -> None:
    runtime = one(dev, "aws:iam/role:Role", "-runtime")
    policy = one(dev, "aws:iam/rolePolicy:RolePolicy", "-serve-churn-runtime")
    assert runtime.urn in policy.property_dependencies["role"]
    statements = {s["Sid"]: s for s in policy_doc(policy.inputs["policy"])["Statement"]}
    assert statements["ReadModelArtifact"]["Action"] == "s3:GetObject"
    assert statements["ReadModelArtifact"]["Resource"] == (
        "arn:aws:s3:::mlops-aws-dev-lake-curated/models/churn/1.4.2/model.tar.gz"
    )
    assert statements["WriteCapture"]["Action"] == "s3:PutObject"
    assert (
        statements["WriteCapture"]["Resource"]
        == "arn:aws:s3:::mlops-aws-dev-lake-raw/capture/churn/*"
    )
    assert statements["UsePlatformKey"]["Resource"] == _key_arn(dev)
    assert statements["WriteEndpointLogs"]["Resource"] == [
        f"arn:aws:logs:eu-west-1:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/*",
        f"arn:aws:logs:eu-west-1:{ACCOUNT_ID}:log-group:/aws/sagemaker/ProcessingJobs:*",
    ]
    assert statements["WriteEndpointMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/Endpoints/*"]}
    }
    # The drift check reads the baseline beside the artifact and the capture, and
    # writes its reports under monitoring/<endpoint>/, nothing else.
    assert statements["DriftReadsBaselineAndCapture"]["Resource"] == [
        "arn:aws:s3:::mlops-aws-dev-lake-curated/baselines/churn/*",
        "arn:aws:s3:::mlops-aws-dev-lake-raw/capture/churn/*",
    ]
    assert statements["DriftWritesReports"]["Resource"] == (
        "arn:aws:s3:::mlops-aws-dev-lake-raw/monitoring/churn/*"
    )
    for statement in statements.values():
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert not [a for a in actions if "*" in a], statement["Sid"]
    # No managed policy anywhere.
    assert of_type(dev, "aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    assert policy.urn in one(dev, MODEL).dependencies


def test_a_registry_version_serves_the_model_package(dev) -> None:
    churn = {"model": {"registryVersion": 7}, "instanceType": "ml.m5.large"}
    plan = plan_with("aws-dev", endpoints={"churn": churn})
    assert one(plan, MODEL).inputs["primaryContainer"] == {
        "modelPackageName": (
            f"arn:aws:sagemaker:eu-west-1:{ACCOUNT_ID}:model-package/mlops-aws-dev-models/7"
        )
    }
    statements = {
        s["Sid"]
        for s in policy_doc(
            one(plan, "aws:iam/rolePolicy:RolePolicy", "-serve-churn-runtime").inputs["policy"]
        )["Statement"]
    }
    assert "ReadModelArtifact" not in statements
    assert plan.outputs["endpointNames"] == {"churn": "mlops-aws-dev-churn"}


def test_a_new_model_version_rolls_out_in_place() -> None:
    """One line in the stack file: the model and its configuration are replaced
    create-before-delete, the endpoint is updated, nothing stateful is touched."""
    values = copy.deepcopy(stackfiles.stack_values("aws-prod"))
    churn = values["mlops:endpoints"]["churn"]
    churn["model"]["image"]["tag"] = "1.5.0"
    churn["model"]["artifact"]["path"] = "models/churn/1.5.0/model.tar.gz"
    from tools.plan import plan_values

    head = plan_values("aws-prod", values).preview_json()
    diff = diff_plans("aws-prod", planned("aws-prod").preview_json(), head)
    assert (diff.added, diff.removed, diff.warnings) == ((), (), ())
    changes = {c.after.type: c for c in diff.changed}
    assert set(changes) == {MODEL, CONFIG, ENDPOINT, "aws:iam/rolePolicy:RolePolicy"}
    assert changes[MODEL].replace_reasons == ("primaryContainer",)
    assert changes[CONFIG].replace_reasons == ("productionVariants",)
    assert not changes[ENDPOINT].replaces
    assert [p.path for p in changes[ENDPOINT].properties] == ["endpointConfigName"]
    assert not changes["aws:iam/rolePolicy:RolePolicy"].replaces
