"""The AWS components on mocks: the inputs that make them private, encrypted and kept."""

from __future__ import annotations

import json

import pytest
from conftest import (
    configuring,
    created_as,
    of_type,
    one,
    plan_with,
    planned,
    platform_base,
    policy_doc,
)
from mlops_policies.catalog import STATEFUL_TYPES

BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
ZONES = ("raw", "curated", "features")


@pytest.fixture(scope="module")
def dev():
    return planned("aws-dev")


@pytest.fixture(scope="module")
def prod():
    return planned("aws-prod")


def _bucket(plan, role: str):
    return one(plan, BUCKET, f"-lake-{role}")


def test_one_bucket_per_zone_plus_the_log_bucket(dev) -> None:
    lake = [b for b in platform_base(dev) if b.type == BUCKET]
    assert sorted(b.inputs["tags"].get("zone", "-") for b in lake) == sorted(["-", *ZONES])
    for bucket in lake:
        assert bucket.inputs["forceDestroy"] is False
        assert bucket.parent.endswith("::mlops-aws-dev-lake")
        # Autonamed: an explicit name would block replacement on change.
        assert "bucket" not in bucket.inputs


def test_key_rotates_and_has_an_explicit_least_privilege_policy(dev) -> None:
    key = one(dev, KEY)
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["rotationPeriodInDays"] == 365
    assert key.inputs["deletionWindowInDays"] == 30
    statements = policy_doc(key.inputs["policy"])["Statement"]
    assert {s["Sid"] for s in statements} == {
        "AccountAdministersKey",
        "AccountUsesKeyThroughPlatformServices",
        "CloudWatchLogsEncryptsAccountLogGroups",
        "AlarmsPublishToTheEncryptedAlertTopic",
        "CloudTrailEncryptsAccountTrails",
        # A stack with pools: Auto Scaling launches nodes with encrypted volumes.
        "AutoScalingUsesKeyForNodeVolumes",
        "AutoScalingGrantsEc2TheKey",
    }
    for statement in statements:
        assert not [a for a in statement["Action"] if "*" in a]
    by_sid = {s["Sid"]: s for s in statements}
    for sid in ("AccountAdministersKey", "AccountUsesKeyThroughPlatformServices"):
        assert by_sid[sid]["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    # CloudWatch Logs uses the key as itself, for this account's log groups only.
    logs = by_sid["CloudWatchLogsEncryptsAccountLogGroups"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:111111111111:log-group:*"
        }
    }
    assert "kms:CreateGrant" not in logs["Action"]
    usage = next(s for s in statements if s["Sid"] == "AccountUsesKeyThroughPlatformServices")
    assert usage["Condition"]["StringEquals"]["kms:CallerAccount"] == "111111111111"
    assert "s3.eu-west-1.amazonaws.com" in usage["Condition"]["StringEquals"]["kms:ViaService"]
    alias = one(dev, "aws:kms/alias:Alias")
    assert alias.inputs["name"] == "alias/mlops-aws-dev-key"


