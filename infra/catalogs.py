"""What each cloud offers, read from the cloud's own published lists where one
ships offline, so a settings check never trusts a hand-written pattern."""

from __future__ import annotations

import difflib
import functools

from mlops_policies.catalog import has_local_storage


@functools.cache
def sagemaker_inference_instance_types() -> tuple[frozenset[str], str]:
    """Every instance type a SageMaker real-time endpoint variant takes, from the
    SageMaker service model that ships with botocore, and botocore's version."""
    import botocore
    from botocore.loaders import Loader

    model = Loader().load_service_model("sagemaker", "service-2")
    types = model["shapes"]["ProductionVariantInstanceType"]["enum"]
    return frozenset(types), botocore.__version__


def close_matches(value: str, known: frozenset[str], prefix: str = "") -> str:
    """`; did you mean a, b?` for the nearest known values, or nothing."""
    near = difflib.get_close_matches(value, sorted(known), n=3, cutoff=0.75)
    return f"; did you mean {', '.join(prefix + n for n in near)}?" if near else ""


def sagemaker_local_storage(instance_type: str) -> bool:
    """True when `ml.<family>.<size>` has local NVMe storage, which SageMaker
    encrypts in hardware and for which it refuses a KMS key. The table is the
    policy pack's, so the platform and its rules never disagree."""
    return has_local_storage(instance_type)


@functools.cache
def aws_regions() -> tuple[frozenset[str], str]:
    """Every region of every AWS partition, from the endpoints data botocore ships."""
    import json
    from pathlib import Path

    import botocore

    endpoints = Path(botocore.__file__).parent / "data" / "endpoints.json"
    data = json.loads(endpoints.read_text())
    regions = {region for partition in data["partitions"] for region in partition["regions"]}
    return frozenset(regions), botocore.__version__


# No list of Google Cloud regions ships offline. From Google Cloud's
# "Geography and regions" and per-product location pages, checked 2026-11;
# a region opened later is one line here.
GCP_REGIONS = frozenset(
    {
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-south2",
        "asia-southeast1",
        "asia-southeast2",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-north2",
        "europe-southwest1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "europe-west10",
        "europe-west12",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "northamerica-south1",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
    }
)

# No list of Azure locations ships offline. The public cloud's physical
# regions as `az account list-locations` names them, checked 2026-11; a
# location opened later is one line here.
AZURE_LOCATIONS = frozenset(
    {
        "australiacentral",
        "australiacentral2",
        "australiaeast",
        "australiasoutheast",
        "austriaeast",
        "belgiumcentral",
        "brazilsouth",
        "brazilsoutheast",
        "canadacentral",
        "canadaeast",
        "centralindia",
        "centralus",
        "chilecentral",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "francesouth",
        "germanynorth",
        "germanywestcentral",
        "indonesiacentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "japanwest",
        "jioindiacentral",
        "jioindiawest",
        "koreacentral",
        "koreasouth",
        "malaysiawest",
        "mexicocentral",
        "newzealandnorth",
        "northcentralus",
        "northeurope",
        "norwayeast",
        "norwaywest",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southafricawest",
        "southcentralus",
        "southeastasia",
        "southindia",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "switzerlandwest",
        "uaecentral",
        "uaenorth",
        "uksouth",
        "ukwest",
        "westcentralus",
        "westeurope",
        "westindia",
        "westus",
        "westus2",
        "westus3",
    }
)

# The provider SDK package whose config module lists a namespace's keys.
PROVIDER_PACKAGES = {
    "aws": "pulumi_aws",
    "gcp": "pulumi_gcp",
    "azure-native": "pulumi_azure_native",
}


@functools.cache
def provider_config_keys(namespace: str) -> frozenset[str]:
    """The keys a provider reads from its config namespace, from the pinned SDK's
    own config module (read as text: importing it would load the provider)."""
    import importlib.util
    import re
    from pathlib import Path

    spec = importlib.util.find_spec(PROVIDER_PACKAGES[namespace])
    assert spec is not None and spec.submodule_search_locations  # pinned in requirements
    source = Path(spec.submodule_search_locations[0], "config", "vars.py").read_text()
    return frozenset(re.findall(r"__config__\.get\w*\(\s*'([A-Za-z0-9]+)'", source))
