"""The settings model: shipped stacks load; every bad input is one precise line."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.catalogs import aws_regions, provider_config_keys, sagemaker_inference_instance_types
from infra.settings import NAME_RULE, SettingsError, load
from tools import stackfiles

BASE = "aws-dev"


def _load(stack: str = BASE, **changes: Any):
    """Load a shipped stack with keys replaced (value None removes the key)."""
    values = copy.deepcopy(stackfiles.stack_values(stack))
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return load(stack, stackfiles.as_engine_strings(values))


def _error(stack: str = BASE, **changes: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        _load(stack, **changes)
    return str(caught.value)


def test_every_shipped_stack_loads(shipped_stacks: list[str]) -> None:
    for stack in shipped_stacks:
        settings = load(stack, stackfiles.as_engine_strings(stackfiles.stack_values(stack)))
        assert settings.stack == stack
        assert settings.stack_file == f"stacks/Pulumi.{stack}.yaml"
        assert settings.environment == stack.rsplit("-", 1)[1]
        assert settings.cloud == stack.split("-", 1)[0]


def test_aws_dev_values() -> None:
    settings = _load()
    assert settings.region == "eu-west-1"
    assert settings.lake.zones == ["raw", "curated", "features"]
    assert settings.lake.tiering.archive_after_days == 90
    assert settings.lake.access_logs.enabled is True
    assert settings.protect is False
    assert settings.tags == {
        "project": "mlops",
        "stack": "aws-dev",
        "environment": "dev",
        "owner": "ml-platform",
        "cost-center": "ml-research",
        "managed-by": "pulumi",
    }


def test_prod_protects() -> None:
    assert _load("aws-prod").protect is True


def test_project_defaults_apply_when_a_section_is_absent() -> None:
    settings = _load(**{"mlops:lake": None, "mlops:registries": None})
    assert settings.lake.zones == ["raw", "curated", "features"]
    assert settings.lake.tiering.cool_after_days == 30
    assert settings.registries.containers.immutable_tags is True


F = "stacks/Pulumi.aws-dev.yaml"

BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "zone name",
        {"mlops:lake": {"zones": ["raw", "Raw Data"]}},
        f"{F}: mlops:lake.zones[1]: 'Raw Data' is not a valid zone name ({NAME_RULE})",
    ),
    (
        "zone name too short for every cloud",
        {"mlops:lake": {"zones": ["ml"]}},
        f"{F}: mlops:lake.zones[0]: 'ml' is not a valid zone name ({NAME_RULE})",
    ),
    (
        "zone name with a double hyphen",
        {"mlops:lake": {"zones": ["raw--eu"]}},
        f"{F}: mlops:lake.zones[0]: 'raw--eu' is not a valid zone name ({NAME_RULE})",
    ),
    (
        "duplicate zone",
        {"mlops:lake": {"zones": ["raw", "raw"]}},
        f"{F}: mlops:lake.zones: zone 'raw' is listed twice",
    ),
    (
        "no zones",
        {"mlops:lake": {"zones": []}},
        f"{F}: mlops:lake.zones: List should have at least 1 item after validation, not 0",
    ),
    (
        "typo in a nested key",
        {"mlops:lake": {"zonez": ["raw"]}},
        f"{F}: mlops:lake.zonez: unknown key (known keys: accessLogs, retention, tiering, zones)",
    ),
    (
        "typo in a top-level key",
        {"mlops:colud": "aws"},
        f"{F}: mlops:colud: unknown key (known keys: acceleratorPools, alerts, audit, ci, "
        "cloud, costCenter, endpoints, environment, lake, network, owner, registries)",
    ),
    (
        "missing cloud",
        {"mlops:cloud": None},
        f"{F}: mlops:cloud: is required but missing",
    ),
    (
        "unknown environment",
        {"mlops:environment": "production"},
        f"{F}: mlops:environment: 'production': Input should be 'dev', 'staging' or 'prod'",
    ),
    (
        "section of the wrong shape",
        {"mlops:lake": "raw"},
        f"{F}: mlops:lake: expected a mapping of settings, got 'raw'",
    ),
    (
        "not a number",
        {"mlops:lake": {"tiering": {"coolAfterDays": "soon"}}},
        f"{F}: mlops:lake.tiering.coolAfterDays: 'soon': Input should be a valid integer, "
        "unable to parse string as an integer",
    ),
    (
        "tiering out of order",
        {"mlops:lake": {"tiering": {"coolAfterDays": 60, "archiveAfterDays": 40}}},
        f"{F}: mlops:lake.tiering: archiveAfterDays (40) must be later than coolAfterDays (60)",
    ),
    (
        "S3 minimum before STANDARD_IA",
        {"mlops:lake": {"tiering": {"coolAfterDays": 10, "archiveAfterDays": 90}}},
        f"{F}: mlops:lake.tiering.coolAfterDays: 10 is too early: S3 moves objects to "
        "STANDARD_IA no sooner than 30 days after creation",
    ),
    (
        "S3 gap before archive",
        {"mlops:lake": {"tiering": {"coolAfterDays": 30, "archiveAfterDays": 45}}},
        f"{F}: mlops:lake.tiering.archiveAfterDays: 45 is too early: S3 keeps objects in "
        "STANDARD_IA for 30 days before the next transition",
    ),
    (
        "soft delete bound",
        {"mlops:lake": {"retention": {"softDeleteDays": 3}}},
        f"{F}: mlops:lake.retention.softDeleteDays: 3: Input should be greater than or equal to 7",
    ),
    (
        "owner tag",
        {"mlops:owner": "ML Team"},
        f"{F}: mlops:owner: 'ML Team' is not a valid owner (lowercase letters, digits, . _ @ -)",
    ),
    (
        "repository name",
        {"mlops:registries": {"containers": {"repositories": ["Serving"]}}},
        f"{F}: mlops:registries.containers.repositories[0]: 'Serving' is not a valid "
        f"repository name ({NAME_RULE})",
    ),
    (
        "region of another cloud",
        {"aws:region": "us-central1"},
        f"{F}: aws:region: 'us-central1' is a region of gcp, not of aws",
    ),
    (
        "azure region on aws",
        {"aws:region": "westeurope"},
        f"{F}: aws:region: 'westeurope' is a region of azure, not of aws",
    ),
    (
        "missing region",
        {"aws:region": None},
        f"{F}: aws:region: is required when mlops:cloud is aws",
    ),
    (
        "key of another cloud",
        {"gcp:project": "ml-project-1"},
        f"{F}: gcp:project: belongs to gcp, but mlops:cloud is aws",
    ),
    (
        "azure key in an aws stack",
        {"azure-native:location": "westeurope"},
        f"{F}: azure-native:location: belongs to azure, but mlops:cloud is aws",
    ),
    (
        "pool bounds",
        {
            "mlops:acceleratorPools": {
                "gpu": {"kind": "gpu", "type": "g5", "minNodes": 3, "maxNodes": 1}
            }
        },
        f"{F}: mlops:acceleratorPools.gpu: maxNodes (1) is below minNodes (3)",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_settings_are_one_precise_line(changes: dict[str, Any], expected: str) -> None:
    message = _error(**changes)
    assert message == expected
    assert "\n" not in message


def test_gcp_region_and_project_are_checked() -> None:
    assert "'us-east-1' is a region of aws, not of gcp" in _error(
        "gcp-dev", **{"gcp:region": "us-east-1"}
    )
    assert _error("gcp-dev", **{"gcp:project": "X"}).endswith(
        "gcp:project: 'X' is not a project id"
    )
    assert _error("gcp-dev", **{"gcp:project": None}).endswith(
        "gcp:project: is required when mlops:cloud is gcp"
    )


def test_azure_location_is_checked() -> None:
    assert _error("azure-dev", **{"azure-native:location": "eu-west-1"}).endswith(
        "azure-native:location: 'eu-west-1' is a region of aws, not of azure"
    )
    assert _error("azure-dev", **{"aws:region": "eu-west-1"}).endswith(
        "aws:region: belongs to aws, but mlops:cloud is azure"
    )


def test_settings_are_immutable() -> None:
    settings = _load()
    with pytest.raises(Exception, match="frozen"):
        settings.lake.zones = ["x"]  # type: ignore[misc]


A = "stacks/Pulumi.azure-dev.yaml"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"mlops:registries": {"containers": {"keepLastImages": 10}}},
            f"{A}: mlops:registries.containers.keepLastImages: is not supported on azure: ACR "
            "retention covers untagged manifests only; it cannot keep the newest N images; "
            "remove it",
        ),
        (
            {"mlops:registries": {"containers": {"scanOnPush": True}}},
            f"{A}: mlops:registries.containers.scanOnPush: is not supported on azure: ACR images "
            "are scanned by Microsoft Defender for Containers, a subscription plan; remove it",
        ),
        (
            {"mlops:lake": {"retention": {"abortIncompleteUploadDays": 3}}},
            f"{A}: mlops:lake.retention.abortIncompleteUploadDays: is not supported on azure: "
            "Azure Storage discards uncommitted blocks after 7 days by itself; remove it",
        ),
        (
            {"mlops:lake": {"accessLogs": {"retentionDays": 7}}},
            f"{A}: mlops:lake.accessLogs.retentionDays: 7 is outside what a Log Analytics "
            "workspace keeps on azure (30 to 730)",
        ),
    ],
)
def test_azure_refuses_what_it_cannot_honour(changes: dict[str, Any], expected: str) -> None:
    assert _error("azure-dev", **changes) == expected


def test_the_same_keys_are_honoured_elsewhere() -> None:
    settings = _load(**{"mlops:registries": {"containers": {"keepLastImages": 10}}})
    assert settings.registries.containers.keep_last_images == 10


def _network(stack: str = BASE, **network: Any) -> str:
    return _error(stack, **{"mlops:network": network})


RFC1918 = "RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16"
NETWORK_BAD: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "public range",
        BASE,
        {"cidr": "8.8.0.0/16"},
        f"{F}: mlops:network.cidr: '8.8.0.0/16' is not a private range ({RFC1918})",
    ),
    (
        "host bits set",
        BASE,
        {"cidr": "10.20.0.1/16"},
        f"{F}: mlops:network.cidr: '10.20.0.1/16' has host bits set; the range is 10.20.0.0/16",
    ),
    (
        "no prefix length",
        BASE,
        {"cidr": "10.20.0.0"},
        f"{F}: mlops:network.cidr: '10.20.0.0' is not an IPv4 range in CIDR notation "
        "(like 10.20.0.0/16)",
    ),
    (
        "overlaps Docker's bridge",
        BASE,
        {"cidr": "172.16.0.0/12"},
        f"{F}: mlops:network.cidr: '172.16.0.0/12' overlaps 172.17.0.0/16 (Docker's default "
        "bridge network on container hosts)",
    ),
    (
        "overlaps a reserved range",
        BASE,
        {"cidr": "10.20.0.0/16", "reservedRanges": ["10.0.0.0/8"]},
        f"{F}: mlops:network.cidr: 10.20.0.0/16 overlaps 10.0.0.0/8 (reservedRanges[0])",
    ),
    (
        "public reserved range",
        BASE,
        {"reservedRanges": ["8.8.8.0/24"]},
        f"{F}: mlops:network.reservedRanges[0]: '8.8.8.0/24' is not a private range ({RFC1918})",
    ),
    (
        "too small for its subnets",
        BASE,
        {"cidr": "10.20.0.0/24", "subnetPrefixLength": 25, "egress": "nat"},
        f"{F}: mlops:network.cidr: 10.20.0.0/24 is too small: it holds 2 subnets of /25 "
        "(subnetPrefixLength) and this stack needs 5 (zones 2, egress nat on aws)",
    ),
    (
        "subnets no smaller than the range",
        BASE,
        {"cidr": "10.20.0.0/20", "subnetPrefixLength": 20},
        f"{F}: mlops:network.subnetPrefixLength: /20 is not smaller than cidr 10.20.0.0/20 itself",
    ),
    (
        "too many zones",
        BASE,
        {"zones": 4},
        f"{F}: mlops:network.zones: 4: Input should be less than or equal to 3",
    ),
    (
        "no zone",
        BASE,
        {"zones": 0},
        f"{F}: mlops:network.zones: 0: Input should be greater than or equal to 1",
    ),
    (
        "prod in one zone",
        "aws-prod",
        {"zones": 1},
        "stacks/Pulumi.aws-prod.yaml: mlops:network.zones: prod spreads over at least 2 zones, "
        "got 1",
    ),
    (
        "unknown egress",
        BASE,
        {"egress": "internet"},
        f"{F}: mlops:network.egress: 'internet': Input should be 'none' or 'nat'",
    ),
    (
        "typo in a network key",
        BASE,
        {"zone": 2},
        f"{F}: mlops:network.zone: unknown key (known keys: cidr, egress, flowLogs, "
        "reservedRanges, subnetPrefixLength, zones)",
    ),
    (
        "retention CloudWatch does not offer",
        BASE,
        {"flowLogs": {"retentionDays": 100}},
        f"{F}: mlops:network.flowLogs.retentionDays: 100 is not a retention CloudWatch Logs "
        "offers (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, "
        "2192, 2557, 2922, 3288, 3653)",
    ),
    (
        "retention Azure does not keep",
        "azure-dev",
        {"flowLogs": {"retentionDays": 400}},
        "stacks/Pulumi.azure-dev.yaml: mlops:network.flowLogs.retentionDays: 400 is more than "
        "Azure keeps flow logs (365 days)",
    ),
    (
        "retention GCP does not set per network",
        "gcp-dev",
        {"flowLogs": {"retentionDays": 30}},
        "stacks/Pulumi.gcp-dev.yaml: mlops:network.flowLogs.retentionDays: is not supported on "
        "gcp: VPC flow logs go to Cloud Logging, which keeps them for its log bucket's "
        "retention, not per network; remove it",
    ),
]


@pytest.mark.parametrize(
    ("stack", "network", "expected"),
    [b[1:] for b in NETWORK_BAD],
    ids=[b[0] for b in NETWORK_BAD],
)
def test_bad_network_settings_are_one_precise_line(
    stack: str, network: dict[str, Any], expected: str
) -> None:
    assert _network(stack, **network) == expected


def test_network_defaults_fit_every_cloud_and_keep_subnets_in_place() -> None:
    network = _load().network
    assert (network.cidr, network.zones, network.egress) == ("10.20.0.0/16", 2, "none")
    assert network.subnets("aws") == {"private-0": "10.20.0.0/20", "private-1": "10.20.16.0/20"}
    assert network.subnets("gcp") == {"workload": "10.20.0.0/20", "endpoints": "10.20.16.0/20"}
    wider = _load(**{"mlops:network": {"zones": 3, "egress": "nat"}}).network.subnets("aws")
    # Adding zones or NAT never moves an existing subnet (a move would replace it).
    assert wider["private-0"] == "10.20.0.0/20" and wider["private-1"] == "10.20.16.0/20"
    assert wider["public-0"] == "10.20.48.0/20"
    # A /24 with /27 subnets is enough for a NAT stack over three zones.
    small = {"cidr": "192.168.10.0/24", "subnetPrefixLength": 27, "zones": 3, "egress": "nat"}
    assert len(_load(**{"mlops:network": small}).network.subnets("aws")) == 6


def _endpoint(stack: str = BASE, **fields: Any) -> str:
    churn = {
        "model": {
            "image": {"repository": "serving", "tag": "1.0.0"},
            "artifact": {"zone": "curated", "path": "models/churn/1/model.tar.gz"},
        },
        "instanceType": "ml.m5.large",
        **fields,
    }
    return _error(stack, **{"mlops:endpoints": {"churn": churn}})


E = "mlops:endpoints.churn"
SAGEMAKER_TYPES, BOTOCORE = sagemaker_inference_instance_types()
ENDPOINT_BAD: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "instance type SageMaker does not offer",
        BASE,
        {"instanceType": "ml.g5.xlarg"},
        f"{F}: {E}.instanceType: 'ml.g5.xlarg' is not a SageMaker real-time inference "
        f"instance type (botocore {BOTOCORE} lists {len(SAGEMAKER_TYPES)}); did you mean "
        "ml.g5.xlarge, ml.g5.8xlarge, ml.g5.4xlarge?",
    ),
    (
        "image from a repository the stack does not have",
        BASE,
        {"model": {"image": {"repository": "inference", "tag": "1"}}},
        f"{F}: {E}.model.image.repository: 'inference' is not one of the stack's repositories "
        "(training, serving; registries.containers.repositories)",
    ),
    (
        "artifact outside the lake's zones",
        BASE,
        {
            "model": {
                "image": {"repository": "serving", "tag": "1"},
                "artifact": {"zone": "gold", "path": "m.tar.gz"},
            }
        },
        f"{F}: {E}.model.artifact.zone: 'gold' is not a lake zone (raw, curated, features)",
    ),
    (
        "artifact path escaping its zone",
        BASE,
        {
            "model": {
                "image": {"repository": "serving", "tag": "1"},
                "artifact": {"zone": "raw", "path": "../other/m.tar.gz"},
            }
        },
        f"{F}: {E}.model.artifact.path: '../other/m.tar.gz' is not a valid artifact path "
        "(a relative path like models/churn/3/model.tar.gz)",
    ),
    (
        "image both tagged and digested",
        BASE,
        {"model": {"image": {"repository": "serving", "tag": "1", "digest": "sha256:" + "a" * 64}}},
        f"{F}: {E}.model.image: give the image exactly one of tag or digest",
    ),
    (
        "registry version beside an image",
        BASE,
        {"model": {"image": {"repository": "serving", "tag": "1"}, "registryVersion": 3}},
        f"{F}: {E}.model: registryVersion names image and artifact itself; give one or the other",
    ),
    (
        "accelerator block on SageMaker",
        BASE,
        {"accelerator": {"type": "NVIDIA_L4", "count": 1}},
        f"{F}: {E}.accelerator: is not supported on aws: a SageMaker instance type carries its "
        "accelerators (ml.g5, ml.p4d, ml.inf2, ...); choose the type instead; remove it",
    ),
    (
        "canary on one replica",
        BASE,
        {"rollout": {"strategy": "canary"}},
        f"{F}: {E}.minReplicas: a canary rollout shifts part of the instances, so it needs at "
        "least 2 (got 1)",
    ),
    (
        "canary size on a linear rollout",
        BASE,
        {"rollout": {"strategy": "linear", "canaryPercent": 20}},
        f"{F}: {E}.rollout: canaryPercent applies to strategy canary, not linear",
    ),
    (
        "utilization above 100 percent",
        BASE,
        {"autoscaling": {"metric": "gpuUtilization", "target": 150}},
        f"{F}: {E}.autoscaling: target 150 is not a percentage for gpuUtilization",
    ),
    (
        "replica bounds",
        BASE,
        {"minReplicas": 3, "maxReplicas": 2},
        f"{F}: {E}: maxReplicas (2) is below minReplicas (3)",
    ),
    (
        "capture into a zone the lake does not have",
        BASE,
        {"dataCapture": {"percent": 10, "zone": "gold"}},
        f"{F}: {E}.dataCapture.zone: 'gold' is not a lake zone (raw, curated, features)",
    ),
]


@pytest.mark.parametrize(
    ("stack", "fields", "expected"),
    [b[1:] for b in ENDPOINT_BAD],
    ids=[b[0] for b in ENDPOINT_BAD],
)
def test_bad_endpoint_settings_are_one_precise_line(
    stack: str, fields: dict[str, Any], expected: str
) -> None:
    assert _endpoint(stack, **fields) == expected


def test_a_registry_version_needs_the_model_registry() -> None:
    churn = {"model": {"registryVersion": 3}, "instanceType": "ml.m5.large"}
    message = _error(
        **{
            "mlops:registries": {"models": {"enabled": False}},
            "mlops:endpoints": {"churn": churn},
        }
    )
    assert message == (
        f"{F}: {E}.model.registryVersion: needs the stack's model registry "
        "(registries.models.enabled is false)"
    )


def test_endpoint_defaults() -> None:
    churn = _load().endpoints["churn"]
    assert (churn.min_replicas, churn.max_replicas) == (1, 2)
    assert churn.autoscaling.metric == "invocationsPerReplica"
    assert churn.rollout.strategy == "allAtOnce"
    assert churn.network_isolation is True
    assert churn.data_capture.zone is None
    prod = _load("aws-prod").endpoints["churn"]
    assert (prod.instance_type, prod.min_replicas, prod.rollout.strategy) == (
        "ml.g5.xlarge",
        2,
        "canary",
    )


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    pools = {"tpu-pool": {"kind": "tpu", "type": "v5e"}}
    assert _error(**{"mlops:acceleratorPools": pools}).splitlines() == [
        f"{F}: mlops:acceleratorPools.tpu-pool.kind: tpu is not offered on aws (offered on gcp)",
    ]
    # The README's example stack file moved to Azure: four refusals, one run.
    registries = {"containers": {"keepLastImages": 5, "immutableTags": True, "scanOnPush": True}}
    lake = {"retention": {"abortIncompleteUploadDays": 3}}
    lines = _error("azure-dev", **{"mlops:registries": registries, "mlops:lake": lake}).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "mlops:registries.containers.keepLastImages",
        "mlops:registries.containers.immutableTags",
        "mlops:registries.containers.scanOnPush",
        "mlops:lake.retention.abortIncompleteUploadDays",
    ]
    # Model errors and cross-key errors together, the model's first.
    mixed = _error(**{"mlops:owner": "ML", "aws:region": "westeurope"}).splitlines()
    assert mixed == [
        f"{F}: mlops:owner: 'ML' is not a valid owner (lowercase letters, digits, . _ @ -)",
        f"{F}: aws:region: 'westeurope' is a region of azure, not of aws",
    ]


TYPOS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "misspelt provider key",
        BASE,
        {"aws:regoin": "eu-west-1"},
        f"{F}: aws:regoin: unknown aws provider key; did you mean aws:region?",
    ),
    (
        "unknown namespace",
        BASE,
        {"mlop:cloud": "aws"},
        f"{F}: mlop:cloud: unknown namespace 'mlop' (known: mlops, pulumi, aws)",
    ),
    (
        "aws region that does not exist",
        BASE,
        {"aws:region": "eu-west-9"},
        f"{F}: aws:region: 'eu-west-9' is not an AWS region (botocore {BOTOCORE} lists "
        f"{len(aws_regions()[0])}); did you mean eu-west-3, eu-west-2, eu-west-1?",
    ),
    (
        "gcp region that does not exist",
        "gcp-dev",
        {"gcp:region": "europe-west99"},
        "stacks/Pulumi.gcp-dev.yaml: gcp:region: 'europe-west99' is not a GCP region (the "
        "platform's list of 42, infra/catalogs.py); did you mean europe-west9, europe-west8, "
        "europe-west6?",
    ),
    (
        "azure location that does not exist",
        "azure-dev",
        {"azure-native:location": "westeuropa"},
        "stacks/Pulumi.azure-dev.yaml: azure-native:location: 'westeuropa' is not an Azure "
        "location (the platform's list of 57, infra/catalogs.py); did you mean westeurope?",
    ),
]


@pytest.mark.parametrize(
    ("stack", "changes", "expected"), [t[1:] for t in TYPOS], ids=[t[0] for t in TYPOS]
)
def test_typos_and_places_that_do_not_exist_are_named(
    stack: str, changes: dict[str, Any], expected: str
) -> None:
    assert _error(stack, **changes) == expected


def test_provider_keys_come_from_the_pinned_providers() -> None:
    assert {"region", "profile", "defaultTags"} <= provider_config_keys("aws")
    assert {"project", "region", "zone"} <= provider_config_keys("gcp")
    assert {"location", "subscriptionId"} <= provider_config_keys("azure-native")
    # Real keys of the stack's own provider pass.
    _load(**{"aws:profile": "ml", "pulumi:tags": '{"team": "ml"}'})


def test_a_misspelt_top_level_key_is_named(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "stacks"
    folder.mkdir()
    (folder / "Pulumi.typo-dev.yaml").write_text("confg:\n  mlops:cloud: aws\n")
    monkeypatch.setattr(stackfiles, "stacks_dir", lambda: folder)
    with pytest.raises(SettingsError) as caught:
        stackfiles.stack_values("typo-dev")
    assert str(caught.value).splitlines() == [
        "stacks/Pulumi.typo-dev.yaml: confg: unknown top-level key (known: config, "
        "encryptedkey, encryptionsalt, environment, secretsprovider)",
        "stacks/Pulumi.typo-dev.yaml: config: is required but missing",
    ]


def test_limits_the_clouds_set_and_malformed_clouds_are_lines_not_tracebacks() -> None:
    churn = {
        "model": {"image": {"repository": "serving", "tag": "1"}},
        "instanceType": "ml.m5.large",
        "rollout": {"waitMinutes": 61},
    }
    assert _error(**{"mlops:endpoints": {"churn": churn}}) == (
        f"{F}: mlops:endpoints.churn.rollout.waitMinutes: 61: Input should be less than or "
        "equal to 60"
    )
    assert _error(**{"mlops:network": {"cidr": "10.0.0.0/8"}}) == (
        f"{F}: mlops:network.cidr: 10.0.0.0/8: an AWS VPC takes a /16 to a /28 (a prefix "
        "length from 16 to 28)"
    )
    # GCP and Azure networks may be larger.
    load(
        "gcp-dev",
        stackfiles.as_engine_strings(
            {**stackfiles.stack_values("gcp-dev"), "mlops:network": {"cidr": "10.0.0.0/8"}}
        ),
    )
    lines = _error(**{"mlops:cloud": ["aws"]}).splitlines()
    assert lines[0] == f"{F}: mlops:cloud: Input should be 'aws', 'gcp' or 'azure'"
