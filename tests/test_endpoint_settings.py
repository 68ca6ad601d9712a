"""An endpoint's instance type (and accelerator) is one its cloud's serving
service offers, from the cloud's own list; every accelerated type has one
accelerator class, named the same on every cloud."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlops_policies import catalog

from infra.catalogs import (
    AZURE_ONLINE_ENDPOINT_CPU_SKUS,
    AZURE_ONLINE_ENDPOINT_GPU_SKUS,
    AZURE_ONLINE_ENDPOINT_SKUS,
    AZURE_ONLINE_ENDPOINTS,
    VERTEX_ACCELERATOR_SOURCE,
    VERTEX_ACCELERATOR_TYPES,
    VERTEX_CPU_MACHINE_TYPES,
    VERTEX_GPU_MACHINE_TYPES,
    VERTEX_MACHINE_TYPES,
    VERTEX_N1_GPUS,
    VERTEX_N1_MACHINE_TYPES,
    VERTEX_PREDICTION,
    VERTEX_TPU_MACHINE_TYPES,
    accelerator_class,
    sagemaker_inference_instance_types,
)
from infra.settings import SettingsError, load
from tools import stackfiles

E = "mlops:endpoints.churn"
GCP = "stacks/Pulumi.gcp-dev.yaml"
AZURE = "stacks/Pulumi.azure-dev.yaml"
AS_OF = f"(Vertex AI's machine types as of {VERTEX_PREDICTION.checked}, infra/catalogs.py)"
VERTEX_LIST = (
    f"infra/catalogs.py lists {len(VERTEX_MACHINE_TYPES)} from "
    f"cloud.google.com/vertex-ai/docs/predictions/configure-compute, "
    f"checked {VERTEX_PREDICTION.checked}"
)
AZURE_LIST = (
    f"infra/catalogs.py lists {len(AZURE_ONLINE_ENDPOINT_SKUS)} from "
    "learn.microsoft.com/azure/machine-learning/reference-managed-online-endpoints-vm-sku-list, "
    f"checked {AZURE_ONLINE_ENDPOINTS.checked}"
)


@functools.cache
def _shipped(stack: str) -> dict[str, Any]:
    return stackfiles.stack_values(stack)


def _problems(stack: str, **fields: Any) -> list[str]:
    """Every line `load` reports for a shipped stack serving one endpoint, churn.
    While GCP and Azure endpoints are not provisioned, the loader's refusal is
    among them; the lines asserted here are the endpoint's own."""
    churn = {"model": {"image": {"repository": "serving", "tag": "1.0.0"}}, **fields}
    values = {**copy.deepcopy(_shipped(stack)), "mlops:endpoints": {"churn": churn}}
    try:
        load(stack, stackfiles.as_engine_strings(values))
    except SettingsError as error:
        return str(error).splitlines()
    return []


def _endpoint_problems(lines: list[str]) -> list[str]:
    return [line for line in lines if f": {E}" in line]


