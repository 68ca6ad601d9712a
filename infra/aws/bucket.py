"""The locked-down S3 bucket every lake store is built from.

Each bucket gets: owner-enforced object ownership (no ACLs), all four public
access block flags, versioning, default encryption, a bucket policy that
denies any request not made over TLS (plus any extra statements), and a
lifecycle configuration. Encryption is SSE-KMS with the platform key and an
S3 bucket key, except where S3 itself rules it out (access-log targets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.context import policy_document
from infra.common import Baseline


@dataclass(frozen=True)
class BucketSpec:
    tags: Mapping[str, str]
    kms_key_arn: pulumi.Output[str] | None
    lifecycle_rules: Sequence[Mapping[str, Any]]
    # Statements added after the TLS rule, given the bucket's ARN.
    extra_statements: Callable[[pulumi.Output[str]], Sequence[Mapping[str, Any]]] = field(
        default=lambda _arn: ()
    )
    # Object lock (create-only): None for none; otherwise the default retention as
    # (mode, days), or (None, 0) for a bucket that can lock objects but keeps none by default.
    object_lock: tuple[str | None, int] | None = None


@dataclass(frozen=True)
class BucketParts:
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    policy: aws.s3.BucketPolicy


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> dict[str, Any]:
    # A Deny with every principal is the only way to refuse plain HTTP; it grants nothing.
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _encryption_rule(kms_key_arn: pulumi.Output[str] | None) -> dict[str, Any]:
    if kms_key_arn is None:
        return {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}
    return {
        "apply_server_side_encryption_by_default": {
            "sse_algorithm": "aws:kms",
            "kms_master_key_id": kms_key_arn,
        },
        "bucket_key_enabled": True,
    }


def secure_bucket(
    owner: pulumi.ComponentResource, name: str, spec: BucketSpec, baseline: Baseline
) -> BucketParts:
    lock: dict[str, Any] = {"object_lock_enabled": True} if spec.object_lock else {}
    bucket = aws.s3.Bucket(
        name,
        force_destroy=False,
        tags={**baseline.tags, **spec.tags},
        opts=baseline.stateful(owner),
        **lock,
    )
    child = baseline.child(owner)
    if spec.object_lock and spec.object_lock[0] is not None:
        mode, days = spec.object_lock
        aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=bucket.bucket,
            object_lock_enabled="Enabled",
            rule={"default_retention": {"mode": mode, "days": days}},
            opts=child,
        )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.bucket,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=child,
    )
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.bucket,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.bucket,
        versioning_configuration={"status": "Enabled"},
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.bucket,
        rules=[_encryption_rule(spec.kms_key_arn)],
        opts=child,
    )
    policy = aws.s3.BucketPolicy(
        f"{name}-policy",
        bucket=bucket.bucket,
        policy=policy_document(
            deny_insecure_transport(bucket.arn), *spec.extra_statements(bucket.arn)
        ),
        # S3 rejects a policy written while the public access block is being applied.
        opts=baseline.child(owner, depends_on=[public_access_block]),
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=bucket.bucket,
        rules=list(spec.lifecycle_rules),
        opts=child,
    )
    return BucketParts(bucket=bucket, public_access_block=public_access_block, policy=policy)
