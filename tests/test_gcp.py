"""The GCP components on mocks: the inputs that make them private, encrypted and kept."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import created_as, of_type, one, plan_with, planned, platform_base
from mlops_policies.catalog import STATEFUL_TYPES

from tools.mockcloud import GCP_PROJECT_NUMBER

BUCKET = "gcp:storage/bucket:Bucket"
KEY = "gcp:kms/cryptoKey:CryptoKey"
KEY_RING = "gcp:kms/keyRing:KeyRing"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
BUCKET_GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
SERVICE = "gcp:projects/service:Service"
NETWORK = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"
ROUTER = "gcp:compute/router:Router"
NAT = "gcp:compute/routerNat:RouterNat"
DATASET = "gcp:bigquery/dataset:Dataset"
LOG_BUCKET = "gcp:logging/projectBucketConfig:ProjectBucketConfig"
# Its `labels` are the channel's settings (the address); its own labels are user labels.
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
ZONES = ("raw", "curated", "features")
STORAGE_AGENT = (
    f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
)
REGISTRY_AGENT = (
    f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
)
VERTEX_AGENT = (
    f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-aiplatform.iam.gserviceaccount.com"
)
BIGQUERY_AGENT = (
    f"serviceAccount:bq-{GCP_PROJECT_NUMBER}@bigquery-encryption.iam.gserviceaccount.com"
)
COMPUTE_AGENT = (
    f"serviceAccount:service-{GCP_PROJECT_NUMBER}@compute-system.iam.gserviceaccount.com"
)
PUBSUB_AGENT = f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
LOGGING_AGENT = (
    f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"
)
ENCRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


@pytest.fixture(scope="module")
def dev():
    return planned("gcp-dev")


@pytest.fixture(scope="module")
def prod():
    return planned("gcp-prod")


def _bucket(plan, role: str):
    return one(plan, BUCKET, f"-lake-{role}")


def _key_id(plan) -> str:
    ring = one(plan, KEY_RING)
    key = one(plan, KEY)
    return (
        f"projects/{plan.settings.gcp_project}/locations/europe-west4/keyRings/{ring.name}"
        f"/cryptoKeys/{created_as(key)}"
    )


def _grant(plan, member: str):
    found = [g for g in of_type(plan, KEY_GRANT) if g.inputs["member"] == member]
    assert len(found) == 1, [g.inputs["member"] for g in of_type(plan, KEY_GRANT)]
    return found[0]


def test_inventory(dev) -> None:
    """The platform without its endpoints (tests/test_gcp_endpoints.py has those)."""
    base = platform_base(dev)
    counts = {
        BUCKET: 4,
        KEY_RING: 1,
        KEY: 1,
        KEY_GRANT: 2,
        BUCKET_GRANT: 1,
        REPOSITORY: 2,
        # The platform's five, Container Scanning, serving's five, Pub/Sub for the
        # GPU pool's job queue, and IAM credentials and STS for CI's federation.
        SERVICE: 14,
        "gcp:projects/serviceIdentity:ServiceIdentity": 1,
        NETWORK: 1,
        SUBNET: 2,
        FIREWALL: 2,
    }
    found = Counter(r.type for r in base if r.type.startswith("gcp:"))
    assert found == counts


def test_key_rotates_every_90_days_in_the_stack_region(dev) -> None:
    ring = one(dev, KEY_RING)
    key = one(dev, KEY)
    assert ring.inputs == {"location": "europe-west4"}
    assert key.inputs["rotationPeriod"] == "7776000s"
    assert key.inputs["purpose"] == "ENCRYPT_DECRYPT"
    assert key.inputs["destroyScheduledDuration"] == "2592000s"
    assert ring.urn in key.property_dependencies["keyRing"]
    # The key ring waits for the Cloud KMS API.
    kms_api = one(dev, SERVICE, "-cloudkms")
    assert kms_api.urn in ring.dependencies
    # Autonamed: key rings cannot be deleted, a fixed name would collide on re-create.
    assert "name" not in ring.inputs
    assert "name" not in key.inputs


def test_only_the_storage_agent_may_use_the_key_for_the_lake(dev) -> None:
    grant = _grant(dev, STORAGE_AGENT)
    assert grant.inputs["role"] == ENCRYPTER
    assert grant.inputs["cryptoKeyId"] == _key_id(dev)
    assert grant.parent.endswith("::mlops-gcp-dev-lake")
    # Least privilege: members are service agents only, roles only the key's use.
    assert {g.inputs["role"] for g in of_type(dev, KEY_GRANT)} == {ENCRYPTER}
    assert {g.inputs["member"] for g in of_type(dev, KEY_GRANT)} == {
        STORAGE_AGENT,
        REGISTRY_AGENT,
        VERTEX_AGENT,
        BIGQUERY_AGENT,
        LOGGING_AGENT,
        COMPUTE_AGENT,
        PUBSUB_AGENT,
    }


@pytest.mark.parametrize("role", [*ZONES, "access-logs"])
def test_every_bucket_is_private_versioned_and_cmek_encrypted(dev, role: str) -> None:
    bucket = _bucket(dev, role)
    inputs = bucket.inputs
    assert inputs["uniformBucketLevelAccess"] is True
    assert inputs["publicAccessPrevention"] == "enforced"
    assert inputs["versioning"] == {"enabled": True}
    assert inputs["softDeletePolicy"] == {"retentionDurationSeconds": 7 * 86400}
    assert inputs["encryption"] == {"defaultKmsKeyName": _key_id(dev)}
    assert inputs["location"] == "europe-west4"
    assert inputs["forceDestroy"] is False
    # Autonamed: bucket names are global.
    assert "name" not in inputs
    assert bucket.parent.endswith("::mlops-gcp-dev-lake")
    # CMEK works on first create only once the storage agent holds the key.
    assert _grant(dev, STORAGE_AGENT).urn in bucket.dependencies


@pytest.mark.parametrize("zone", ZONES)
def test_zone_buckets_log_to_the_log_bucket(dev, zone: str) -> None:
    logs = _bucket(dev, "access-logs")
    bucket = _bucket(dev, zone)
    assert bucket.inputs["logging"] == {"logBucket": logs.name, "logObjectPrefix": zone}
    assert logs.urn in bucket.property_dependencies["logging"]
    writer = one(dev, BUCKET_GRANT, "-access-logs-writer")
    assert writer.urn in bucket.dependencies
    assert bucket.inputs["labels"]["zone"] == zone
    assert bucket.inputs["labels"]["purpose"] == "lake"


def test_log_bucket_does_not_log_itself_and_only_log_delivery_writes(dev) -> None:
    logs = _bucket(dev, "access-logs")
    assert "logging" not in logs.inputs
    assert logs.inputs["labels"]["purpose"] == "access-logs"
    writer = one(dev, BUCKET_GRANT, "-access-logs-writer")
    assert writer.inputs == {
        "bucket": logs.name,
        "member": "group:cloud-storage-analytics@google.com",
        "role": "roles/storage.objectCreator",
    }


def test_lifecycle_follows_settings(dev) -> None:
    rules = _bucket(dev, "raw").inputs["lifecycleRules"]
    assert rules == [
        {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 7}},
        {
            "action": {"type": "Delete"},
            "condition": {"daysSinceNoncurrentTime": 30, "withState": "ARCHIVED"},
        },
        {
            "action": {"type": "SetStorageClass", "storageClass": "NEARLINE"},
            "condition": {"age": 30, "matchesStorageClasses": ["STANDARD"]},
        },
        {
            "action": {"type": "SetStorageClass", "storageClass": "ARCHIVE"},
            "condition": {"age": 90, "matchesStorageClasses": ["STANDARD", "NEARLINE"]},
        },
    ]
    log_rules = _bucket(dev, "access-logs").inputs["lifecycleRules"]
    assert log_rules[:2] == rules[:2]
    assert log_rules[2:] == [{"action": {"type": "Delete"}, "condition": {"age": 90}}]


@pytest.fixture(scope="module")
def loosened():
    """gcp-dev with its lake and registry settings changed at once: one plan for
    the tests that read each (their resources and policies do not overlap)."""
    return plan_with(
        "gcp-dev",
        lake={
            "zones": ["landing", "gold"],
            "tiering": {"coolAfterDays": 14, "archiveAfterDays": None},
            "retention": {"softDeleteDays": 30, "abortIncompleteUploadDays": 2},
            "accessLogs": {"enabled": False},
        },
        registries={
            "containers": {
                "repositories": ["batch"],
                "immutableTags": False,
                "scanOnPush": False,
                "untaggedRetentionDays": 3,
                "keepLastImages": 5,
            },
            "models": {"enabled": False},
        },
        endpoints={},
        acceleratorPools={},
    )


def test_zones_retention_and_logging_come_from_settings(loosened) -> None:
    plan = loosened
    buckets = of_type(plan, BUCKET)
    assert sorted(b.inputs["labels"]["zone"] for b in buckets) == ["gold", "landing"]
    gold = _bucket(plan, "gold").inputs
    assert gold["softDeletePolicy"] == {"retentionDurationSeconds": 30 * 86400}
    assert gold["lifecycleRules"][0]["condition"] == {"age": 2}
    assert [r for r in gold["lifecycleRules"] if r["action"]["type"] == "SetStorageClass"] == [
        {
            "action": {"type": "SetStorageClass", "storageClass": "NEARLINE"},
            "condition": {"age": 14, "matchesStorageClasses": ["STANDARD"]},
        }
    ]
    # No log store asked for: none built, and the policy pack says so (advisory in dev).
    assert all("logging" not in b.inputs for b in buckets)
    assert of_type(plan, BUCKET_GRANT) == []
    assert {(f.policy, f.level) for f in plan.advisory} == {("storage-access-logging", "advisory")}


def test_registry_is_one_encrypted_immutable_scanned_docker_repository_per_name(dev) -> None:
    repos = of_type(dev, REPOSITORY)
    assert sorted(r.inputs["repositoryId"] for r in repos) == [
        "mlops-gcp-dev-serving",
        "mlops-gcp-dev-training",
    ]
    grant = _grant(dev, REGISTRY_AGENT)
    assert grant.inputs["role"] == ENCRYPTER
    assert grant.inputs["cryptoKeyId"] == _key_id(dev)
    scanning_api = one(dev, SERVICE, "-containerscanning")
    assert scanning_api.inputs == {
        "disableDependentServices": False,
        "disableOnDestroy": False,
        "service": "containerscanning.googleapis.com",
    }
    for repo in repos:
        inputs = repo.inputs
        assert inputs["format"] == "DOCKER"
        assert inputs["location"] == "europe-west4"
        assert inputs["kmsKeyName"] == _key_id(dev)
        assert inputs["dockerConfig"] == {"immutableTags": True}
        assert inputs["vulnerabilityScanningConfig"] == {"enablementConfig": "INHERITED"}
        assert inputs["cleanupPolicyDryRun"] is False
        assert inputs["cleanupPolicies"] == [
            {
                "id": "delete-untagged",
                "action": "DELETE",
                "condition": {"tagState": "UNTAGGED", "olderThan": "604800s"},
            },
            {"id": "keep-most-recent", "action": "KEEP", "mostRecentVersions": {"keepCount": 30}},
        ]
        assert inputs["labels"]["purpose"] == "containers"
        # The agent holds the key, and scanning is on, before the repository exists.
        assert grant.urn in repo.dependencies
        assert scanning_api.urn in repo.dependencies


def test_registry_follows_settings(loosened) -> None:
    plan = loosened
    repo = one(plan, REPOSITORY)
    assert repo.inputs["repositoryId"] == "mlops-gcp-dev-batch"
    assert repo.inputs["dockerConfig"] == {"immutableTags": False}
    assert repo.inputs["vulnerabilityScanningConfig"] == {"enablementConfig": "DISABLED"}
    policies = {p["id"]: p for p in repo.inputs["cleanupPolicies"]}
    assert policies["delete-untagged"]["condition"]["olderThan"] == "259200s"
    assert policies["keep-most-recent"]["mostRecentVersions"] == {"keepCount": 5}
    assert [s.inputs["service"] for s in of_type(plan, SERVICE) if "scanning" in s.name] == []
    # The pack refuses what the settings loosened (and only that: the lake's
    # missing access logs are advisory in dev).
    assert {f.policy for f in plan.mandatory} == {"registry-scanning", "registry-immutable-tags"}


def test_prod_protects_and_retains_everything_that_holds_data_or_keys(prod, dev) -> None:
    stateful = [r for r in prod.registrations if r.type in STATEFUL_TYPES]
    assert {r.type for r in stateful} == {
        BUCKET,
        KEY_RING,
        KEY,
        REPOSITORY,
        DATASET,
        LOG_BUCKET,
        "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
    }
    assert len(stateful) == 11
    # Grants that keep retained data readable and logged are kept with it.
    # (A model's read grant on its artifact goes with the model: tests/test_gcp_endpoints.py.)
    base = platform_base(prod)
    kept = [*stateful, *of_type(prod, KEY_GRANT), *(r for r in base if r.type == BUCKET_GRANT)]
    # Vertex endpoints keep a fixed id that clients and alerts name: protected too.
    kept += of_type(prod, "gcp:vertex/aiEndpoint:AiEndpoint")
    assert all(r.protect and r.retain_on_delete for r in kept)
    assert not any(r.protect or r.retain_on_delete for r in dev.registrations)
    kept_urns = {r.urn for r in kept}
    assert not any(r.protect for r in prod.registrations if r.urn not in kept_urns)


def test_every_labelled_resource_carries_the_platform_labels(prod) -> None:
    expected = {
        "project": "mlops",
        "stack": "gcp-prod",
        "environment": "prod",
        "owner": "ml-platform",
        "cost-center": "ml-production",
        "managed-by": "pulumi",
    }
    labelled = [r for r in prod.registrations if "labels" in r.inputs and r.type != CHANNEL]
    assert {r.type for r in labelled} == {
        BUCKET,
        KEY,
        REPOSITORY,
        DATASET,
        "gcp:vertex/aiEndpoint:AiEndpoint",
        "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy",
        "pulumi-python:dynamic/gcp:VertexModelDeployment",
        "pulumi-python:dynamic/gcp:VertexModelMonitor",
        "gcp:pubsub/topic:Topic",
        "gcp:pubsub/subscription:Subscription",
        "gcp:compute/instanceTemplate:InstanceTemplate",
        "gcp:tpu/v2Vm:V2Vm",
    }
    assert len(labelled) == 16
    for resource in labelled:
        assert expected.items() <= resource.inputs["labels"].items(), resource.name


@pytest.fixture(scope="module")
def relabelled():
    """gcp-dev with another owner and the model registry asked for: neither adds
    a resource, so the tests below share one plan."""
    return plan_with(
        "gcp-dev", owner="ml.platform@example.com", registries={"models": {"enabled": True}}
    )


def test_labels_are_valid_gcp_labels(relabelled) -> None:
    plan = relabelled
    for resource in (r for r in plan.registrations if "labels" in r.inputs and r.type != CHANNEL):
        assert resource.inputs["labels"]["owner"] == "ml_platform_example_com"
        for key, value in resource.inputs["labels"].items():
            assert key.replace("-", "").replace("_", "").isalnum(), key
            assert value == value.lower() and len(value) <= 63, value


def test_every_child_is_parented_by_its_component(dev) -> None:
    components = {r.urn: r.type for r in dev.registrations if r.type.startswith("mlops:gcp:")}
    assert set(components.values()) == {
        "mlops:gcp:ProjectServices",
        "mlops:gcp:PlatformKey",
        "mlops:gcp:DataLake",
        "mlops:gcp:ContainerRegistry",
        "mlops:gcp:Network",
        "mlops:gcp:Serving",
        "mlops:gcp:ModelEndpoint",
        "mlops:gcp:AlertRoute",
        "mlops:gcp:AuditLogs",
        "mlops:gcp:AcceleratorPool",
        "mlops:gcp:PoolAgents",
        "mlops:gcp:CiIdentities",
    }
    for resource in (r for r in dev.registrations if r.type.startswith("gcp:")):
        assert resource.parent in components, resource.name


def test_both_stacks_plan_without_policy_violations(dev, prod) -> None:
    assert dev.findings == []
    assert prod.findings == []


def test_stack_outputs_name_what_users_need(dev) -> None:
    outputs = dev.outputs
    assert outputs["lakeBucketNames"] == {z: f"mlops-gcp-dev-lake-{z}" for z in ZONES}
    assert outputs["lakeBucketUrls"]["raw"] == "gs://mlops-gcp-dev-lake-raw"
    assert outputs["lakeAccessLogBucket"] == "mlops-gcp-dev-lake-access-logs"
    assert outputs["keyId"] == _key_id(dev)
    assert outputs["containerRepositoryUrls"] == {
        repo: f"europe-west4-docker.pkg.dev/mlops-platform-dev/mlops-gcp-dev-{repo}"
        for repo in ("training", "serving")
    }
    assert "modelRegistry" not in outputs


def test_model_registry_is_vertex_and_provisions_nothing(dev, relabelled) -> None:
    plan = relabelled
    assert plan.outputs["modelRegistry"] == "projects/mlops-platform-dev/locations/europe-west4"
    assert sorted(r.urn for r in plan.registrations) == sorted(r.urn for r in dev.registrations)


DURATION = re.compile(r"\d+(\.\d+)?[a-z]+")


def _durations(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _durations(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _durations(item, f"{path}[{index}]")
    elif isinstance(value, str) and DURATION.fullmatch(value):
        yield path, value


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_every_duration_is_given_in_seconds(stack: str) -> None:
    """GCP APIs take protobuf Durations ("604800s"); a day value is refused or
    read back in seconds, a diff on every preview."""
    found = [
        (path, value)
        for r in planned(stack).registrations
        for path, value in _durations(r.inputs, r.name)
    ]
    assert {path.rsplit(".", 1)[-1] for path, _ in found} >= {
        "olderThan",
        "rotationPeriod",
        "destroyScheduledDuration",
    }
    assert [(path, v) for path, v in found if not re.fullmatch(r"\d+s", v)] == []
