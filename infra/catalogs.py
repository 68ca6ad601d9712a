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


def close_matches(value: str, known: frozenset[str]) -> str:
    """`; did you mean a, b?` for the nearest known values, or nothing."""
    near = difflib.get_close_matches(value, sorted(known), n=3, cutoff=0.75)
    return f"; did you mean {', '.join(near)}?" if near else ""


def sagemaker_local_storage(instance_type: str) -> bool:
    """True when `ml.<family>.<size>` has local NVMe storage, which SageMaker
    encrypts in hardware and for which it refuses a KMS key. The table is the
    policy pack's, so the platform and its rules never disagree."""
    return has_local_storage(instance_type)
