"""The locked-down Cloud Storage bucket every lake store is built from.

Each bucket gets: uniform bucket-level access (no object ACLs), public access
prevention enforced, versioning, a soft delete window, the platform key as its
default CMEK, lifecycle rules, labels, and `force_destroy` off. Its name is
autonamed by Pulumi (bucket names are global), and it waits for the grants it
needs (`requires`) so the first write already finds the key usable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline, EncryptionKey
from infra.gcp.context import labels
from infra.settings import LakeSettings

SECONDS_PER_DAY = 24 * 3600


@dataclass(frozen=True)
class BucketSpec:
    labels: Mapping[str, str]
    lifecycle_rules: Sequence[Mapping[str, Any]]
    # The log bucket this one writes access logs to, with an object prefix; None for none.
    log_bucket: pulumi.Output[str] | None = None
    log_prefix: str | None = None
    # Resources that must exist before the bucket: its CMEK grant, its log writer.
    requires: Sequence[pulumi.Resource] = ()


def _rule(action: dict[str, Any], condition: dict[str, Any]) -> dict[str, Any]:
    return {"action": action, "condition": condition}


def base_rules(lake: LakeSettings) -> list[dict[str, Any]]:
    """Rules every bucket carries: stale uploads aborted, superseded versions expired."""
    retention = lake.retention
    return [
        _rule(
            {"type": "AbortIncompleteMultipartUpload"},
            {"age": retention.abort_incomplete_upload_days},
        ),
        _rule(
            {"type": "Delete"},
            {
                "days_since_noncurrent_time": retention.noncurrent_version_days,
                "with_state": "ARCHIVED",
            },
        ),
    ]


def zone_lifecycle(lake: LakeSettings) -> list[dict[str, Any]]:
    """Base rules plus tiering. Each move names the classes it starts from, so an
    object already in a colder class is never moved back to a warmer one."""
    tiering = lake.tiering
    rules = [
        *base_rules(lake),
        _rule(
            {"type": "SetStorageClass", "storage_class": "NEARLINE"},
            {"age": tiering.cool_after_days, "matches_storage_classes": ["STANDARD"]},
        ),
    ]
    if tiering.archive_after_days is not None:
        rules.append(
            _rule(
                {"type": "SetStorageClass", "storage_class": "ARCHIVE"},
                {
                    "age": tiering.archive_after_days,
                    "matches_storage_classes": ["STANDARD", "NEARLINE"],
                },
            )
        )
    return rules


def log_lifecycle(lake: LakeSettings) -> list[dict[str, Any]]:
    """Base rules plus expiry of access logs after `accessLogs.retentionDays`."""
    return [
        *base_rules(lake),
        _rule({"type": "Delete"}, {"age": lake.access_logs.retention_days}),
    ]


def secure_bucket(
    owner: pulumi.ComponentResource,
    name: str,
    spec: BucketSpec,
    *,
    key: EncryptionKey,
    lake: LakeSettings,
    baseline: Baseline,
) -> gcp.storage.Bucket:
    logging = None
    if spec.log_bucket is not None:
        logging = {"log_bucket": spec.log_bucket, "log_object_prefix": spec.log_prefix}
    return gcp.storage.Bucket(
        name,
        location=baseline.region,
        storage_class="STANDARD",
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning={"enabled": True},
        soft_delete_policy={
            "retention_duration_seconds": lake.retention.soft_delete_days * SECONDS_PER_DAY
        },
        encryption={"default_kms_key_name": key.id},
        lifecycle_rules=list(spec.lifecycle_rules),
        logging=logging,
        labels=labels(baseline, spec.labels),
        force_destroy=False,
        opts=baseline.stateful(owner, depends_on=list(spec.requires)),
    )
