"""Shipping a model version is one line in a stack file, on every cloud: what
serves the model is replaced (the new one made first), the endpoint only
updates, nothing stateful is touched. And what the engine receives is named as
the providers name it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import planned

from infra.gcp.vertex_deployment import REPLACING
from tools import stackfiles
from tools.plan import plan_values
from tools.plandiff import REPLACE_ON_CHANGE, diff_plans


def _new_version(stack: str):
    values = copy.deepcopy(stackfiles.stack_values(stack))
    churn = values["mlops:endpoints"]["churn"]
    churn["model"]["image"]["tag"] = "1.5.0"
    churn["model"]["artifact"]["path"] = "models/churn/1.5.0/model.tar.gz"
    head = plan_values(stack, values).preview_json()
    return diff_plans(stack, planned(stack).preview_json(), head)


def _changes(diff) -> dict[str, tuple[bool, tuple[str, ...]]]:
    return {
        c.after.urn.rsplit("::", 1)[1].split("-serve-churn-", 1)[1]: (
            bool(c.replaces),
            c.replace_reasons,
        )
        for c in diff.changed
    }


def test_vertex_deploys_the_new_version_next_to_the_old() -> None:
    diff = _new_version("gcp-prod")
    assert (diff.added, diff.removed, diff.warnings) == ((), (), ())
    assert _changes(diff) == {
        # Deployed and baked first; the old deployed model is undeployed last.
        "model": (True, ("model",)),
        # The model's account reads the new version's folder instead.
        "read-model": (True, ("condition",)),
        # The drift monitor follows the new deployed model.
        "drift": (False, ()),
    }


def test_azure_ml_creates_a_new_deployment_and_moves_the_traffic() -> None:
    diff = _new_version("azure-prod")
    assert (diff.added, diff.removed, diff.warnings) == ((), (), ())
    assert _changes(diff) == {
        "image": (True, ("properties", "version")),
        "model": (True, ("properties", "version")),
        "deployment": (True, ("deploymentName",)),
        # A setting follows one deployment: a new one, made first.
        "autoscale": (True, ("targetResourceUri",)),
        "traffic": (False, ()),
    }
    traffic = next(c for c in diff.changed if c.after.type.endswith("OnlineEndpointTraffic"))
    assert [p.path for p in traffic.properties] == ["deployment"]


def test_the_plan_diff_knows_the_vertex_providers_own_diff() -> None:
    assert set(REPLACE_ON_CHANGE["pulumi-python:dynamic/gcp:VertexModelDeployment"]) == set(
        REPLACING
    )


def _snake_keys(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            # Maps keyed by the user's or the service's own names keep them.
            free = path.rsplit(".", 1)[-1] in {
                "tags",
                "labels",
                "collections",
                "outboundRules",
                "environment",
            }
            if "_" in key and not free and key != "__provider":
                yield f"{path}.{key}"
            yield from _snake_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _snake_keys(item, path)


@pytest.mark.parametrize("stack", stackfiles.stack_names())
def test_inputs_reach_the_engine_in_the_providers_casing(stack: str) -> None:
    """A dict given where the SDK expects a union of types is passed on with its
    snake_case keys, which the provider ignores: every input must arrive camelCase."""
    found = [
        f"{r.type}{key}" for r in planned(stack).registrations for key in _snake_keys(r.inputs)
    ]
    assert found == []
