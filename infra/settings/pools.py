"""Checks of `mlops:acceleratorPools` across keys and clouds: the kind must match
the type, the type must exist on the cloud, and keys a cloud cannot honour are
refused, one line each."""

from __future__ import annotations

from collections.abc import Iterator

from infra.catalogs import (
    TPU_TYPE_NAMES,
    TPU_TYPES,
    VERTEX_GPU_MACHINE_TYPES,
    VERTEX_N1_MACHINE_TYPES,
    accelerator_class,
    close_matches,
    ec2_accelerated_regions,
    ec2_instance_types,
)
from infra.settings.errors import NAMESPACE, SettingsError, stack_file
from infra.settings.models import ACCELERATOR_CLOUDS, AcceleratorPoolSettings

# What each kind's accelerator class must be.
KIND_CLASSES = {"inferentia": {"inferentia"}, "trainium": {"trainium"}, "tpu": {"tpu"}}
NOT_GPU = {"inferentia", "trainium", "tpu", "gaudi"}
# Keys only some clouds have a control for.
POOL_KEY_CLOUDS = {
    "alternativeTypes": ("alternative_types", ("aws",)),
    "accelerator": ("accelerator", ("gcp",)),
    "topology": ("topology", ("gcp",)),
    "idleMinutes": ("idle_minutes", ("azure",)),
    "capacityReservation": ("capacity_reservation", ("aws", "gcp")),
}


def _kind_fits(kind: str, accelerator: str | None) -> bool:
    if kind == "gpu":
        return accelerator is not None and accelerator not in NOT_GPU
    return accelerator in KIND_CLASSES[kind]


def _type_problems(cloud: str, pool: AcceleratorPoolSettings) -> Iterator[tuple[str, str]]:
    if cloud == "aws":
        types, version = ec2_instance_types()
        for key, value in [("type", pool.type)] + [
            (f"alternativeTypes[{i}]", t) for i, t in enumerate(pool.alternative_types)
        ]:
            if value not in types:
                yield (
                    key,
                    (
                        f"{value!r} is not an EC2 instance type (botocore {version} lists "
                        f"{len(types)})" + close_matches(value, types)
                    ),
                )
            elif not _kind_fits(pool.kind, accelerator_class("aws", f"x.{value}")):
                yield key, f"{value} carries no {pool.kind} accelerator"
    elif cloud == "gcp":
        if pool.kind == "tpu":
            if pool.type not in TPU_TYPE_NAMES:
                yield (
                    "type",
                    (
                        f"{pool.type!r} is not a Cloud TPU type "
                        f"({TPU_TYPES.cite(len(TPU_TYPE_NAMES))})"
                        + close_matches(pool.type, TPU_TYPE_NAMES)
                    ),
                )
        elif pool.type in VERTEX_N1_MACHINE_TYPES:
            if pool.accelerator is None:
                yield "accelerator", f"is required: {pool.type} carries no GPU, attach one"
        elif pool.type not in VERTEX_GPU_MACHINE_TYPES:
            known = frozenset(VERTEX_GPU_MACHINE_TYPES) | frozenset(VERTEX_N1_MACHINE_TYPES)
            yield (
                "type",
                (
                    f"{pool.type!r} is not a GPU machine type "
                    "(A2, A3, G2, or N1 with an accelerator)" + close_matches(pool.type, known)
                ),
            )
    elif not _kind_fits(pool.kind, accelerator_class("azure", pool.type)):
        yield (
            "type",
            (
                f"{pool.type!r} is not a GPU VM size (NC, ND or NV families, as "
                "Standard_NC4as_T4_v3)"
            ),
        )


