"""What each cloud offers, read from the cloud's own published lists where one
ships offline, so a settings check never trusts a hand-written pattern."""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from mlops_policies.catalog import (
    # Lives with the policy pack, which imports nothing from infra/; the
    # platform reads it from here like every other catalog.
    accelerator_class,  # noqa: F401
    gcp_machine_series,
    has_local_storage,
)


@functools.cache
def sagemaker_inference_instance_types() -> tuple[frozenset[str], str]:
    """Every instance type a SageMaker real-time endpoint variant takes, from the
    SageMaker service model that ships with botocore, and botocore's version."""
    import botocore
    from botocore.loaders import Loader

    model = Loader().load_service_model("sagemaker", "service-2")
    types = model["shapes"]["ProductionVariantInstanceType"]["enum"]
    return frozenset(types), botocore.__version__


def close_matches(
    value: str, known: frozenset[str], prefix: str = "", *, ignore_case: bool = False
) -> str:
    """`; did you mean a, b?` for the nearest known values, or nothing. With
    `ignore_case`, values are compared in lowercase and named as `known` spells them."""
    spelling = {n.lower() if ignore_case else n: n for n in known}
    wanted = value.lower() if ignore_case else value
    near = difflib.get_close_matches(wanted, sorted(spelling), n=3, cutoff=0.75)
    return f"; did you mean {', '.join(prefix + spelling[n] for n in near)}?" if near else ""


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


@dataclass(frozen=True)
class Published:
    """Where one of the platform's own tables comes from: a page, and when it was read."""

    url: str
    checked: str

    def cite(self, count: int) -> str:
        return f"infra/catalogs.py lists {count} from {self.url}, checked {self.checked}"


def _sizes(pattern: str, *sizes: int) -> dict[str, int]:
    """`{name: size}` for the sizes of one series: `_sizes("e2-standard-{}", 2, 4)`."""
    return {pattern.format(size): size for size in sizes}


# No list of Vertex AI's prediction machine types ships offline: Google's
# packages carry the accelerator enum (below) but no machine types. From
# "Configure compute resources for prediction", its tables by series. On
# 2026-11-28 the E2 and N1 tables were read from the page; the other series
# and the N1 GPU counts come from earlier readings of it and of Compute
# Engine's machine type pages: re-read them on the live page when it changes.
# A type Vertex AI adds later is one line here.
VERTEX_PREDICTION = Published(
    "cloud.google.com/vertex-ai/docs/predictions/configure-compute", "2026-11-28"
)

# CPU-only machine types, by vCPUs.
VERTEX_CPU_MACHINE_TYPES: dict[str, int] = {
    **_sizes("e2-standard-{}", 2, 4, 8, 16, 32),
    **_sizes("e2-highmem-{}", 2, 4, 8, 16),
    **_sizes("e2-highcpu-{}", 2, 4, 8, 16, 32),
    **_sizes("n2-standard-{}", 2, 4, 8, 16, 32, 48, 64, 80),
    **_sizes("n2-highmem-{}", 2, 4, 8, 16, 32, 48, 64, 80),
    **_sizes("n2-highcpu-{}", 2, 4, 8, 16, 32, 48, 64, 80, 96),
    **_sizes("n2d-standard-{}", 2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224),
    **_sizes("n2d-highmem-{}", 2, 4, 8, 16, 32, 48, 64, 80, 96),
    **_sizes("n2d-highcpu-{}", 2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224),
    **_sizes("c2-standard-{}", 4, 8, 16, 30, 60),
    **_sizes("c2d-standard-{}", 2, 4, 8, 16, 32, 56, 112),
    **_sizes("c2d-highcpu-{}", 2, 4, 8, 16, 32, 56, 112),
    **_sizes("c2d-highmem-{}", 2, 4, 8, 16, 32, 56, 112),
    **_sizes("c3-highcpu-{}", 4, 8, 22, 44, 88, 176),
}

# N1 types, by vCPUs: CPU-only, or with GPUs attached (VERTEX_N1_GPUS).
VERTEX_N1_MACHINE_TYPES: dict[str, int] = {
    **_sizes("n1-standard-{}", 2, 4, 8, 16, 32),
    **_sizes("n1-highmem-{}", 2, 4, 8, 16, 32),
    **_sizes("n1-highcpu-{}", 4, 8, 16, 32),
}

# The GPUs Vertex AI attaches to an N1 type, and how many, by the type's vCPUs
# (a GPU serves only so many vCPUs, so larger types need more GPUs).
_N1_ONE_TWO_FOUR = {2: (1, 2, 4), 4: (1, 2, 4), 8: (1, 2, 4), 16: (1, 2, 4), 32: (2, 4)}
VERTEX_N1_GPUS: dict[str, dict[int, tuple[int, ...]]] = {
    "NVIDIA_TESLA_P4": _N1_ONE_TWO_FOUR,
    "NVIDIA_TESLA_P100": _N1_ONE_TWO_FOUR,
    "NVIDIA_TESLA_T4": _N1_ONE_TWO_FOUR,
    "NVIDIA_TESLA_V100": {
        2: (1, 2, 4, 8), 4: (1, 2, 4, 8), 8: (1, 2, 4, 8), 16: (2, 4, 8), 32: (4, 8)
    },
}  # fmt: skip