@pytest.mark.parametrize("zone", ZONES)
def test_zone_bucket_is_private_versioned_and_kms_encrypted(dev, zone: str) -> None:
    bucket = _bucket(dev, zone)
    key = one(dev, KEY)
    sse = configuring(
        dev,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket,
    )
    rule = sse.inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": f"arn:aws:kms:eu-west-1:111111111111:key/{_key_id(key)}",
    }
    assert rule["bucketKeyEnabled"] is True
    pab = configuring(dev, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
    assert {k: v for k, v in pab.inputs.items() if k != "bucket"} == {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    ownership = configuring(dev, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket)
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    versioning = configuring(dev, "aws:s3/bucketVersioning:BucketVersioning", bucket)
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


def _key_id(key) -> str:
    from tools.mockcloud import stable_uuid

    return stable_uuid(KEY, created_as(key))


@pytest.mark.parametrize("role", [*ZONES, "access-logs"])
def test_every_bucket_denies_plain_http_and_grants_no_wildcards(dev, role: str) -> None:
    bucket = _bucket(dev, role)
    policy = configuring(dev, "aws:s3/bucketPolicy:BucketPolicy", bucket)
    statements = policy_doc(policy.inputs["policy"])["Statement"]
    deny = statements[0]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    name = bucket.name
    assert deny["Resource"] == [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]
    for grant in (s for s in statements if s["Effect"] == "Allow"):
        assert grant["Principal"] != "*"
        assert "*" not in json.dumps(grant["Action"])
    # The policy waits for the public access block (S3 rejects it mid-update).
    pab = configuring(dev, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
    assert pab.urn in policy.dependencies


def test_log_bucket_only_accepts_log_delivery_from_this_account(dev) -> None:
    logs = _bucket(dev, "access-logs")
    policy = configuring(dev, "aws:s3/bucketPolicy:BucketPolicy", logs)
    grants = [s for s in policy_doc(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
    assert grants == [
        {
            "Sid": "AllowS3ServerAccessLogDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{logs.name}/*",
            "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}},
        }
    ]
    sse = configuring(
        dev,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        logs,
    )
    # S3 log delivery accepts only SSE-S3 targets (policy exemption EX-001).
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"
    }


@pytest.mark.parametrize("zone", ZONES)
def test_zone_buckets_log_to_the_log_bucket_and_it_does_not_log_itself(dev, zone: str) -> None:
    logs = _bucket(dev, "access-logs")
    logging = configuring(dev, "aws:s3/bucketLogging:BucketLogging", _bucket(dev, zone))
    assert logging.inputs["targetBucket"] == logs.name
    assert logging.inputs["targetPrefix"] == f"{zone}/"
    assert logs.urn in logging.property_dependencies["targetBucket"]
    targets = [r.inputs["bucket"] for r in of_type(dev, "aws:s3/bucketLogging:BucketLogging")]
    assert logs.name not in targets


def test_lifecycle_follows_settings(dev) -> None:
    raw = configuring(
        dev,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        _bucket(dev, "raw"),
    )
    rules = {r["id"]: r for r in raw.inputs["rules"]}
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 7
    }
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 30
    }
    assert rules["tiering"]["transitions"] == [
        {"days": 30, "storageClass": "STANDARD_IA"},
        {"days": 90, "storageClass": "GLACIER_IR"},
    ]
    logs = configuring(
        dev,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        _bucket(dev, "access-logs"),
    )
    assert {r["id"]: r for r in logs.inputs["rules"]}["expire-access-logs"]["expiration"] == {
        "days": 90
    }


@pytest.fixture(scope="module")
def reshaped():
    """aws-dev with other lake zones and no model registry (one plan for both tests)."""
    return plan_with(
        "aws-dev",
        lake={
            "zones": ["landing", "gold"],
            "tiering": {"coolAfterDays": 45, "archiveAfterDays": None},
        },
        registries={"models": {"enabled": False}},
        # The shipped endpoint reads from the curated zone, which this lake lacks.
        endpoints={},
    )


def test_zones_and_tiering_come_from_settings(reshaped) -> None:
    plan = reshaped
    zones = sorted(
        b.inputs["tags"]["zone"] for b in of_type(plan, BUCKET) if "zone" in b.inputs["tags"]
    )
    assert zones == ["gold", "landing"]
    lifecycle = configuring(
        plan,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        _bucket(plan, "gold"),
    )
    tiering = {r["id"]: r for r in lifecycle.inputs["rules"]}["tiering"]
    assert tiering["transitions"] == [{"days": 45, "storageClass": "STANDARD_IA"}]


def test_prod_protects_and_retains_every_stateful_resource(prod, dev) -> None:
    stateful = [r for r in prod.registrations if r.type in STATEFUL_TYPES]
    assert {r.type for r in stateful} >= {BUCKET, KEY, "aws:ecr/repository:Repository"}
    assert all(r.protect and r.retain_on_delete for r in stateful)
    assert not any(r.protect or r.retain_on_delete for r in dev.registrations)
    # Stateless children are never protected: they must stay replaceable.
    assert not any(r.protect for r in prod.registrations if r.type not in STATEFUL_TYPES)


def test_every_taggable_resource_carries_the_platform_tags(prod) -> None:
    expected = {
        "project": "mlops",
        "stack": "aws-prod",
        "environment": "prod",
        "owner": "ml-platform",
        "cost-center": "ml-production",
        "managed-by": "pulumi",
    }
    # (An auto scaling group lists its tags: tests/test_aws_pools.py checks those.)
    tagged = [r for r in prod.registrations if isinstance(r.inputs.get("tags"), dict)]
    assert len(tagged) >= 8
    for resource in tagged:
        assert expected.items() <= resource.inputs["tags"].items(), resource.name


def test_ecr_repositories_are_immutable_scanned_encrypted_and_expire(dev) -> None:
    repos = of_type(dev, "aws:ecr/repository:Repository")
    assert sorted(r.inputs["name"] for r in repos) == [
        "mlops-aws-dev/serving",
        "mlops-aws-dev/training",
    ]
    key_urn = one(dev, KEY).urn
    for repo in repos:
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo.inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
        assert key_urn in repo.property_dependencies["encryptionConfigurations"]
        lifecycle = configuring(dev, "aws:ecr/lifecyclePolicy:LifecyclePolicy", repo, "repository")
        rules = json.loads(lifecycle.inputs["policy"])["rules"]
        assert rules[0]["selection"] == {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 7,
        }
        assert rules[1]["selection"]["countNumber"] == 30


def test_ecr_grants_pull_and_push_only_to_the_platform_roles(dev) -> None:
    runtime = one(dev, "aws:iam/role:Role", "-runtime")
    publisher = one(dev, "aws:iam/role:Role", "-publisher")
    for repo in of_type(dev, "aws:ecr/repository:Repository"):
        policy = configuring(dev, "aws:ecr/repositoryPolicy:RepositoryPolicy", repo, "repository")
        statements = {s["Sid"]: s for s in policy_doc(policy.inputs["policy"])["Statement"]}
        assert set(statements) == {"RuntimePulls", "PublisherPushes"}
        assert statements["RuntimePulls"]["Principal"] == {
            "AWS": f"arn:aws:iam::111111111111:role/{runtime.name}"
        }
        assert "ecr:PutImage" not in statements["RuntimePulls"]["Action"]
        assert statements["PublisherPushes"]["Principal"]["AWS"].endswith(publisher.name)
        assert "ecr:PutImage" in statements["PublisherPushes"]["Action"]
    trust = policy_doc(runtime.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}


def test_model_registry_follows_settings(dev, reshaped) -> None:
    group = one(dev, "aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert group.inputs["modelPackageGroupName"] == "mlops-aws-dev-models"
    without = reshaped
    assert of_type(without, "aws:sagemaker/modelPackageGroup:ModelPackageGroup") == []


def test_stack_outputs_name_what_users_need(dev) -> None:
    outputs = dev.outputs
    assert outputs["lakeBucketNames"] == {z: f"mlops-aws-dev-lake-{z}" for z in ZONES}
    assert outputs["lakeBucketArns"]["raw"] == "arn:aws:s3:::mlops-aws-dev-lake-raw"
    assert outputs["keyArn"].startswith("arn:aws:kms:eu-west-1:111111111111:key/")
    assert outputs["lakeAccessLogBucket"] == "mlops-aws-dev-lake-access-logs"
    assert outputs["containerRepositoryUrls"]["serving"].endswith("/mlops-aws-dev/serving")
