"""`mlops:gcp:DataLake`: one encrypted, versioned, private bucket per zone."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline, EncryptionKey
from infra.gcp.bucket import BucketSpec, log_lifecycle, secure_bucket, zone_lifecycle
from infra.gcp.context import GcpProject
from infra.gcp.key import grant_key_use
from infra.settings import LakeSettings

# Cloud Storage delivers usage logs as this Google group; it may only create objects.
LOG_WRITER = "group:cloud-storage-analytics@google.com"
LOG_WRITER_ROLE = "roles/storage.objectCreator"


@dataclass(frozen=True)
class DataLakeArgs:
    baseline: Baseline
    project: GcpProject
    lake: LakeSettings
    encryption: EncryptionKey


class DataLake(pulumi.ComponentResource):
    """One bucket per zone in the stack's region, each private (uniform bucket-level
    access, public access prevention enforced), versioned with a soft delete window,
    encrypted by default with the platform key (CMEK), tiered to Nearline and
    Archive and expired by lifecycle rules, and logging access to a dedicated log
    bucket that is locked down the same way, does not log to itself and expires
    logs after `accessLogs.retentionDays`. The Cloud Storage service agent is granted
    encrypt/decrypt on the platform key alone, and every bucket is created only
    after that grant, so CMEK works on first create. Buckets, and the grants that
    keep them readable and logged, are protected and retained in prod."""

    def __init__(
        self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:DataLake", name, {}, opts)
        self._args = args
        baseline = args.baseline
        self.key_grant = grant_key_use(
            self,
            f"{name}-storage-key-user",
            args.encryption,
            args.project.storage_agent(),
            baseline,
        )
        self.logs: gcp.storage.Bucket | None = None
        self.log_writer: gcp.storage.BucketIAMMember | None = None
        if args.lake.access_logs.enabled:
            self.logs, self.log_writer = self._log_bucket(name)
        self.zones = {zone: self._zone(name, zone) for zone in args.lake.zones}
        self.bucket_names = {zone: bucket.name for zone, bucket in self.zones.items()}
        self.bucket_urls = {zone: bucket.url for zone, bucket in self.zones.items()}
        self.register_outputs(
            {
                "bucketNames": self.bucket_names,
                "bucketUrls": self.bucket_urls,
                "logBucket": self.logs.name if self.logs else None,
            }
        )

    def _zone(self, name: str, zone: str) -> gcp.storage.Bucket:
        args = self._args
        requires: list[pulumi.Resource] = [self.key_grant]
        if self.log_writer is not None:
            requires.append(self.log_writer)
        spec = BucketSpec(
            labels={"zone": zone, "purpose": "lake"},
            lifecycle_rules=zone_lifecycle(args.lake),
            log_bucket=self.logs.name if self.logs else None,
            log_prefix=zone,
            requires=requires,
        )
        return secure_bucket(
            self,
            f"{name}-{zone}",
            spec,
            key=args.encryption,
            lake=args.lake,
            baseline=args.baseline,
        )

    def _log_bucket(self, name: str) -> tuple[gcp.storage.Bucket, gcp.storage.BucketIAMMember]:
        args = self._args
        spec = BucketSpec(
            labels={"purpose": "access-logs"},
            lifecycle_rules=log_lifecycle(args.lake),
            requires=[self.key_grant],
        )
        bucket = secure_bucket(
            self,
            f"{name}-access-logs",
            spec,
            key=args.encryption,
            lake=args.lake,
            baseline=args.baseline,
        )
        writer = gcp.storage.BucketIAMMember(
            f"{name}-access-logs-writer",
            bucket=bucket.name,
            role=LOG_WRITER_ROLE,
            member=LOG_WRITER,
            # Kept with the bucket in prod: a retained bucket without it would stop receiving logs.
            opts=args.baseline.stateful(self),
        )
        return bucket, writer