BAD: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "machine type Vertex AI does not serve on",
        "gcp-dev",
        {"instanceType": "n1-standard-3"},
        f"{GCP}: {E}.instanceType: 'n1-standard-3' is not a Vertex AI prediction machine type "
        f"({VERTEX_LIST}); did you mean n1-standard-32, n1-standard-8, n1-standard-4?",
    ),
    (
        "Compute Engine type Vertex AI does not serve on",
        "gcp-dev",
        {"instanceType": "t2d-standard-4"},
        f"{GCP}: {E}.instanceType: 't2d-standard-4' is not a Vertex AI prediction machine type "
        f"({VERTEX_LIST}); did you mean n2d-standard-4, c2d-standard-4, n2d-standard-64?",
    ),
    (
        "misspelt accelerator type",
        "gcp-dev",
        {"instanceType": "n1-standard-4", "accelerator": {"type": "NVIDIA_TESLA_T5"}},
        f"{GCP}: {E}.accelerator.type: 'NVIDIA_TESLA_T5' is not a Vertex AI accelerator type "
        f"({VERTEX_ACCELERATOR_SOURCE}, infra/catalogs.py); did you mean NVIDIA_TESLA_T4, "
        "NVIDIA_TESLA_P4, NVIDIA_TESLA_K80?",
    ),
    (
        "GPU that does not attach to n1",
        "gcp-dev",
        {"instanceType": "n1-standard-4", "accelerator": {"type": "NVIDIA_L4"}},
        f"{GCP}: {E}.accelerator.type: n1-standard-4 takes NVIDIA_TESLA_P100, NVIDIA_TESLA_P4, "
        f"NVIDIA_TESLA_T4 or NVIDIA_TESLA_V100, not NVIDIA_L4 {AS_OF}; NVIDIA_L4 comes with "
        "g2-standard-* types",
    ),
    (
        "too few T4 for an n1 type's vCPUs",
        "gcp-dev",
        {"instanceType": "n1-standard-32", "accelerator": {"type": "NVIDIA_TESLA_T4", "count": 1}},
        f"{GCP}: {E}.accelerator.count: n1-standard-32 takes 2 or 4 NVIDIA_TESLA_T4, not 1 {AS_OF}",
    ),
    (
        "a V100 count Vertex AI does not attach",
        "gcp-dev",
        {"instanceType": "n1-highmem-16", "accelerator": {"type": "NVIDIA_TESLA_V100", "count": 3}},
        f"{GCP}: {E}.accelerator.count: n1-highmem-16 takes 2, 4 or 8 NVIDIA_TESLA_V100, not 3 "
        f"{AS_OF}",
    ),
    (
        "GPU type stated without its GPUs",
        "gcp-dev",
        {"instanceType": "g2-standard-8"},
        f"{GCP}: {E}.accelerator: is required for g2-standard-8: Vertex AI takes the GPUs it "
        f"carries stated, type NVIDIA_L4 and count 1 {AS_OF}",
    ),
    (
        "GPU type with another GPU",
        "gcp-dev",
        {"instanceType": "g2-standard-8", "accelerator": {"type": "NVIDIA_TESLA_T4"}},
        f"{GCP}: {E}.accelerator.type: g2-standard-8 carries NVIDIA_L4, not NVIDIA_TESLA_T4 "
        f"{AS_OF}",
    ),
    (
        "GPU type with another count",
        "gcp-dev",
        {"instanceType": "g2-standard-24", "accelerator": {"type": "NVIDIA_L4", "count": 1}},
        f"{GCP}: {E}.accelerator.count: g2-standard-24 carries 2 NVIDIA_L4, not 1 {AS_OF}",
    ),
    (
        "a2-ultragpu with 40 GB A100s",
        "gcp-dev",
        {"instanceType": "a2-ultragpu-1g", "accelerator": {"type": "NVIDIA_TESLA_A100"}},
        f"{GCP}: {E}.accelerator.type: a2-ultragpu-1g carries NVIDIA_A100_80GB, not "
        f"NVIDIA_TESLA_A100 {AS_OF}",
    ),
    (
        "a3-highgpu-8g with half its H100s",
        "gcp-dev",
        {"instanceType": "a3-highgpu-8g", "accelerator": {"type": "NVIDIA_H100_80GB", "count": 4}},
        f"{GCP}: {E}.accelerator.count: a3-highgpu-8g carries 8 NVIDIA_H100_80GB, not 4 {AS_OF}",
    ),
    (
        "accelerator on a CPU type",
        "gcp-dev",
        {"instanceType": "e2-standard-4", "accelerator": {"type": "NVIDIA_TESLA_T4"}},
        f"{GCP}: {E}.accelerator: e2-standard-4 takes no accelerator {AS_OF}: Vertex AI "
        "attaches GPUs to n1 types only, and a2, a3, a4 and g2 types carry their own; remove it",
    ),
    (
        "accelerator on a TPU type",
        "gcp-dev",
        {
            "instanceType": "ct5lp-hightpu-4t",
            "accelerator": {"type": "TPU_V5_LITEPOD", "count": 4},
        },
        f"{GCP}: {E}.accelerator: ct5lp-hightpu-4t takes no accelerator {AS_OF}: its 4 TPU v5e "
        "chips come with the machine type; remove it",
    ),
    (
        "size not on the managed online endpoint list",
        "azure-dev",
        {"instanceType": "Standard_NC6_v3"},
        f"{AZURE}: {E}.instanceType: 'Standard_NC6_v3' is not a VM size Azure ML managed online "
        f"endpoints take ({AZURE_LIST}); did you mean Standard_NC6s_v3, Standard_NC6s_v2, "
        "Standard_NC24s_v3?",
    ),
    (
        "an Azure VM size managed online endpoints do not take",
        "azure-dev",
        {"instanceType": "Standard_D4s_v5"},
        f"{AZURE}: {E}.instanceType: 'Standard_D4s_v5' is not a VM size Azure ML managed online "
        f"endpoints take ({AZURE_LIST}); did you mean Standard_D4as_v4, Standard_D64as_v4, "
        "Standard_D48as_v4?",
    ),
    (
        "SageMaker type on Azure",
        "azure-dev",
        {"instanceType": "ml.m5.large"},
        f"{AZURE}: {E}.instanceType: 'ml.m5.large' is not a VM size Azure ML managed online "
        f"endpoints take ({AZURE_LIST})",
    ),
    (
        "accelerator block on Azure",
        "azure-dev",
        {"instanceType": "Standard_NC6s_v3", "accelerator": {"type": "NVIDIA_TESLA_V100"}},
        f"{AZURE}: {E}.accelerator: is not supported on azure: an Azure ML VM size carries its "
        "GPUs (Standard_NC4as_T4_v3, Standard_NC24ads_A100_v4, ...); choose the size instead; "
        "remove it",
    ),
]


