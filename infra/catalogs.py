"""What each cloud offers, read from the cloud's own published lists where one
ships offline, so a settings check never trusts a hand-written pattern."""

from __future__ import annotations

import difflib
import functools

# SageMaker instance families by the accelerator they carry.
SAGEMAKER_ACCELERATOR_FAMILIES: dict[str, str] = {"inf": "inferentia", "trn": "trainium"}


@functools.cache
def sagemaker_inference_instance_types() -> tuple[frozenset[str], str]:
    """Every instance type a SageMaker real-time endpoint variant takes, from the
    SageMaker service model that ships with botocore, and botocore's version."""
    import botocore
    from botocore.loaders import Loader

    model = Loader().load_service_model("sagemaker", "service-2")
    types = model["shapes"]["ProductionVariantInstanceType"]["enum"]
    return frozenset(types), botocore.__version__


def sagemaker_accelerator(instance_type: str) -> str | None:
    """The accelerator kind an `ml.<family>.<size>` type carries, if any: GPU
    families start with g or p (g5, g6e, p4d, p5), Inferentia with inf,
    Trainium with trn."""
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    for prefix, kind in SAGEMAKER_ACCELERATOR_FAMILIES.items():
        if family.startswith(prefix):
            return kind
    if family[:1] in ("g", "p") and family[1:2].isdigit():
        return "gpu"
    return None


def close_matches(value: str, known: frozenset[str]) -> str:
    """`; did you mean a, b?` for the nearest known values, or nothing."""
    near = difflib.get_close_matches(value, sorted(known), n=3, cutoff=0.75)
    return f"; did you mean {', '.join(near)}?" if near else ""


# Nitro instance families with local NVMe instance storage, which SageMaker
# encrypts in hardware and for which it refuses an endpoint configuration's
# KmsKeyId. From the EC2 instance store tables (instance store volumes,
# checked 2026-11): the `d` families, and these GPU and Trainium families.
LOCAL_STORAGE_FAMILIES = frozenset(
    {"g4ad", "g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "trn1", "trn1n"}
)


def sagemaker_local_storage(instance_type: str) -> bool:
    """True when `ml.<family>.<size>` has local NVMe storage (no KmsKeyId then)."""
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    if family in LOCAL_STORAGE_FAMILIES:
        return True
    # c5d, m5d, r5d, m6id, c6id, r6id, ...: a `d` after the generation digit.
    generation = next((i for i, c in enumerate(family) if c.isdigit()), -1)
    return generation >= 0 and "d" in family[generation + 1 :]
