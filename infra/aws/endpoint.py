"""`mlops:aws:ModelEndpoint`: a SageMaker real-time endpoint, private, autoscaled,
capturing its traffic into the lake and rolled out blue/green.

A new model version is a new SageMaker model and a new endpoint configuration
(both immutable, so both are autonamed and replaced create-before-delete); the
endpoint itself only updates, shifting traffic to the new fleet in the
rollout's steps and rolling back if any of its alarms fires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.context import AwsAccount, https_rule, policy_document
from infra.aws.key import USAGE_ACTIONS
from infra.catalogs import model_monitor_image, sagemaker_local_storage
from infra.common import Baseline, EncryptionKey
from infra.settings import BaselineRef, EndpointSettings

VARIANT = "primary"
CAPTURE_PREFIX = "capture"
MONITORING_PREFIX = "monitoring"
# Model Monitor's analyzer reads captured traffic and writes reports here, inside its container.
MONITOR_INPUT = "/opt/ml/processing/input/endpoint"
MONITOR_OUTPUT = "/opt/ml/processing/output"
MONITOR_INSTANCE = "ml.m5.xlarge"
MONITOR_VOLUME_GB = 20
# Model Monitor's cron forms: hourly, every 6 or 12 hours, daily.
SCHEDULES = {
    1: "cron(0 * ? * * *)",
    6: "cron(0 */6 ? * * *)",
    12: "cron(0 */12 ? * * *)",
    24: "cron(0 0 ? * * *)",
}
# Hosting needs these on any resource: SageMaker places the model's network
# interfaces in the stack's subnets as the runtime role.
VPC_ACTIONS = sorted(
    [
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
    ]
)
ROUTING = {"allAtOnce": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
CUSTOM_METRICS = {"cpuUtilization": "CPUUtilization", "gpuUtilization": "GPUUtilization"}


@dataclass(frozen=True)
class ServingPlacement:
    """Where endpoints run and what they read: the stack's private network and
    the stack's stores, registries and runtime role."""

    vpc_id: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    vpc_cidr: str
    bucket_names: Mapping[str, pulumi.Output[str]]
    repository_urls: Mapping[str, pulumi.Output[str]]
    model_group: pulumi.Output[str] | None
    runtime_role: aws.iam.Role


@dataclass(frozen=True)
class ModelEndpointArgs:
    baseline: Baseline
    account: AwsAccount
    endpoint: str
    settings: EndpointSettings
    placement: ServingPlacement
    encryption: EncryptionKey
    capture_zone: str
    # Where alarms and drift findings go (the alert route's topic).
    alert_actions: Sequence[pulumi.Output[str]]
    # The drift baseline's folder in the lake; None when drift is not checked.
    drift_baseline: BaselineRef | None = None