@pytest.mark.parametrize(
    ("stack", "fields", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_type_the_service_does_not_offer_is_one_precise_line(
    stack: str, fields: dict[str, Any], expected: str
) -> None:
    assert _endpoint_problems(_problems(stack, **fields)) == [expected]


def _stack_file_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: str, endpoints: str
) -> list[str]:
    """Every line `load` reports for the shipped stack file with its endpoints
    replaced by `endpoints` (YAML, as a stack file writes them)."""
    import yaml

    folder = tmp_path / "stacks"
    folder.mkdir()
    data = yaml.safe_load((stackfiles.stacks_dir() / f"Pulumi.{stack}.yaml").read_text())
    data["config"]["mlops:endpoints"] = yaml.safe_load(endpoints)
    (folder / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setattr(stackfiles, "stacks_dir", lambda: folder)
    values = stackfiles.stack_values(stack)
    assert values["mlops:endpoints"] == yaml.safe_load(endpoints)  # the file was read
    try:
        load(stack, stackfiles.as_engine_strings(values))
    except SettingsError as error:
        return str(error).splitlines()
    return []


PLANNED = [
    ("gcp-dev", "instanceType: n1-standard-4"),
    ("gcp-prod", "instanceType: g2-standard-8\n  accelerator: {type: NVIDIA_L4, count: 1}"),
    ("azure-dev", "instanceType: Standard_DS3_v2"),
    ("azure-prod", "instanceType: Standard_NC4as_T4_v3"),
    ("azure-prod", "instanceType: Standard_NC6s_v3"),
]


@pytest.mark.parametrize(
    ("stack", "serving"), PLANNED, ids=[f"{s} {t.split()[1]}" for s, t in PLANNED]
)
def test_the_types_the_stack_files_will_use_are_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: str, serving: str
) -> None:
    endpoints = f"churn:\n  model:\n    image: {{repository: serving, tag: '1.0.0'}}\n  {serving}\n"
    assert _endpoint_problems(_stack_file_problems(tmp_path, monkeypatch, stack, endpoints)) == []


def test_every_listed_vertex_type_loads_with_the_accelerator_it_takes() -> None:
    for machine in sorted(VERTEX_MACHINE_TYPES):
        fields: dict[str, Any] = {"instanceType": machine}
        if machine in VERTEX_GPU_MACHINE_TYPES:
            kind, count = VERTEX_GPU_MACHINE_TYPES[machine]
            fields["accelerator"] = {"type": kind, "count": count}
        assert _endpoint_problems(_problems("gcp-dev", **fields)) == [], machine
    # Each N1 type with each GPU, at every count its vCPUs allow.
    for kind, counts in VERTEX_N1_GPUS.items():
        for machine, vcpus in VERTEX_N1_MACHINE_TYPES.items():
            for count in counts[vcpus]:
                accelerator = {"type": kind, "count": count}
                lines = _problems("gcp-dev", instanceType=machine, accelerator=accelerator)
                assert _endpoint_problems(lines) == [], (machine, accelerator)


def test_azure_sizes_are_compared_as_azure_does_regardless_of_case() -> None:
    # The SKU list spells sizes in capitals; Azure's VM size pages do not.
    for size in ("STANDARD_NC4AS_T4_V3", "standard_ds3_v2", "Standard_ND96isr_H100_v5"):
        assert _endpoint_problems(_problems("azure-dev", instanceType=size)) == [], size


def test_the_tables_hold_what_their_sources_list() -> None:
    # Azure ML's list as of its page of 2025-10-18: 59 CPU sizes, 26 GPU sizes.
    assert (len(AZURE_ONLINE_ENDPOINT_CPU_SKUS), len(AZURE_ONLINE_ENDPOINT_GPU_SKUS)) == (59, 26)
    assert {"Standard_DS3_v2", "Standard_NC4as_T4_v3", "Standard_NC6s_v3"} <= (
        AZURE_ONLINE_ENDPOINT_SKUS
    )
    assert {"n1-standard-4", "e2-standard-4", "n2-standard-8", "c2-standard-8"} <= set(
        VERTEX_CPU_MACHINE_TYPES
    ) | set(VERTEX_N1_MACHINE_TYPES)
    assert VERTEX_GPU_MACHINE_TYPES["g2-standard-96"] == ("NVIDIA_L4", 8)
    assert VERTEX_GPU_MACHINE_TYPES["a2-highgpu-4g"] == ("NVIDIA_TESLA_A100", 4)
    assert set(VERTEX_TPU_MACHINE_TYPES) == {
        "ct5lp-hightpu-1t",
        "ct5lp-hightpu-4t",
        "ct5lp-hightpu-8t",
    }
    # The series are disjoint: a type is CPU-only, N1, GPU or TPU.
    parts = (VERTEX_CPU_MACHINE_TYPES, VERTEX_N1_MACHINE_TYPES, VERTEX_GPU_MACHINE_TYPES)
    assert sum(len(p) for p in parts) + len(VERTEX_TPU_MACHINE_TYPES) == len(VERTEX_MACHINE_TYPES)
    # Every accelerator a type carries or takes is one of Vertex AI's enum.
    carried = {kind for kind, _ in VERTEX_GPU_MACHINE_TYPES.values()}
    assert carried | set(VERTEX_N1_GPUS) <= VERTEX_ACCELERATOR_TYPES


CLASSES: list[tuple[str, str, str | None, str | None]] = [
    ("aws", "ml.g4dn.xlarge", None, "t4"),
    ("aws", "ml.g5.2xlarge", None, "a10g"),
    ("aws", "ml.g6.xlarge", None, "l4"),
    ("aws", "g6e.xlarge", None, "l40s"),
    ("aws", "ml.p3.2xlarge", None, "v100"),
    ("aws", "ml.p4d.24xlarge", None, "a100"),
    ("aws", "ml.p5.48xlarge", None, "h100"),
    ("aws", "ml.p5en.48xlarge", None, "h200"),
    ("aws", "ml.p6-b200.48xlarge", None, "b200"),
    ("aws", "ml.inf2.xlarge", None, "inferentia"),
    ("aws", "ml.trn1.2xlarge", None, "trainium"),
    ("aws", "ml.m5.large", None, None),
    ("gcp", "n1-standard-4", None, None),
    ("gcp", "n1-standard-4", "NVIDIA_TESLA_T4", "t4"),
    ("gcp", "n1-standard-8", "nvidia-tesla-v100", "v100"),
    ("gcp", "g2-standard-8", "NVIDIA_L4", "l4"),
    ("gcp", "g2-standard-8", None, "l4"),
    ("gcp", "a2-ultragpu-1g", None, "a100"),
    ("gcp", "a3-highgpu-8g", "NVIDIA_H100_80GB", "h100"),
    ("gcp", "ct5lp-hightpu-4t", None, "tpu"),
    ("gcp", "e2-standard-4", None, None),
    ("azure", "Standard_NC4as_T4_v3", None, "t4"),
    ("azure", "Standard_NC6s_v3", None, "v100"),
    ("azure", "Standard_NC24ads_A100_v4", None, "a100"),
    ("azure", "Standard_ND96asr_v4", None, "a100"),
    ("azure", "STANDARD_ND96ISR_H100_V5", None, "h100"),
    ("azure", "Standard_NV36ads_A10_v5", None, "a10"),
    ("azure", "Standard_DS3_v2", None, None),
]


@pytest.mark.parametrize(("cloud", "instance_type", "accelerator", "expected"), CLASSES)
def test_accelerator_class(
    cloud: str, instance_type: str, accelerator: str | None, expected: str | None
) -> None:
    assert accelerator_class(cloud, instance_type, accelerator) == expected


def test_every_accelerated_type_of_every_list_has_a_class() -> None:
    types, _ = sagemaker_inference_instance_types()
    aws = {t: accelerator_class("aws", t) for t in types}
    accelerated = {t for t in types if catalog.accelerator_kind(t) or ".dl1." in t}
    assert {t for t, c in aws.items() if c} == accelerated
    # No family in the table that SageMaker does not offer (a typo classifies nothing).
    assert set(catalog.AWS_FAMILY_ACCELERATORS) == {catalog.instance_family(t) for t in accelerated}
    for machine, (kind, _) in VERTEX_GPU_MACHINE_TYPES.items():
        assert accelerator_class("gcp", machine) == accelerator_class("gcp", machine, kind)
    gcp = {accelerator_class("gcp", m) for m in VERTEX_GPU_MACHINE_TYPES}
    assert {accelerator_class("gcp", m) for m in VERTEX_TPU_MACHINE_TYPES} == {"tpu"}
    assert {accelerator_class("gcp", "n1-standard-4", k) for k in VERTEX_ACCELERATOR_TYPES} <= (
        catalog.ACCELERATOR_CLASSES
    )
    cpu = {*VERTEX_CPU_MACHINE_TYPES, *VERTEX_N1_MACHINE_TYPES, *AZURE_ONLINE_ENDPOINT_CPU_SKUS}
    assert {accelerator_class("gcp", m) for m in cpu if "-" in m} == {None}
    assert {accelerator_class("azure", s) for s in AZURE_ONLINE_ENDPOINT_CPU_SKUS} == {None}
    azure = {accelerator_class("azure", s) for s in AZURE_ONLINE_ENDPOINT_GPU_SKUS}
    assert set(aws.values()) - {None} | gcp | azure <= catalog.ACCELERATOR_CLASSES


def test_the_policy_pack_classifies_without_the_platform() -> None:
    code = (
        "import sys; from mlops_policies.catalog import accelerator_class; "
        "assert accelerator_class('azure', 'Standard_ND96isr_H100_v5') == 'h100'; "
        "assert not [m for m in sys.modules if m == 'infra' or m.startswith('infra.')]"
    )
    policies = Path(__file__).resolve().parent.parent / "policies"
    env = {**os.environ, "PYTHONPATH": str(policies)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=policies)
