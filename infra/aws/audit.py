"""`mlops:aws:AuditTrail`: who read or changed the lake, the registries, the keys
and the models.

A CloudTrail trail for the stack: management events (every API call to ECR,
KMS, SageMaker, IAM, ...; reads and writes) and S3 data events for the lake's
buckets, with log file validation, encrypted with the platform key, delivered
to an audit bucket locked down like the lake. In prod the bucket keeps every
log file write-once for `audit.retentionDays` (S3 Object Lock in the configured
mode); elsewhere object lock is on (it can only be turned on at creation) but
holds nothing by default.

An organization that already runs an organization trail records the same
management events centrally; this trail still adds what an organization trail
usually leaves out, the lake's data events, and keeps them with the stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.bucket import BucketSpec, secure_bucket
from infra.aws.context import AwsAccount, policy_document
from infra.common import Baseline, EncryptionKey
from infra.settings import CLOUDWATCH_RETENTION_DAYS, AuditSettings


@dataclass(frozen=True)
class AuditTrailArgs:
    baseline: Baseline
    account: AwsAccount
    settings: AuditSettings
    encryption: EncryptionKey
    lake_bucket_arns: Sequence[pulumi.Output[str]]
    production: bool
    # The lake's access-log bucket: who read the audit logs is logged too.
    access_log_bucket: pulumi.Output[str] | None = None


class AuditTrail(pulumi.ComponentResource):
    """The audit bucket (platform key, versioning, no public access, TLS only,
    log files expired after `retentionDays`, object lock) and the trail. With
    `audit.cloudWatchLogs`, the trail is also delivered to a log group encrypted
    with the platform key, through a role that may write only there."""

    def __init__(
        self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:AuditTrail", name, {}, opts)
        self._args = args
        baseline, account, settings = args.baseline, args.account, args.settings
        self.trail_name = baseline.namer.name("audit")
        trail_arn = account.arn("cloudtrail", f"trail/{self.trail_name}")
        days = settings.retention_days
        lock = (settings.lock_mode.upper(), days) if args.production else (None, 0)
        parts = secure_bucket(
            self,
            f"{name}-logs",
            BucketSpec(
                tags={"purpose": "audit"},
                kms_key_arn=args.encryption.id,
                lifecycle_rules=[
                    {
                        "id": "expire-audit-logs",
                        "status": "Enabled",
                        "filter": {},
                        "expiration": {"days": days},
                        "noncurrent_version_expiration": {"noncurrent_days": days},
                    }
                ],
                extra_statements=lambda arn: self._delivery(arn, trail_arn),
                object_lock=lock,
            ),
            baseline,
        )
        self.bucket = parts.bucket
        if args.access_log_bucket is not None:
            aws.s3.BucketLogging(
                f"{name}-logs-logging",
                bucket=self.bucket.bucket,
                target_bucket=args.access_log_bucket,
                target_prefix="audit/",
                target_object_key_format={
                    "partitioned_prefix": {"partition_date_source": "EventTime"}
                },
                opts=baseline.child(self),
            )
        logs, delivery = self._cloudwatch(name) if settings.cloud_watch_logs else ({}, [])
        self.trail = aws.cloudtrail.Trail(
            name,
            name=self.trail_name,
            s3_bucket_name=self.bucket.bucket,
            kms_key_id=args.encryption.id,
            enable_log_file_validation=True,
            include_global_service_events=True,
            is_multi_region_trail=False,
            enable_logging=True,
            advanced_event_selectors=self._selectors(),
            tags=dict(baseline.tags),
            # CloudTrail checks at creation that it may write to the bucket.
            opts=baseline.child(self, depends_on=[parts.policy, *delivery]),
            **logs,
        )
        self.register_outputs({"trailArn": self.trail.arn, "bucket": self.bucket.bucket})

    def _delivery(
        self, bucket_arn: pulumi.Output[str], trail_arn: pulumi.Output[str]
    ) -> list[Mapping[str, Any]]:
        """CloudTrail may read the bucket's ACL and write under AWSLogs/<account>/,
        for this trail only."""
        account = self._args.account
        source = {"StringEquals": {"aws:SourceArn": trail_arn}}
        return [
            {
                "Sid": "CloudTrailChecksTheBucket",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": source,
            },
            {
                "Sid": "CloudTrailWritesThisTrail",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(bucket_arn, "/AWSLogs/", account.account_id, "/*"),
                "Condition": {
                    "StringEquals": {
                        "aws:SourceArn": trail_arn,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    }
                },
            },
        ]

    def _selectors(self) -> list[dict[str, Any]]:
        """Every management event, and every object read and write in the lake."""
        lake = [pulumi.Output.concat(arn, "/") for arn in self._args.lake_bucket_arns]
        return [
            {
                "name": "Management events",
                "field_selectors": [{"field": "eventCategory", "equals": ["Management"]}],
            },
            {
                "name": "Lake object reads and writes",
                "field_selectors": [
                    {"field": "eventCategory", "equals": ["Data"]},
                    {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                    {"field": "resources.ARN", "starts_withs": lake},
                ],
            },
        ]

    def _cloudwatch(self, name: str) -> tuple[dict[str, Any], list[pulumi.Resource]]:
        args = self._args
        baseline, account = args.baseline, args.account
        group = aws.cloudwatch.LogGroup(
            f"{name}-events",
            name=f"/mlops/{baseline.namer.prefix}/audit",
            retention_in_days=_log_retention(args.settings.retention_days),
            kms_key_id=args.encryption.id,
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )
        role = aws.iam.Role(
            f"{name}-delivery",
            assume_role_policy=policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account.account_id}},
                }
            ),
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-delivery",
            role=role.id,
            policy=policy_document(
                {
                    "Sid": "DeliverToTheAuditLogGroup",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": pulumi.Output.concat(group.arn, ":log-stream:*"),
                }
            ),
            opts=baseline.child(self),
        )
        return {
            "cloud_watch_logs_group_arn": pulumi.Output.concat(group.arn, ":*"),
            "cloud_watch_logs_role_arn": role.arn,
        }, [policy]


def _log_retention(days: int) -> int:
    """The shortest CloudWatch Logs retention that keeps `days` (at most ten years)."""
    return next((r for r in sorted(CLOUDWATCH_RETENTION_DAYS) if r >= days), 3653)