def check_pool_region(
    stack: str, region: str, name: str, pool: AcceleratorPoolSettings
) -> Iterator[SettingsError]:
    """An AWS pool's types must be offered in the stack's region: a type that is
    not would plan cleanly and then never launch a node."""
    offers = ec2_accelerated_regions()
    key = f"{NAMESPACE}acceleratorPools.{name}"
    for field, value in [("type", pool.type)] + [
        (f"alternativeTypes[{i}]", t) for i, t in enumerate(pool.alternative_types)
    ]:
        regions = offers.regions.get(value)
        if regions is not None and region not in regions:
            yield SettingsError(
                stack_file(stack),
                f"{key}.{field}",
                f"{value} is not offered in {region} (offered in "
                f"{', '.join(sorted(regions))}; {offers.cite()})",
            )


def check_pool(
    stack: str, cloud: str, name: str, pool: AcceleratorPoolSettings
) -> Iterator[SettingsError]:
    key = f"{NAMESPACE}acceleratorPools.{name}"
    if cloud not in ACCELERATOR_CLOUDS[pool.kind]:
        yield SettingsError(
            stack_file(stack),
            f"{key}.kind",
            f"{pool.kind} is not offered on {cloud} "
            f"(offered on {', '.join(sorted(ACCELERATOR_CLOUDS[pool.kind]))})",
        )
        return
    for field, problem in _type_problems(cloud, pool):
        yield SettingsError(stack_file(stack), f"{key}.{field}", problem)
    for field, (attribute, clouds) in POOL_KEY_CLOUDS.items():
        if attribute in pool.model_fields_set and cloud not in clouds:
            yield SettingsError(
                stack_file(stack), f"{key}.{field}", f"has no effect on {cloud}; remove it"
            )
    if pool.topology is not None and pool.kind != "tpu":
        yield SettingsError(stack_file(stack), f"{key}.topology", "applies to TPU pools only")
    if cloud == "gcp" and pool.kind == "tpu":
        yield from _check_tpu(stack, key, pool)
    gcp_gpu = cloud == "gcp" and pool.kind == "gpu"
    if gcp_gpu and pool.accelerator is not None and pool.type not in VERTEX_N1_MACHINE_TYPES:
        yield SettingsError(
            stack_file(stack),
            f"{key}.accelerator",
            f"{pool.type} carries its GPUs; remove accelerator",
        )
    if pool.spot and pool.capacity_reservation is not None:
        yield SettingsError(
            stack_file(stack),
            f"{key}.capacityReservation",
            "a spot pool runs on spare capacity, not in a reservation; give one or the other",
        )


def _tpu_chips(tpu_type: str) -> int:
    """Chips of a TPU type: the count for v5litepod and v6e, half of it (TensorCores)
    for v4 and v5p."""
    generation, _, size = tpu_type.rpartition("-")
    count = int(size) if size.isdigit() else 0
    return count // 2 if generation in ("v4", "v5p") else count


def _check_tpu(stack: str, key: str, pool: AcceleratorPoolSettings) -> Iterator[SettingsError]:
    """What a GCP TPU pool is: `minNodes` slices of its type, which nothing scales."""
    if pool.max_nodes > max(pool.min_nodes, 1):
        yield SettingsError(
            stack_file(stack),
            f"{key}.maxNodes",
            "has no effect on a GCP TPU pool: it runs minNodes slices, which nothing scales; "
            "set it to minNodes",
        )
    if pool.capacity_reservation is not None:
        yield SettingsError(
            stack_file(stack),
            f"{key}.capacityReservation",
            "a GCP TPU VM cannot name a reservation (the provider takes none); remove it",
        )
    if "disk_gb" in pool.model_fields_set:
        yield SettingsError(
            stack_file(stack),
            f"{key}.diskGb",
            "has no effect on a GCP TPU pool: a TPU VM boots from a fixed 100 GiB disk; remove it",
        )
    if pool.topology is not None and pool.type in TPU_TYPE_NAMES:
        chips = 1
        for side in pool.topology.split("x"):
            chips *= int(side)
        if chips != _tpu_chips(pool.type):
            yield SettingsError(
                stack_file(stack),
                f"{key}.topology",
                f"{pool.topology} is {chips} chips; {pool.type} has {_tpu_chips(pool.type)}",
            )
