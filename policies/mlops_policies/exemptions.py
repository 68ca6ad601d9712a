"""Known exceptions: each has an id, the rule it relaxes, a reason and a selector."""

from __future__ import annotations

from mlops_policies.model import Exemption, Resource


def _access_log_bucket(resource: Resource) -> bool:
    tags = resource.props.get("tags") or {}
    return resource.type == "aws:s3/bucket:Bucket" and tags.get("purpose") == "access-logs"


def _gcp_access_log_bucket(resource: Resource) -> bool:
    labels = resource.props.get("labels") or {}
    return resource.type == "gcp:storage/bucket:Bucket" and labels.get("purpose") == "access-logs"


EXEMPTIONS: tuple[Exemption, ...] = (
    Exemption(
        id="EX-001",
        policy="storage-cmek",
        reason="S3 server access logging delivers only to buckets encrypted with SSE-S3",
        applies=_access_log_bucket,
    ),
    Exemption(
        id="EX-002",
        policy="storage-access-logging",
        reason="the access-log bucket is the log store; logging it to itself would loop",
        applies=_access_log_bucket,
    ),
    Exemption(
        id="EX-101",
        policy="storage-access-logging",
        reason="the GCS access-log bucket is the log store; logging it to itself would loop",
        applies=_gcp_access_log_bucket,
    ),
)


def exemption_for(policy: str, resource: Resource | None) -> Exemption | None:
    if resource is None:
        return None
    for exemption in EXEMPTIONS:
        if exemption.policy == policy and exemption.applies(resource):
            return exemption
    return None
