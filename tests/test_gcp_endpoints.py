"""Vertex AI endpoints on mocks: encrypted with the platform key, private through
Private Service Connect, logging their traffic into an encrypted dataset, served
by a model running as its own least-privileged account, alarmed."""

from __future__ import annotations

import pytest
from conftest import of_type, one, plan_with, planned

from infra.gcp.endpoint import endpoint_id
from tools.mockcloud import GCP_PROJECT_NUMBER

ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
DEPLOYMENT = "pulumi-python:dynamic/gcp:VertexModelDeployment"
DATASET = "gcp:bigquery/dataset:Dataset"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
POLICY = "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy"
PROJECT_GRANT = "gcp:projects/iAMMember:IAMMember"
BUCKET_GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPOSITORY_GRANT = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
KEY = "gcp:kms/cryptoKey:CryptoKey"


@pytest.fixture(scope="module")
def dev():
    return planned("gcp-dev")


@pytest.fixture(scope="module")
def prod():
    return planned("gcp-prod")


def _key_id(plan) -> str:
    key = one(plan, KEY)
    ring = one(plan, "gcp:kms/keyRing:KeyRing")
    return (
        f"projects/{plan.settings.gcp_project}/locations/europe-west4/keyRings/{ring.name}"
        f"/cryptoKeys/{key.aliases[0].rsplit('::', 1)[-1] if key.aliases else key.name}"
    )


def test_endpoint_is_encrypted_private_and_logs_its_traffic(dev, prod) -> None:
    endpoint = one(prod, ENDPOINT)
    project = prod.settings.gcp_project
    assert endpoint.inputs["encryptionSpec"] == {"kmsKeyName": _key_id(prod)}
    network = prod.outputs["networkId"]
    assert endpoint.inputs["privateServiceConnectConfig"] == {
        "enablePrivateServiceConnect": True,
        "projectAllowlists": [project],
        "pscAutomationConfigs": [
            {
                "projectId": project,
                "network": network.replace(project, GCP_PROJECT_NUMBER, 1),
            }
        ],
    }
    assert "network" not in endpoint.inputs  # exclusive with Private Service Connect
    dataset = one(prod, DATASET)
    assert endpoint.inputs["predictRequestResponseLoggingConfig"] == {
        "enabled": True,
        "samplingRate": 0.1,
        "bigqueryDestination": {
            "outputUri": f"bq://{project}.{dataset.inputs['datasetId']}.churn",
        },
    }
    assert one(dev, ENDPOINT).inputs["predictRequestResponseLoggingConfig"]["samplingRate"] == 0.2
    # Vertex may use the key, and has a subnet to place the address in, before the endpoint.
    grant = one(prod, KEY_GRANT, "-serving-vertex-key-user")
    policy = one(prod, POLICY)
    assert {grant.urn, policy.urn} <= set(endpoint.dependencies)
    assert grant.inputs["member"] == (
        f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-aiplatform.iam.gserviceaccount.com"
    )


def test_addresses_come_from_the_endpoints_subnet(prod) -> None:
    policy = one(prod, POLICY)
    assert policy.inputs["serviceClass"] == "gcp-vertexai"
    assert policy.inputs["pscConfig"] == {"subnetworks": [prod.outputs["subnetIds"]["endpoints"]]}
    assert policy.inputs["network"] == prod.outputs["networkId"]


def test_request_logs_land_in_a_kept_dataset_under_the_platform_key(prod, dev) -> None:
    dataset = one(prod, DATASET)
    assert dataset.inputs["defaultEncryptionConfiguration"] == {"kmsKeyName": _key_id(prod)}
    assert dataset.inputs["deleteContentsOnDestroy"] is False
    assert dataset.inputs["location"] == "europe-west4"
    assert dataset.protect and dataset.retain_on_delete
    assert not one(dev, DATASET).protect
    # BigQuery's encryption agent holds the key before the dataset exists.
    grant = one(prod, KEY_GRANT, "-serving-logs-key-user")
    assert grant.inputs["member"].startswith(f"serviceAccount:bq-{GCP_PROJECT_NUMBER}@")
    assert grant.urn in dataset.dependencies


def test_the_model_runs_as_its_own_account_with_only_what_serving_needs(prod) -> None:
    account = one(prod, ACCOUNT, "-serve-churn-runtime")
    email = f"{account.inputs['accountId']}@{prod.settings.gcp_project}.iam.gserviceaccount.com"
    member = f"serviceAccount:{email}"
    assert 6 <= len(account.inputs["accountId"]) <= 30
    grants = [
        r
        for t in (PROJECT_GRANT, BUCKET_GRANT, REPOSITORY_GRANT, KEY_GRANT)
        for r in of_type(prod, t)
        if r.inputs.get("member") == member
    ]
    assert sorted((g.type, g.inputs["role"]) for g in grants) == [
        (REPOSITORY_GRANT, "roles/artifactregistry.reader"),
        (PROJECT_GRANT, "roles/logging.logWriter"),
        (PROJECT_GRANT, "roles/monitoring.metricWriter"),
        (BUCKET_GRANT, "roles/storage.objectViewer"),
    ]
    read = next(g for g in grants if g.type == BUCKET_GRANT)
    assert read.inputs["bucket"] == "mlops-gcp-prod-lake-curated"
    assert read.inputs["condition"]["expression"] == (
        'resource.name.startsWith("projects/_/buckets/mlops-gcp-prod-lake-curated'
        '/objects/models/churn/1.4.2/")'
    )
    pull = next(g for g in grants if g.type == REPOSITORY_GRANT)
    assert pull.inputs["repository"] == "mlops-gcp-prod-serving"
    deployment = one(prod, DEPLOYMENT)
    assert deployment.inputs["serviceAccount"] == email
    # The model deploys only once its account may do its work.
    assert {g.urn for g in grants} <= set(deployment.dependencies)