# Accelerator-optimized types carry a fixed set of GPUs, which a deployment
# states as its accelerator type and count.
VERTEX_GPU_MACHINE_TYPES: dict[str, tuple[str, int]] = {
    **{f"a2-highgpu-{n}g": ("NVIDIA_TESLA_A100", n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("NVIDIA_TESLA_A100", 16),
    **{f"a2-ultragpu-{n}g": ("NVIDIA_A100_80GB", n) for n in (1, 2, 4, 8)},
    **{f"a3-highgpu-{n}g": ("NVIDIA_H100_80GB", n) for n in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("NVIDIA_H100_MEGA_80GB", 8),
    "a3-ultragpu-8g": ("NVIDIA_H200_141GB", 8),
    "a4-highgpu-8g": ("NVIDIA_B200", 8),
    **{
        f"g2-standard-{vcpus}": ("NVIDIA_L4", gpus)
        for vcpus, gpus in ((4, 1), (8, 1), (12, 1), (16, 1), (24, 2), (32, 1), (48, 4), (96, 8))
    },
}

# Cloud TPU v5e, the one TPU generation Vertex AI serves on, by chips; the
# machine type brings them, so a deployment names no accelerator.
VERTEX_TPU_MACHINE_TYPES: dict[str, int] = _sizes("ct5lp-hightpu-{}t", 1, 4, 8)

VERTEX_MACHINE_TYPES: frozenset[str] = frozenset(
    {
        *VERTEX_CPU_MACHINE_TYPES,
        *VERTEX_N1_MACHINE_TYPES,
        *VERTEX_GPU_MACHINE_TYPES,
        *VERTEX_TPU_MACHINE_TYPES,
    }
)

# Vertex AI's AcceleratorType enum, from the aiplatform v1 discovery document
# that google-api-python-client 2.202.0 ships (a 17 MB wheel, 111 MB installed:
# not worth pinning for one enum), without ACCELERATOR_TYPE_UNSPECIFIED.
# NVIDIA_TESLA_K80 is past its end of support and attaches to nothing here.
VERTEX_ACCELERATOR_SOURCE = "AcceleratorType of the aiplatform v1 API, revision 20261106"
VERTEX_ACCELERATOR_TYPES: frozenset[str] = frozenset(
    {
        "NVIDIA_TESLA_K80", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P4",
        "NVIDIA_TESLA_T4", "NVIDIA_TESLA_A100", "NVIDIA_A100_80GB", "NVIDIA_L4",
        "NVIDIA_H100_80GB", "NVIDIA_H100_MEGA_80GB", "NVIDIA_H200_141GB", "NVIDIA_B200",
        "NVIDIA_GB200", "NVIDIA_RTX_PRO_6000", "TPU_V2", "TPU_V3", "TPU_V4_POD",
        "TPU_V5_LITEPOD",
    }
)  # fmt: skip


def vertex_series_carrying(accelerator_type: str) -> list[str]:
    """The accelerator-optimized series (`g2-standard`) whose types carry `accelerator_type`."""
    carriers = (m for m, (t, _) in VERTEX_GPU_MACHINE_TYPES.items() if t == accelerator_type)
    return sorted({gcp_machine_series(m) for m in carriers})


# No list of the VM sizes an Azure ML managed online deployment takes ships
# offline (azure-ai-ml 1.35.2 names a few small sizes to warn about, no list).
# From "Managed online endpoints SKU list" (page dated 2025-10-18), in the
# spelling Azure's VM size pages use; Azure compares sizes case-insensitively.
AZURE_ONLINE_ENDPOINTS = Published(
    "learn.microsoft.com/azure/machine-learning/reference-managed-online-endpoints-vm-sku-list",
    "2026-11-28",
)
AZURE_ONLINE_ENDPOINT_CPU_SKUS: frozenset[str] = frozenset(
    {
        *_sizes("Standard_D{}as_v4", 2, 4, 8, 16, 32, 48, 64, 96),
        *_sizes("Standard_D{}a_v4", 2, 4, 8, 16, 32, 48, 64, 96),
        *_sizes("Standard_DS{}_v2", 1, 2, 3, 4, 5),
        *_sizes("Standard_E{}s_v3", 2, 4, 8, 16, 32, 48, 64),
        *_sizes("Standard_F{}s_v2", 2, 4, 8, 16, 32, 48, 64, 72),
        *_sizes("Standard_FX{}mds", 4, 12, 24, 36, 48),
        *_sizes("Standard_L{}as_v3", 8, 16, 32, 48, 64, 80),
        *_sizes("Standard_L{}s_v2", 8, 16, 32, 48, 64, 80),
        *_sizes("Standard_L{}s_v3", 8, 16, 32, 48, 64, 80),
    }
)
AZURE_ONLINE_ENDPOINT_GPU_SKUS: frozenset[str] = frozenset(
    {
        *_sizes("Standard_NC{}ads_A100_v4", 24, 48, 96),
        *_sizes("Standard_NC{}as_T4_v3", 4, 8, 16, 64),
        *_sizes("Standard_NC{}s_v2", 6, 12, 24),
        *_sizes("Standard_NC{}s_v3", 6, 12, 24),
        "Standard_NC40ads_H100_v5",
        "Standard_NC80adis_H100_v5",
        "Standard_ND96amsr_A100_v4",
        "Standard_ND96asr_v4",
        "Standard_ND40rs_v2",
        "Standard_ND96is_H100_v5",
        "Standard_ND96isr_H100_v5",
        *_sizes("Standard_NV{}ads_A10_v5", 6, 12, 18, 36, 72),
        "Standard_NV36adms_A10_v5",
    }
)
AZURE_ONLINE_ENDPOINT_SKUS = AZURE_ONLINE_ENDPOINT_CPU_SKUS | AZURE_ONLINE_ENDPOINT_GPU_SKUS


def azure_online_endpoint_sku(vm_size: str) -> str | None:
    """The managed online endpoint SKU `vm_size` names, in any case, as the list spells it."""
    return next((s for s in AZURE_ONLINE_ENDPOINT_SKUS if s.lower() == vm_size.lower()), None)


# Model Monitor's analyzer image (sagemaker-model-monitor-analyzer), per region:
# the registries of the SageMaker Python SDK's image_uri_config/model-monitor.json,
# checked 2026-11. A region missing here is a settings error for a monitored endpoint.
MODEL_MONITOR_REGISTRIES: dict[str, str] = {
    "ap-east-1": "001633400207",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ca-central-1": "536280801234",
    "cn-north-1": "453000072557",
    "cn-northwest-1": "453252182341",
    "eu-central-1": "048819808253",
    "eu-north-1": "895015795356",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "me-south-1": "607024016150",
    "sa-east-1": "539772159869",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}


def model_monitor_image(region: str) -> str:
    """The analyzer image Model Monitor's data quality jobs run in `region`."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    registry = MODEL_MONITOR_REGISTRIES[region]
    return f"{registry}.dkr.ecr.{region}.{suffix}/sagemaker-model-monitor-analyzer"


@functools.cache
def ec2_instance_types() -> tuple[frozenset[str], str]:
    """Every EC2 instance type, from the EC2 service model that ships with botocore,
    and botocore's version."""
    import botocore
    from botocore.loaders import Loader

    model = Loader().load_service_model("ec2", "service-2")
    return frozenset(model["shapes"]["InstanceType"]["enum"]), botocore.__version__


@dataclass(frozen=True)
class RegionalOffers:
    """Where each listed instance type is offered, and where that list comes from."""

    regions: dict[str, frozenset[str]]
    source: str
    as_of: str

    def cite(self) -> str:
        return f"AWS's price list as of {self.as_of}, infra/data/{EC2_REGIONS_FILE}"


EC2_REGIONS_FILE = "ec2_accelerated_regions.json"


@functools.cache
def ec2_accelerated_regions() -> RegionalOffers:
    """The regions each accelerated EC2 type (GPU, Inferentia, Trainium) is offered
    in. botocore lists every type but not where it runs; this table does, for
    accelerated types only, so other types are never refused by region."""
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).parent / "data" / EC2_REGIONS_FILE).read_text())
    return RegionalOffers(
        regions={t: frozenset(r) for t, r in data["types"].items()},
        source=data["source"],
        as_of=data["asOf"],
    )


# Cloud TPU types a pool may name (`v5litepod-8`: generation and TensorCore or chip
# count), from Google Cloud's TPU versions pages (v4, v5e, v5p, v6e), checked
# 2026-11; their chips per type are the count for v5litepod and v6e, half of it for
# v4 and v5p (two TensorCores a chip).
TPU_TYPES = Published("cloud.google.com/tpu/docs/system-architecture-tpu-vm", "2026-11-28")
TPU_GENERATIONS: dict[str, tuple[int, ...]] = {
    "v4": (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
    "v5litepod": (1, 4, 8, 16, 32, 64, 128, 256),
    "v5p": (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 6144, 12288),
    "v6e": (1, 4, 8, 16, 32, 64, 128, 256),
}
TPU_TYPE_NAMES: frozenset[str] = frozenset(
    f"{generation}-{size}" for generation, sizes in TPU_GENERATIONS.items() for size in sizes
)
