"""The model-serving rules: a passing and a failing resource per check, the
per-environment accelerator list through CrossGuard, and clean shipped stacks."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import plan_with, planned
from mlops_policies.catalog import accelerator_kind, has_local_storage
from mlops_policies.model import Resource
from mlops_policies.pack import environment_settings
from mlops_policies.rules import RULES, serving

from tools.policy_run import evaluate

ENDPOINT_URN = "urn:pulumi:t::mlops::aws:sagemaker/endpoint:Endpoint::e"


def res(type_: str, props: dict[str, Any], deps: dict[str, list[str]] | None = None) -> Resource:
    urn = f"urn:pulumi:t::mlops::{type_}::{type_.rsplit(':', 1)[-1].lower()}"
    return Resource(type_, urn, "r", props, False, deps or {})


def config(environment: str = "prod", **props: Any) -> Resource:
    inputs = {
        "kmsKeyArn": "arn:aws:kms:eu-west-1:1:key/k",
        "productionVariants": [
            {"variantName": "primary", "instanceType": "ml.m5.large", "initialInstanceCount": 2}
        ],
        "dataCaptureConfig": {
            "enableCapture": True,
            "initialSamplingPercentage": 10,
            "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/k",
        },
        "tags": {"environment": environment},
        **props,
    }
    return res(serving.SM_CONFIG, inputs)


def variant(instance_type: str, count: int = 2) -> list[dict[str, Any]]:
    return [
        {"variantName": "primary", "instanceType": instance_type, "initialInstanceCount": count}
    ]


def test_catalog_reads_families() -> None:
    assert [accelerator_kind(t) for t in ("ml.g5.xlarge", "ml.inf2.xlarge", "ml.m5.large")] == [
        "gpu",
        "inferentia",
        None,
    ]
    assert accelerator_kind("ml.trn1.2xlarge") == "trainium"
    assert [has_local_storage(t) for t in ("ml.g5.xlarge", "ml.m5d.large", "ml.m5.large")] == [
        True,
        True,
        False,
    ]


def test_serving_encryption() -> None:
    assert list(serving.encryption(config())) == []
    assert list(serving.encryption(config(kmsKeyArn=None))) == [
        "endpoint configuration does not encrypt its serving volume with the platform key "
        "(kmsKeyArn)"
    ]
    # Local NVMe storage is encrypted in hardware; SageMaker refuses a key for it.
    assert (
        list(serving.encryption(config(kmsKeyArn=None, productionVariants=variant("ml.g5.xlarge"))))
        == []
    )
    unencrypted = config(dataCaptureConfig={"enableCapture": True, "initialSamplingPercentage": 5})
    assert list(serving.encryption(unencrypted)) == [
        "captured traffic is not encrypted with the platform key (dataCaptureConfig.kmsKeyId)"
    ]


def test_serving_private_in_prod() -> None:
    private = {"vpcConfig": {"subnets": ["s"], "securityGroupIds": ["g"]}}
    assert (
        list(serving.private(res(serving.SM_MODEL, {**private, "tags": {"environment": "prod"}})))
        == []
    )
    public = res(serving.SM_MODEL, {"tags": {"environment": "prod"}})
    assert list(serving.private(public)) == [
        "prod model runs outside the stack's private network (vpcConfig)"
    ]
    assert list(serving.private(res(serving.SM_MODEL, {"tags": {"environment": "dev"}}))) == []


def test_serving_data_capture_in_prod() -> None:
    assert list(serving.data_capture(config())) == []
    off = {"enableCapture": False, "initialSamplingPercentage": 0}
    assert list(serving.data_capture(config(dataCaptureConfig=off))) == [
        "prod endpoint captures no traffic (dataCaptureConfig), so drift cannot be seen"
    ]
    assert list(serving.data_capture(config("dev", dataCaptureConfig=off))) == []


def test_serving_replicas_in_prod() -> None:
    assert list(serving.replicas(config())) == []
    assert list(serving.replicas(config(productionVariants=variant("ml.m5.large", 1)))) == [
        "prod variant 'primary' starts with 1 instance; one zone's outage would take it down "
        "(at least 2)"
    ]
    target = {"serviceNamespace": "sagemaker", "minCapacity": 1, "tags": {"environment": "prod"}}
    assert list(serving.replicas(res(serving.SCALING_TARGET, target))) == [
        "prod endpoint may scale in to 1 instance (at least 2)"
    ]
    assert list(serving.replicas(config("dev", productionVariants=variant("ml.m5.large", 1)))) == []


ENDPOINT = Resource(serving.SM_ENDPOINT, ENDPOINT_URN, "e", {"name": "mlops-t-churn"})


def scaling(low: int = 1, high: int = 2) -> list[Resource]:
    deps = {"resourceId": [ENDPOINT_URN]}
    return [
        res(serving.SCALING_TARGET, {"minCapacity": low, "maxCapacity": high}, deps),
        res(serving.SCALING_POLICY, {"policyType": "TargetTrackingScaling"}, deps),
    ]


def test_serving_autoscaling() -> None:
    assert list(serving.autoscaling([ENDPOINT, *scaling()])) == []
    assert [m for _u, m in serving.autoscaling([ENDPOINT])] == [
        "endpoint is not autoscaled (no scalable target)"
    ]
    assert [m for _u, m in serving.autoscaling([ENDPOINT, *scaling(3, 2)])] == [
        "endpoint scales between 3 and 2 instances"
    ]
    assert [m for _u, m in serving.autoscaling([ENDPOINT, scaling()[0]])] == [
        "endpoint has no target-tracking scaling policy"
    ]


def alarm(metric: str, **dimensions: str) -> Resource:
    dims = {"EndpointName": "mlops-t-churn", "VariantName": "primary", **dimensions}
    return res(
        serving.ALARM, {"namespace": "AWS/SageMaker", "metricName": metric, "dimensions": dims}
    )


def test_serving_alarms() -> None:
    both = [alarm("Invocation5XXErrors"), alarm("ModelLatency")]
    assert list(serving.alarms([ENDPOINT, *both])) == []
    assert [m for _u, m in serving.alarms([ENDPOINT, both[0]])] == [
        "endpoint has no latency alarm on its EndpointName and VariantName"
    ]
    # An alarm on another endpoint watches nothing of this one.
    elsewhere = [
        alarm("Invocation5XXErrors", EndpointName="x"),
        alarm("ModelLatency", EndpointName="x"),
    ]
    assert [m for _u, m in serving.alarms([ENDPOINT, *elsewhere])] == [
        "endpoint has no errors and no latency alarm on its EndpointName and VariantName"
    ]


def test_serving_accelerators_follow_the_environment_list() -> None:
    allowed = {"allowedAcceleratorClasses": ["a10g", "inferentia"]}
    assert (
        list(serving.accelerators(config(productionVariants=variant("ml.g5.xlarge")), allowed))
        == []
    )
    assert (
        list(serving.accelerators(config(productionVariants=variant("ml.m5.large")), allowed)) == []
    )
    assert list(
        serving.accelerators(config(productionVariants=variant("ml.p5.48xlarge")), allowed)
    ) == [
        "ml.p5.48xlarge (h100) is not an accelerator class this environment allows "
        "(a10g, inferentia)"
    ]
    # Without a list, every class is allowed.
    assert (
        list(serving.accelerators(config(productionVariants=variant("ml.p5.48xlarge")), {})) == []
    )


def test_every_serving_check_is_registered() -> None:
    by_name = {r.name: r for r in RULES}
    assert serving.accelerators in by_name["serving-accelerators"].configured_checks
    assert "allowedAcceleratorClasses" in by_name["serving-accelerators"].config_properties
    assert serving.alarms in by_name["serving-alarms"].stack_checks
    assert serving.autoscaling in by_name["serving-autoscaling"].stack_checks
    for name, check in (
        ("serving-encryption", serving.encryption),
        ("serving-private", serving.private),
        ("serving-data-capture", serving.data_capture),
        ("serving-replicas", serving.replicas),
    ):
        assert check in by_name[name].resource_checks


def test_dev_allows_no_h100_class_endpoint_and_prod_does() -> None:
    assert (
        "h100"
        not in environment_settings("dev")["serving-accelerators"]["allowedAcceleratorClasses"]
    )
    assert "serving-accelerators" not in environment_settings("prod")
    churn = {
        "model": {"image": {"repository": "serving", "tag": "1"}},
        "instanceType": "ml.p5.48xlarge",
    }
    plan = plan_with("aws-dev", endpoints={"churn": churn})
    assert [(f.policy, f.level) for f in plan.findings] == [("serving-accelerators", "mandatory")]
    # The same endpoint under prod's pack config: any class.
    prod_findings = evaluate(plan.registrations, "prod")
    assert [f.policy for f in prod_findings if f.policy.startswith("serving-")] == []


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_shipped_endpoints_pass_every_serving_rule(stack: str) -> None:
    assert [f for f in planned(stack).findings if f.policy.startswith("serving-")] == []


def test_crossguard_reports_a_prod_endpoint_on_one_replica_without_alarms() -> None:
    registrations = [
        r
        for r in planned("aws-prod").registrations
        if r.type != "aws:cloudwatch/metricAlarm:MetricAlarm"
    ]
    registrations = [
        dataclasses.replace(r, inputs={**r.inputs, "minCapacity": 1})
        if r.type == "aws:appautoscaling/target:Target"
        else r
        for r in registrations
    ]
    found = sorted((f.policy, f.urn.rsplit("::", 1)[1]) for f in evaluate(registrations, "prod"))
    assert found == [
        ("serving-alarms", "mlops-aws-prod-serve-churn-endpoint"),
        ("serving-replicas", "mlops-aws-prod-serve-churn-scaling"),
    ]
