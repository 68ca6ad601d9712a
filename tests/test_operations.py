"""Operating the models on mocks: one alert route per stack that every alarm uses,
drift monitors on every cloud, the audit trail, their settings and their rules."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import of_type, one, plan_with, planned, policy_doc
from mlops_policies.model import Resource
from mlops_policies.rules import operations

from infra.settings import SettingsError
from tools.mockcloud import ACCOUNT_ID, GCP_PROJECT_NUMBER
from tools.policy_run import evaluate

ADDRESS = "ml-oncall@example.com"


# The alert route


def test_aws_alarms_and_drift_findings_go_to_an_encrypted_topic() -> None:
    plan = planned("aws-prod")
    topic = one(plan, "aws:sns/topic:Topic")
    key = one(plan, "aws:kms/key:Key")
    assert key.urn in topic.property_dependencies["kmsMasterKeyId"]
    subscriptions = of_type(plan, "aws:sns/topicSubscription:TopicSubscription")
    assert [(s.inputs["protocol"], s.inputs["endpoint"]) for s in subscriptions] == [
        ("email", ADDRESS)
    ]
    alarms = of_type(plan, "aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == 2
    for alarm in alarms:
        assert topic.urn in alarm.property_dependencies["alarmActions"]
        assert alarm.inputs["alarmActions"] == alarm.inputs["okActions"]
    policy = policy_doc(one(plan, "aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {
        "Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    }
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    rule = one(plan, "aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule.inputs["eventPattern"])["detail"]["ExitMessage"] == [
        {"prefix": "CompletedWithViolations"}
    ]
    target = one(plan, "aws:cloudwatch/eventTarget:EventTarget")
    assert topic.urn in target.property_dependencies["arn"]


def test_gcp_and_azure_alerts_notify_the_route() -> None:
    gcp = planned("gcp-prod")
    (channel,) = of_type(gcp, "gcp:monitoring/notificationChannel:NotificationChannel")
    assert (channel.inputs["type"], channel.inputs["labels"]) == (
        "email",
        {"email_address": ADDRESS},
    )
    for policy in of_type(gcp, "gcp:monitoring/alertPolicy:AlertPolicy"):
        assert channel.urn in policy.property_dependencies["notificationChannels"]
    azure = planned("azure-prod")
    group = one(azure, "azure-native:monitor:ActionGroup")
    assert group.inputs["emailReceivers"][0]["emailAddress"] == ADDRESS
    assert group.inputs["emailReceivers"][0]["useCommonAlertSchema"] is True
    assert len(group.inputs["groupShortName"]) <= 12
    for alert in of_type(azure, "azure-native:monitor:MetricAlert"):
        assert group.urn in alert.property_dependencies["actions"]


WEBHOOK = {"emails": [ADDRESS], "webhook": "https://hooks.example.com/ml"}


@pytest.fixture(scope="module")
def aws_variant():
    """aws-dev with a webhook and CloudWatch delivery of the trail."""
    return plan_with("aws-dev", alerts=WEBHOOK, audit={"cloudWatchLogs": True})


GCP_CHURN = {
    "model": {
        "image": {"repository": "serving", "tag": "1"},
        "artifact": {"zone": "curated", "path": "models/churn/1/model.tar.gz"},
    },
    "instanceType": "n1-standard-4",
    "monitoring": {
        "baseline": {"zone": "features", "path": "training/churn"},
        "scheduleHours": 6,
        "driftThreshold": 0.2,
        "featureThresholds": {"age": 0.1},
        "samplingPercent": 50,
    },
}


@pytest.fixture(scope="module")
def gcp_variant():
    """gcp-dev with a webhook, serving an endpoint that captures nothing."""
    quiet = {**GCP_CHURN, "dataCapture": {"percent": 0}}
    return plan_with("gcp-dev", alerts=WEBHOOK, endpoints={"churn": quiet})


def test_a_webhook_joins_every_route(aws_variant, gcp_variant) -> None:
    protocols = sorted(
        s.inputs["protocol"]
        for s in of_type(aws_variant, "aws:sns/topicSubscription:TopicSubscription")
    )
    assert protocols == ["email", "https"]
    types = sorted(
        c.inputs["type"]
        for c in of_type(gcp_variant, "gcp:monitoring/notificationChannel:NotificationChannel")
    )
    assert types == ["email", "webhook_tokenauth"]


# Drift


def test_aws_drift_is_checked_privately_under_the_platform_key() -> None:
    plan = planned("aws-prod")
    job = one(plan, "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition")
    inputs = job.inputs
    assert inputs["dataQualityAppSpecification"]["imageUri"] == (
        "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )
    baseline = "s3://mlops-aws-prod-lake-curated/baselines/churn"
    config = inputs["dataQualityBaselineConfig"]
    assert config["statisticsResource"]["s3Uri"] == f"{baseline}/statistics.json"
    assert config["constraintsResource"]["s3Uri"] == f"{baseline}/constraints.json"
    output = inputs["dataQualityJobOutputConfig"]
    assert output["monitoringOutputs"]["s3Output"]["s3Uri"] == (
        "s3://mlops-aws-prod-lake-raw/monitoring/churn"
    )
    key = one(plan, "aws:kms/key:Key")
    assert key.urn in job.property_dependencies["dataQualityJobOutputConfig"]
    assert key.urn in job.property_dependencies["jobResources"]
    network = inputs["networkConfig"]
    assert network["enableNetworkIsolation"] is True
    assert network["enableInterContainerTrafficEncryption"] is True
    assert network["vpcConfig"]["subnets"] == plan.outputs["privateSubnetIds"]
    schedule = one(plan, "aws:sagemaker/monitoringSchedule:MonitoringSchedule")
    assert schedule.inputs["monitoringScheduleConfig"]["scheduleConfig"] == {
        "scheduleExpression": "cron(0 0 ? * * *)"
    }
    assert job.urn in schedule.property_dependencies["monitoringScheduleConfig"]


def test_drift_monitors_follow_the_monitoring_settings(gcp_variant) -> None:
    gcp = plan_with("gcp-dev", endpoints={"churn": GCP_CHURN})
    monitor = one(gcp, "pulumi-python:dynamic/gcp:VertexModelMonitor").inputs
    assert monitor["baselineUri"] == "gs://mlops-gcp-dev-lake-features/training/churn/*.csv"
    assert monitor["scheduleHours"] == 6
    assert monitor["samplingPercent"] == 50
    assert monitor["driftThresholds"] == {"default": 0.2, "features": {"age": 0.1}}
    assert monitor["notificationEmails"] == [ADDRESS]
    # No capture, or monitoring off: nothing to watch, no monitor.
    assert of_type(gcp_variant, "pulumi-python:dynamic/gcp:VertexModelMonitor") == []


def test_azure_drift_monitor_compares_collected_requests_with_the_baseline() -> None:
    plan = planned("azure-prod")
    schedule = one(plan, "azure-native:machinelearningservices:Schedule")
    props = schedule.inputs["properties"]
    assert props["trigger"] == {
        "triggerType": "Recurrence",
        "frequency": "Day",
        "interval": 1,
        "timeZone": "UTC",
    }
    definition = props["action"]["monitorDefinition"]
    signal = definition["signals"]["data-drift"]
    assert signal["signalType"] == "DataDrift"
    assert signal["productionData"]["uri"].startswith("azureml:churn-inputs:")
    assert signal["referenceData"]["uri"] == (
        "azureml://datastores/lake_curated/paths/baselines/churn/"
    )
    assert {t["threshold"]["value"] for t in signal["metricThresholds"]} == {0.3}
    assert definition["alertNotificationSettings"] == {
        "emailNotificationSettings": {"emails": [ADDRESS]}
    }
    assert definition["computeConfiguration"]["computeIdentity"] == {
        "computeIdentityType": "ManagedIdentity"
    }


# The audit trail


def test_aws_trail_is_validated_encrypted_and_locked_in_prod() -> None:
    prod, dev = planned("aws-prod"), planned("aws-dev")
    trail = one(prod, "aws:cloudtrail/trail:Trail")
    key = one(prod, "aws:kms/key:Key")
    assert trail.inputs["enableLogFileValidation"] is True
    assert key.urn in trail.property_dependencies["kmsKeyId"]
    selectors = {s["name"]: s["fieldSelectors"] for s in trail.inputs["advancedEventSelectors"]}
    assert selectors["Management events"] == [{"field": "eventCategory", "equals": ["Management"]}]
    lake = selectors["Lake object reads and writes"][2]["startsWiths"]
    assert sorted(lake) == [
        f"arn:aws:s3:::mlops-aws-prod-lake-{zone}/" for zone in ("curated", "features", "raw")
    ]
    lock = one(prod, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock.inputs["rule"] == {"defaultRetention": {"mode": "COMPLIANCE", "days": 365}}
    assert of_type(dev, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration") == []
    bucket = one(prod, "aws:s3/bucket:Bucket", "-audit-logs")
    assert bucket.inputs["objectLockEnabled"] is True and bucket.protect
    policy = policy_doc(
        one(prod, "aws:s3/bucketPolicy:BucketPolicy", "-audit-logs-policy").inputs["policy"]
    )
    write = next(s for s in policy["Statement"] if s.get("Sid") == "CloudTrailWritesThisTrail")
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == (
        f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/mlops-aws-prod-audit"
    )


def test_gcp_audit_logs_cover_the_platform_services_into_a_locked_bucket() -> None:
    prod = planned("gcp-prod")
    configs = {
        c.inputs["service"]: c.inputs["auditLogConfigs"]
        for c in of_type(prod, "gcp:projects/iAMAuditConfig:IAMAuditConfig")
    }
    assert set(configs) == {
        "storage.googleapis.com",
        "artifactregistry.googleapis.com",
        "cloudkms.googleapis.com",
        "aiplatform.googleapis.com",
    }
    for logs in configs.values():
        assert {c["logType"] for c in logs} == {"ADMIN_READ", "DATA_READ", "DATA_WRITE"}
    bucket = one(prod, "gcp:logging/projectBucketConfig:ProjectBucketConfig")
    assert bucket.inputs["locked"] is True and bucket.inputs["retentionDays"] == 365
    assert bucket.inputs["cmekSettings"]["kmsKeyName"].endswith(
        "/cryptoKeys/mlops-gcp-prod-key-key"
    )
    grant = one(prod, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "-audit-key-user")
    assert grant.inputs["member"] == (
        f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"
    )
    assert grant.urn in bucket.dependencies
    sink = one(prod, "gcp:logging/projectSink:ProjectSink")
    assert sink.inputs["destination"] == f"logging.googleapis.com/{bucket.name}" or (
        bucket.urn in sink.property_dependencies["destination"]
    )
    assert "cloudaudit.googleapis.com" in sink.inputs["filter"]
    assert (
        one(planned("gcp-dev"), "gcp:logging/projectBucketConfig:ProjectBucketConfig").inputs[
            "locked"
        ]
        is False
    )


def test_azure_audit_logs_cover_vaults_registry_and_workspace() -> None:
    prod = planned("azure-prod")
    workspace = one(prod, "azure-native:operationalinsights:Workspace", "-audit")
    assert workspace.inputs["retentionInDays"] == 365
    settings = [
        d
        for d in of_type(prod, "azure-native:monitor:DiagnosticSetting")
        if workspace.urn in d.property_dependencies.get("workspaceId", [])
    ]
    audited = {d.name.rsplit("-audit-", 1)[1] for d in settings}
    assert audited == {"vault", "bootstrap-vault", "registry", "ml-workspace"}
    for setting in settings:
        assert setting.inputs["logs"] == [{"categoryGroup": "audit", "enabled": True}]
    activity = one(prod, "azure-native:monitor:SubscriptionDiagnosticSetting")
    assert {log["category"] for log in activity.inputs["logs"]} >= {"Administrative", "Security"}
    off = plan_with("azure-dev", audit={"activityLog": False}, endpoints={})
    assert of_type(off, "azure-native:monitor:SubscriptionDiagnosticSetting") == []


# Settings


@pytest.mark.parametrize(
    ("stack", "overrides", "expected"),
    [
        (
            "aws-dev",
            {"alerts": {}},
            "stacks/Pulumi.aws-dev.yaml: mlops:alerts.emails: give at least one address (or a "
            "webhook): the endpoints' alarms and drift findings would notify nobody",
        ),
        (
            "aws-dev",
            {"alerts": {"emails": ["not-an-address"]}},
            "stacks/Pulumi.aws-dev.yaml: mlops:alerts.emails[0]: 'not-an-address' is not a valid "
            "email address (name@domain)",
        ),
        (
            "aws-dev",
            {"alerts": {"emails": [ADDRESS], "webhook": "http://plain.example.com"}},
            "stacks/Pulumi.aws-dev.yaml: mlops:alerts.webhook: 'http://plain.example.com' is not "
            "a valid webhook (an https:// URL)",
        ),
        (
            "gcp-dev",
            {"audit": {"cloudWatchLogs": True}},
            "stacks/Pulumi.gcp-dev.yaml: mlops:audit.cloudWatchLogs: applies to aws only; "
            "remove it",
        ),
        (
            "azure-dev",
            {"audit": {"retentionDays": 1000}},
            "stacks/Pulumi.azure-dev.yaml: mlops:audit.retentionDays: 1000 is outside what Log "
            "Analytics keeps (30 to 730 days)",
        ),
    ],
)
def test_bad_operations_settings_are_one_line(stack: str, overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        plan_with(stack, **overrides)
    assert str(caught.value) == expected


def test_a_baseline_outside_the_lake_is_one_line() -> None:
    churn = {
        "model": {"image": {"repository": "serving", "tag": "1"}},
        "instanceType": "ml.m5.large",
        "monitoring": {"baseline": {"zone": "gold", "path": "baselines/churn"}},
    }
    with pytest.raises(SettingsError) as caught:
        plan_with("aws-dev", endpoints={"churn": churn})
    assert str(caught.value) == (
        "stacks/Pulumi.aws-dev.yaml: mlops:endpoints.churn.monitoring.baseline.zone: 'gold' is "
        "not a lake zone (raw, curated, features)"
    )


def test_cloudwatch_delivery_adds_an_encrypted_group_and_a_narrow_role(aws_variant) -> None:
    plan = aws_variant
    group = one(plan, "aws:cloudwatch/logGroup:LogGroup", "-audit-events")
    assert group.inputs["retentionInDays"] == 365
    trail = one(plan, "aws:cloudtrail/trail:Trail")
    assert group.urn in trail.property_dependencies["cloudWatchLogsGroupArn"]
    policy = policy_doc(
        one(plan, "aws:iam/rolePolicy:RolePolicy", "-audit-delivery").inputs["policy"]
    )
    assert policy["Statement"][0]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]


# Rules


def res(type_: str, props: dict, urn: str | None = None, deps: dict | None = None) -> Resource:
    return Resource(type_, urn or f"urn:pulumi:t::mlops::{type_}::r", "r", props, False, deps or {})


def test_an_alarm_without_an_action_is_refused_on_every_cloud() -> None:
    assert list(operations.routed(res(operations.AWS_ALARM, {"alarmActions": ["arn"]}))) == []
    assert list(operations.routed(res(operations.AWS_ALARM, {"alarmActions": []}))) == [
        "alarm notifies nobody (alarmActions is empty)"
    ]
    assert list(operations.routed(res(operations.GCP_ALERT, {"notificationChannels": ["c"]}))) == []
    assert len(list(operations.routed(res(operations.GCP_ALERT, {})))) == 1
    assert list(operations.routed(res(operations.AZURE_ALERT, {"actions": [{"a": 1}]}))) == []
    assert len(list(operations.routed(res(operations.AZURE_ALERT, {"actions": []})))) == 1


def test_a_prod_endpoint_that_captures_needs_a_drift_monitor() -> None:
    config = res(
        operations.SM_CONFIG,
        {
            "tags": {"environment": "prod", "endpoint": "churn"},
            "dataCaptureConfig": {"enableCapture": True, "initialSamplingPercentage": 10},
        },
    )
    schedule = res(operations.SM_SCHEDULE, {"tags": {"endpoint": "churn"}})
    assert list(operations.drift_monitored([config, schedule])) == []
    assert [m for _u, m in operations.drift_monitored([config])] == [
        "prod endpoint churn captures traffic but nothing checks it for drift"
    ]
    dev = res(operations.SM_CONFIG, {**config.props, "tags": {"environment": "dev"}})
    assert list(operations.drift_monitored([dev])) == []


def test_crossguard_refuses_a_stack_without_its_trail_or_routes() -> None:
    plan = planned("aws-prod")
    without = [r for r in plan.registrations if r.type != operations.TRAIL]
    without = [
        dataclasses.replace(r, inputs={**r.inputs, "alarmActions": []})
        if r.type == operations.AWS_ALARM
        else r
        for r in without
    ]
    found = sorted({f.policy for f in evaluate(without, "prod")})
    assert found == ["alerts-routed", "audit-trail"]
    assert [f for f in plan.findings if f.policy in found] == []


@pytest.mark.parametrize(
    ("stack", "extra", "key", "why"),
    [
        ("gcp-dev", {"networkIsolation": False}, "networkIsolation", "Vertex AI and Azure ML"),
        ("azure-dev", {"networkIsolation": True}, "networkIsolation", "Vertex AI and Azure ML"),
        ("gcp-dev", {"dataCapture": {"zone": "raw"}}, "dataCapture.zone", "BigQuery"),
        (
            "gcp-dev",
            {"autoscaling": {"scaleInCooldownSeconds": 600}},
            "autoscaling.scaleInCooldownSeconds",
            "no cooldown",
        ),
    ],
)
def test_endpoint_keys_a_cloud_cannot_honour_are_refused(
    stack: str, extra: dict, key: str, why: str
) -> None:
    churn = dict(
        planned(stack).settings.endpoints["churn"].model_dump(by_alias=True, exclude_unset=True)
    )
    with pytest.raises(SettingsError) as caught:
        plan_with(stack, endpoints={"churn": {**churn, **extra}})
    cloud = stack.split("-", maxsplit=1)[0]
    line = str(caught.value)
    assert line.startswith(
        f"stacks/Pulumi.{stack}.yaml: mlops:endpoints.churn.{key}: has no effect on {cloud} ("
    )
    assert why in line and line.endswith("; remove it")
