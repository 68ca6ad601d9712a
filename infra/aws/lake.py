"""`mlops:aws:DataLake`: one encrypted, versioned, private bucket per zone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.bucket import BucketParts, BucketSpec, secure_bucket
from infra.aws.context import AwsAccount
from infra.common import Baseline, EncryptionKey
from infra.settings import LakeSettings


@dataclass(frozen=True)
class DataLakeArgs:
    baseline: Baseline
    account: AwsAccount
    lake: LakeSettings
    encryption: EncryptionKey


def _base_rules(lake: LakeSettings) -> list[dict[str, Any]]:
    return [
        {
            "id": "abort-incomplete-uploads",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "abort_incomplete_multipart_upload": {
                "days_after_initiation": lake.retention.abort_incomplete_upload_days
            },
        },
        {
            "id": "expire-noncurrent-versions",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrent_version_expiration": {
                "noncurrent_days": lake.retention.noncurrent_version_days
            },
        },
    ]


def zone_lifecycle(lake: LakeSettings) -> list[dict[str, Any]]:
    transitions = [{"days": lake.tiering.cool_after_days, "storage_class": "STANDARD_IA"}]
    if lake.tiering.archive_after_days is not None:
        transitions.append({"days": lake.tiering.archive_after_days, "storage_class": "GLACIER_IR"})
    tiering = {
        "id": "tiering",
        "status": "Enabled",
        "filter": {"prefix": ""},
        "transitions": transitions,
    }
    return [*_base_rules(lake), tiering]


def log_lifecycle(lake: LakeSettings) -> list[dict[str, Any]]:
    expire = {
        "id": "expire-access-logs",
        "status": "Enabled",
        "filter": {"prefix": ""},
        "expiration": {"days": lake.access_logs.retention_days},
    }
    return [*_base_rules(lake), expire]


class DataLake(pulumi.ComponentResource):
    """One bucket per zone, each private (all four public access block flags,
    owner-enforced ownership, TLS-only policy), versioned, encrypted with the
    platform KMS key and an S3 bucket key, tiered and expired by lifecycle rules,
    and logging to a dedicated access-log bucket that is locked down the same
    way (SSE-S3, the only encryption S3 log delivery accepts). Buckets are
    protected and retained in prod."""

    def __init__(
        self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:DataLake", name, {}, opts)
        self._args = args
        zones = args.lake.zones
        self.logs: BucketParts | None = None
        if args.lake.access_logs.enabled:
            self.logs = self._log_bucket(name)
        self.zones: dict[str, BucketParts] = {zone: self._zone(name, zone) for zone in zones}
        self.bucket_names = {z: p.bucket.bucket for z, p in self.zones.items()}
        self.bucket_arns = {z: p.bucket.arn for z, p in self.zones.items()}
        self.register_outputs(
            {
                "bucketNames": self.bucket_names,
                "bucketArns": self.bucket_arns,
                "logBucket": self.logs.bucket.bucket if self.logs else None,
            }
        )

    def _zone(self, name: str, zone: str) -> BucketParts:
        args = self._args
        parts = secure_bucket(
            self,
            f"{name}-{zone}",
            BucketSpec(
                tags={"zone": zone, "purpose": "lake"},
                kms_key_arn=args.encryption.id,
                lifecycle_rules=zone_lifecycle(args.lake),
            ),
            args.baseline,
        )
        if self.logs is not None:
            aws.s3.BucketLogging(
                f"{name}-{zone}-logging",
                bucket=parts.bucket.bucket,
                target_bucket=self.logs.bucket.bucket,
                target_prefix=f"{zone}/",
                target_object_key_format={
                    "partitioned_prefix": {"partition_date_source": "EventTime"}
                },
                opts=args.baseline.child(self),
            )
        return parts

    def _log_bucket(self, name: str) -> BucketParts:
        args = self._args
        account = args.account

        def delivery(bucket_arn: pulumi.Output[str]) -> list[dict[str, Any]]:
            # S3 log delivery writes as the logging service, only for this account's buckets.
            return [
                {
                    "Sid": "AllowS3ServerAccessLogDelivery",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": pulumi.Output.concat(bucket_arn, "/*"),
                    "Condition": {"StringEquals": {"aws:SourceAccount": account.account_id}},
                }
            ]

        return secure_bucket(
            self,
            f"{name}-access-logs",
            BucketSpec(
                tags={"purpose": "access-logs"},
                kms_key_arn=None,
                lifecycle_rules=log_lifecycle(args.lake),
                extra_statements=delivery,
            ),
            args.baseline,
        )