def test_the_deployment_serves_the_settings(prod, dev) -> None:
    deployment = one(prod, DEPLOYMENT)
    endpoint = one(prod, ENDPOINT)
    assert endpoint.urn in deployment.property_dependencies["endpoint"]
    inputs = {k: v for k, v in deployment.inputs.items() if k != "__provider"}
    assert inputs["endpoint"] == (
        f"projects/mlops-platform-prod/locations/europe-west4/endpoints/{endpoint.inputs['name']}"
    )
    assert (inputs["machineType"], inputs["acceleratorType"], inputs["acceleratorCount"]) == (
        "g2-standard-8",
        "NVIDIA_L4",
        1,
    )
    assert (inputs["minReplicas"], inputs["maxReplicas"]) == (2, 6)
    assert inputs["autoscaling"] == {"metric": "gpuUtilization", "target": 70}
    assert inputs["rollout"] == {
        "strategy": "canary",
        "canaryPercent": 10,
        "linearStepPercent": 20,
        "waitMinutes": 15,
    }
    assert inputs["alarms"] == {"errorsPerMinute": 5, "latencyP99Ms": 1000, "evaluationMinutes": 3}
    assert inputs["model"]["upload"] == {
        # Versions of one registry model named after the endpoint.
        "modelId": "churn",
        "imageUri": "europe-west4-docker.pkg.dev/mlops-platform-prod/mlops-gcp-prod-serving"
        "/serving:1.4.2",
        "artifactUri": "gs://mlops-gcp-prod-lake-curated/models/churn/1.4.2",
        "kmsKeyName": _key_id(prod),
        "predictRoute": "/invocations",
        "healthRoute": "/ping",
        "port": 8080,
    }
    # Labels go on the uploaded model from the deployment's own `labels` (in place).
    assert inputs["labels"]["endpoint"] == "churn"
    dev_inputs = one(dev, DEPLOYMENT).inputs
    assert dev_inputs.get("acceleratorType") is None and dev_inputs["acceleratorCount"] == 0


def test_alerts_watch_this_endpoint_on_errors_and_latency(prod) -> None:
    endpoint_id = one(prod, ENDPOINT).inputs["name"]
    conditions = {
        a.name.rsplit("-", 1)[1]: a.inputs["conditions"][0]["conditionThreshold"]
        for a in of_type(prod, ALERT)
    }
    assert set(conditions) == {"errors", "latency"}
    scope = f'resource.labels.endpoint_id = "{endpoint_id}"'
    assert scope in conditions["errors"]["filter"]
    assert (
        'metric.type = "aiplatform.googleapis.com/prediction/online/error_count"'
        in (conditions["errors"]["filter"])
    )
    assert conditions["errors"]["thresholdValue"] == 5
    assert scope in conditions["latency"]["filter"]
    assert conditions["latency"]["aggregations"][0]["perSeriesAligner"] == "ALIGN_PERCENTILE_99"
    assert conditions["latency"]["thresholdValue"] == 1000
    for condition in conditions.values():
        assert condition["duration"] == "180s"
        assert condition["evaluationMissingData"] == "EVALUATION_MISSING_DATA_INACTIVE"


def test_endpoint_ids_are_numeric_stable_and_distinct_per_stack() -> None:
    first = endpoint_id("mlops-gcp-prod", "churn")
    assert first == endpoint_id("mlops-gcp-prod", "churn")
    assert first != endpoint_id("mlops-gcp-dev", "churn")
    for stack in ("a", "b", "mlops-gcp-prod", "mlops-x"):
        value = endpoint_id(stack, "fraud")
        assert value.isdigit() and len(value) == 10 and value[0] != "0"


def test_no_capture_means_no_logging_and_a_registry_model_is_taken_by_name() -> None:
    churn = {
        "model": {"registryVersion": 4},
        "instanceType": "n1-standard-4",
        "dataCapture": {"percent": 0},
    }
    plan = plan_with(
        "gcp-dev", endpoints={"churn": churn}, registries={"models": {"enabled": True}}
    )
    assert one(plan, ENDPOINT).inputs["predictRequestResponseLoggingConfig"] == {"enabled": False}
    deployment = one(plan, DEPLOYMENT)
    assert deployment.inputs["model"] == {
        "name": "projects/mlops-platform-dev/locations/europe-west4/models/churn@4"
    }
    assert deployment.inputs["labels"] == {}
    # Neither artifact nor image: the account reads no bucket and pulls from no repository.
    member = f"serviceAccount:{one(plan, ACCOUNT, '-serve-churn-runtime').inputs['accountId']}@"
    assert [g for g in of_type(plan, BUCKET_GRANT) if g.inputs["member"].startswith(member)] == []
    assert [
        g for g in of_type(plan, REPOSITORY_GRANT) if g.inputs["member"].startswith(member)
    ] == []


def test_serving_waits_for_its_apis(dev) -> None:
    apis = {s.inputs["service"]: s.urn for s in of_type(dev, "gcp:projects/service:Service")}
    for api in (
        "aiplatform.googleapis.com",
        "bigquery.googleapis.com",
        "networkconnectivity.googleapis.com",
        "monitoring.googleapis.com",
    ):
        assert api in apis
    # Waiting on the services' component waits on every API in it.
    assert set(apis.values()) <= set(one(dev, POLICY).dependencies)
    assert set(apis.values()) <= set(one(dev, DATASET).dependencies)