def _s3(bucket: pulumi.Input[str], key: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("s3://", bucket, "/", key)


class ModelEndpoint(pulumi.ComponentResource):
    """A SageMaker model run by the stack's runtime role in the stack's private
    subnets, behind a security group that only reaches the VPC's endpoints and
    S3, with network isolation as the settings ask; an endpoint configuration
    encrypted with the platform key (instance types with local NVMe storage are
    encrypted in hardware instead) that captures requests and responses into
    the lake under the platform key; the endpoint, `mlops-<stack>-<name>`, with
    a blue/green rollout that its 5XX and latency alarms roll back; target
    tracking autoscaling between the replica bounds; and a role policy that lets
    the runtime role read this model's artifact, write its capture prefix, use
    the key and write its logs and metrics, nothing more."""

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:ModelEndpoint", name, {}, opts)
        self._args = args
        baseline, settings = args.baseline, args.settings
        self.endpoint_name = baseline.namer.name(args.endpoint)
        permissions = self._runtime_policy(name)
        self.security_group = self._security_group(name)
        self.model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=args.placement.runtime_role.arn,
            primary_container=self._container(),
            vpc_config={
                "subnets": args.placement.subnet_ids,
                "security_group_ids": [self.security_group.id],
            },
            enable_network_isolation=settings.network_isolation,
            tags=self._tags(),
            # The role must hold its permissions before SageMaker checks them.
            opts=baseline.child(self, depends_on=[permissions]),
        )
        self.config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[
                {
                    "variant_name": VARIANT,
                    "model_name": self.model.name,
                    "instance_type": settings.instance_type,
                    "initial_instance_count": settings.min_replicas,
                    "initial_variant_weight": 1,
                }
            ],
            data_capture_config=self._capture(),
            tags=self._tags(),
            # Immutable: autonamed, so a change creates the new one before the old goes.
            opts=baseline.child(self),
            **self._volume_key(),
        )
        self.alarms = self._alarms(name)
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=self.endpoint_name,
            endpoint_config_name=self.config.name,
            deployment_config=self._deployment(),
            tags=self._tags(),
            opts=baseline.child(self),
        )
        self._autoscaling(name)
        self.monitor: aws.sagemaker.MonitoringSchedule | None = None
        if args.drift_baseline is not None:
            self.monitor = self._drift_monitor(name, args.drift_baseline)
        self.register_outputs(
            {"endpointName": self.endpoint.name, "endpointArn": self.endpoint.arn}
        )

    def _tags(self) -> dict[str, str]:
        return {**self._args.baseline.tags, "endpoint": self._args.endpoint}

    @property
    def _capture_key(self) -> str:
        return f"{CAPTURE_PREFIX}/{self._args.endpoint}/"

    def _container(self) -> dict[str, Any]:
        args = self._args
        model, placement = args.settings.model, args.placement
        if model.registry_version is not None:
            assert placement.model_group is not None  # settings require the registry
            package = pulumi.Output.concat(
                "model-package/", placement.model_group, f"/{model.registry_version}"
            )
            return {"model_package_name": args.account.arn("sagemaker", package)}
        assert model.image is not None  # settings require an image without a version
        url = placement.repository_urls[model.image.repository]
        pin = f":{model.image.tag}" if model.image.tag else f"@{model.image.digest}"
        container: dict[str, Any] = {"image": pulumi.Output.concat(url, pin), "mode": "SingleModel"}
        if model.artifact is not None:
            bucket = placement.bucket_names[model.artifact.zone]
            container["model_data_url"] = _s3(bucket, model.artifact.path)
        return container

    def _capture(self) -> dict[str, Any]:
        args = self._args
        bucket = args.placement.bucket_names[args.capture_zone]
        percent = args.settings.data_capture.percent
        return {
            "enable_capture": percent > 0,
            "initial_sampling_percentage": percent,
            "destination_s3_uri": _s3(bucket, self._capture_key),
            "kms_key_id": args.encryption.id,
            "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
            "capture_content_type_header": {"json_content_types": ["application/json"]},
        }

    def _volume_key(self) -> dict[str, Any]:
        """SageMaker refuses a KmsKeyId for instance types with local NVMe storage,
        which it encrypts in hardware."""
        if sagemaker_local_storage(self._args.settings.instance_type):
            return {}
        return {"kms_key_arn": self._args.encryption.id}

    def _deployment(self) -> dict[str, Any]:
        rollout = self._args.settings.rollout
        wait = rollout.wait_minutes * 60
        routing: dict[str, Any] = {
            "type": ROUTING[rollout.strategy],
            "wait_interval_in_seconds": wait,
        }
        if rollout.strategy == "canary":
            routing["canary_size"] = {"type": "CAPACITY_PERCENT", "value": rollout.canary_percent}
        elif rollout.strategy == "linear":
            routing["linear_step_size"] = {
                "type": "CAPACITY_PERCENT",
                "value": rollout.linear_step_percent,
            }
        return {
            "blue_green_update_policy": {
                "traffic_routing_configuration": routing,
                # The old fleet stays this long after the shift, ready to take traffic back.
                "termination_wait_in_seconds": wait,
            },
            "auto_rollback_configuration": {
                "alarms": [{"alarm_name": alarm.name} for alarm in self.alarms]
            },
        }

    def _alarms(self, name: str) -> list[aws.cloudwatch.MetricAlarm]:
        alarms = self._args.settings.alarms
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": VARIANT}
        common = {
            "namespace": "AWS/SageMaker",
            "dimensions": dimensions,
            "period": 60,
            "evaluation_periods": alarms.evaluation_minutes,
            "comparison_operator": "GreaterThanThreshold",
            # No traffic is not a failure; a rollout is judged on requests.
            "treat_missing_data": "notBreaching",
            "alarm_actions": list(self._args.alert_actions),
            "ok_actions": list(self._args.alert_actions),
            "tags": self._tags(),
            "opts": self._args.baseline.child(self),
        }
        errors = aws.cloudwatch.MetricAlarm(
            f"{name}-5xx",
            alarm_description=f"{self.endpoint_name}: 5XX errors from the model",
            metric_name="Invocation5XXErrors",
            statistic="Sum",
            threshold=alarms.errors_per_minute,
            **common,
        )
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-latency",
            alarm_description=f"{self.endpoint_name}: p99 model latency",
            metric_name="ModelLatency",
            extended_statistic="p99",
            # ModelLatency is reported in microseconds.
            threshold=alarms.latency_p99_ms * 1000,
            **common,
        )
        return [errors, latency]

    def _autoscaling(self, name: str) -> None:
        settings = self._args.settings
        scaling = settings.autoscaling
        target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="sagemaker",
            resource_id=pulumi.Output.concat(
                "endpoint/", self.endpoint.name, f"/variant/{VARIANT}"
            ),
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=settings.min_replicas,
            max_capacity=settings.max_replicas,
            tags=self._tags(),
            opts=self._args.baseline.child(self),
        )
        tracking: dict[str, Any] = {
            "target_value": scaling.target,
            "scale_in_cooldown": scaling.scale_in_cooldown_seconds,
            "scale_out_cooldown": scaling.scale_out_cooldown_seconds,
        }
        if scaling.metric == "invocationsPerReplica":
            tracking["predefined_metric_specification"] = {
                "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
            }
        else:
            tracking["customized_metric_specification"] = {
                "metric_name": CUSTOM_METRICS[scaling.metric],
                "namespace": "/aws/sagemaker/Endpoints",
                "dimensions": [
                    {"name": "EndpointName", "value": self.endpoint_name},
                    {"name": "VariantName", "value": VARIANT},
                ],
                "statistic": "Average",
                "unit": "Percent",
            }
        aws.appautoscaling.Policy(
            f"{name}-scaling",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=tracking,
            opts=self._args.baseline.child(self),
        )

    def _monitoring_uri(self) -> pulumi.Output[str]:
        args = self._args
        bucket = args.placement.bucket_names[args.capture_zone]
        return _s3(bucket, f"{MONITORING_PREFIX}/{args.endpoint}")

    def _drift_monitor(self, name: str, baseline: BaselineRef) -> aws.sagemaker.MonitoringSchedule:
        """Model Monitor's data quality check of the captured inputs against the
        baseline's statistics and constraints, on the schedule, in the endpoint's
        subnets and security group with network isolation, writing reports under
        `monitoring/<endpoint>/` in the capture zone, all under the platform key."""
        args = self._args
        baseline_uri = _s3(args.placement.bucket_names[baseline.zone], baseline.path)
        key = args.encryption.id
        definition = aws.sagemaker.DataQualityJobDefinition(
            f"{name}-drift",
            role_arn=args.placement.runtime_role.arn,
            data_quality_app_specification={
                "image_uri": model_monitor_image(args.baseline.region),
                # Drift per feature, as CloudWatch metrics besides the report.
                "environment": {"publish_cloudwatch_metrics": "Enabled"},
            },
            data_quality_baseline_config={
                "constraints_resource": {
                    "s3_uri": pulumi.Output.concat(baseline_uri, "/constraints.json")
                },
                "statistics_resource": {
                    "s3_uri": pulumi.Output.concat(baseline_uri, "/statistics.json")
                },
            },
            data_quality_job_input={
                "endpoint_input": {"endpoint_name": self.endpoint.name, "local_path": MONITOR_INPUT}
            },
            data_quality_job_output_config={
                "kms_key_id": key,
                "monitoring_outputs": {
                    "s3_output": {
                        "s3_uri": self._monitoring_uri(),
                        "local_path": MONITOR_OUTPUT,
                        "s3_upload_mode": "EndOfJob",
                    }
                },
            },
            job_resources={
                "cluster_config": {
                    "instance_count": 1,
                    "instance_type": MONITOR_INSTANCE,
                    "volume_size_in_gb": MONITOR_VOLUME_GB,
                    "volume_kms_key_id": key,
                }
            },
            network_config={
                "enable_network_isolation": True,
                "enable_inter_container_traffic_encryption": True,
                "vpc_config": {
                    "subnets": args.placement.subnet_ids,
                    "security_group_ids": [self.security_group.id],
                },
            },
            stopping_condition={"max_runtime_in_seconds": 3600},
            tags=self._tags(),
            # Immutable: autonamed, replaced create-before-delete with its schedule.
            opts=args.baseline.child(self),
        )
        return aws.sagemaker.MonitoringSchedule(
            f"{name}-drift",
            monitoring_schedule_config={
                "monitoring_job_definition_name": definition.name,
                "monitoring_type": "DataQuality",
                "schedule_config": {
                    "schedule_expression": SCHEDULES[args.settings.monitoring.schedule_hours]
                },
            },
            tags=self._tags(),
            opts=args.baseline.child(self),
        )

    def _security_group(self, name: str) -> aws.ec2.SecurityGroup:
        args = self._args
        baseline = args.baseline
        group = aws.ec2.SecurityGroup(
            f"{name}-model",
            vpc_id=args.placement.vpc_id,
            description=f"SageMaker model {args.endpoint}: HTTPS to the VPC's endpoints and S3",
            # No inline rules: the rules below are resources of their own (mixing
            # both makes each overwrite the other). The provider removes AWS's
            # default allow-all egress; nothing connects in, SageMaker invokes it.
            tags={**self._tags(), "Name": f"{name}-model"},
            opts=baseline.child(self),
        )
        egress = aws.vpc.SecurityGroupEgressRule
        https_rule(
            egress,
            f"{name}-model-endpoints",
            group.id,
            "HTTPS to the VPC's interface endpoints",
            baseline.child(self),
            cidr_ipv4=args.placement.vpc_cidr,
        )
        s3 = aws.ec2.get_prefix_list_output(name=f"com.amazonaws.{baseline.region}.s3")
        https_rule(
            egress,
            f"{name}-model-s3",
            group.id,
            "HTTPS to S3 through the gateway endpoint",
            baseline.child(self),
            prefix_list_id=s3.id,
        )
        return group

    def _monitor_statements(self, baseline: BaselineRef) -> list[dict[str, Any]]:
        """The drift check reads the baseline and the captured traffic and writes its reports."""
        args = self._args
        partition = args.account.partition
        buckets = args.placement.bucket_names

        def objects(bucket: pulumi.Output[str], prefix: str) -> pulumi.Output[str]:
            return pulumi.Output.concat("arn:", partition, ":s3:::", bucket, "/", prefix, "*")

        capture = buckets[args.capture_zone]
        return [
            {
                "Sid": "DriftReadsBaselineAndCapture",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [
                    objects(buckets[baseline.zone], f"{baseline.path}/"),
                    objects(capture, self._capture_key),
                ],
            },
            {
                "Sid": "DriftListsCapture",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": pulumi.Output.concat("arn:", partition, ":s3:::", capture),
                "Condition": {"StringLike": {"s3:prefix": [f"{self._capture_key}*"]}},
            },
            {
                "Sid": "DriftWritesReports",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": objects(capture, f"{MONITORING_PREFIX}/{args.endpoint}/"),
            },
        ]

    def _runtime_policy(self, name: str) -> aws.iam.RolePolicy:
        args = self._args
        account, settings, placement = args.account, args.settings, args.placement
        statements: list[dict[str, Any]] = []
        if settings.model.artifact is not None:
            bucket = placement.bucket_names[settings.model.artifact.zone]
            statements.append(
                {
                    "Sid": "ReadModelArtifact",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": pulumi.Output.concat(
                        "arn:",
                        account.partition,
                        ":s3:::",
                        bucket,
                        "/",
                        settings.model.artifact.path,
                    ),
                }
            )
        capture = placement.bucket_names[args.capture_zone]
        if args.drift_baseline is not None:
            statements += self._monitor_statements(args.drift_baseline)
        statements += [
            {
                "Sid": "WriteCapture",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(
                    "arn:", account.partition, ":s3:::", capture, "/", self._capture_key, "*"
                ),
            },
            {
                "Sid": "UsePlatformKey",
                "Effect": "Allow",
                "Action": [*USAGE_ACTIONS, "kms:CreateGrant"],
                "Resource": args.encryption.id,
            },
            {
                "Sid": "WriteEndpointLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [
                    account.arn("logs", "log-group:/aws/sagemaker/Endpoints/*"),
                    account.arn("logs", "log-group:/aws/sagemaker/ProcessingJobs:*"),
                ],
            },
            {
                "Sid": "WriteEndpointMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                # PutMetricData takes no resource; the namespace narrows it.
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        # Endpoints' own metrics, and Model Monitor's drift metrics.
                        "cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/Endpoints/*"]
                    }
                },
            },
            {
                "Sid": "PlaceInTheNetwork",
                "Effect": "Allow",
                "Action": VPC_ACTIONS,
                "Resource": "*",
            },
        ]
        return aws.iam.RolePolicy(
            f"{name}-runtime",
            role=placement.runtime_role.id,
            policy=policy_document(*statements),
            opts=args.baseline.child(self),
        )
