"""Shared test helpers: plan a stack (or any config values) on mocks, once per session."""

from __future__ import annotations

import fcntl
import functools
import gc
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tools import stackfiles

if TYPE_CHECKING:
    # Imported where a plan is made: the controlling process of an xdist run
    # makes none, and starts its workers sooner without the Pulumi SDK.
    from tools.mockcloud import Registration
    from tools.plan import StackPlan

# Where the test processes of one run share the shipped stacks' plans.
SHARED_PLANS = "MLOPS_TEST_SHARED_PLANS"
_OWNED = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """The controlling process makes a fresh folder its workers inherit (never
    one from the environment: its plans could predate the code under test)."""
    if not hasattr(config, "workerinput"):
        os.environ[SHARED_PLANS] = tempfile.mkdtemp(prefix="mlops-plans-")
        config.stash[_OWNED] = os.environ[SHARED_PLANS]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Each xdist worker plans its share of the shipped stacks before its first
    test, so no worker sits waiting for a plan another one is still making."""
    worker = getattr(session.config, "workerinput", {}).get("workerid", "")
    count = int(getattr(session.config, "workerinput", {}).get("workercount", 1))
    if not worker.startswith("gw"):
        return
    index = int(worker[2:])
    for stack in stackfiles.stack_names()[index::count]:
        planned(stack)
    if index < 2 <= count:
        _write_own_plan(own_plan_dir(worker))
    # What is loaded now (the SDKs, the shipped plans) stays for the whole run:
    # the cycle collector need not walk it again.
    gc.freeze()


def pytest_unconfigure(config: pytest.Config) -> None:
    owned = config.stash.get(_OWNED, None)
    if owned:
        shutil.rmtree(owned, ignore_errors=True)
        os.environ.pop(SHARED_PLANS, None)


# Two workers (two interpreters, each with its own string-hash seed) each plan
# this stack themselves and write it: tests/test_plan.py compares the files.
OWN_PLAN_STACK = "aws-dev"


def own_plan_dir(worker: str) -> Path:
    return Path(os.environ[SHARED_PLANS], "own", worker)


def _write_own_plan(out: Path) -> None:
    from tools.plan import plan_values, write

    values = stackfiles.stack_values(OWN_PLAN_STACK)
    name = _plan_name(OWN_PLAN_STACK, values)
    plan = _PLANS[name] if name in _MADE_HERE else plan_values(OWN_PLAN_STACK, values)
    write(plan, out)
    # Written last, so a reader never sees half the files: this process's seed.
    (out / "hash").write_text(str(hash(OWN_PLAN_STACK)))


@functools.cache
def planned(stack: str) -> StackPlan:
    """The shipped stack's plan, computed once per test run."""
    return _shared_plan(stack, stackfiles.stack_values(stack))


def plan_with(stack: str, **overrides: Any) -> StackPlan:
    """Plan a shipped stack with some `mlops:*` keys replaced (keyword = key without
    namespace), once per test run for the same values. A test that patches the
    program or the mocks plans with `tools.plan.plan_values`, which never shares."""
    values = stackfiles.stack_values(stack)
    values.update({f"mlops:{key}": value for key, value in overrides.items()})
    return _shared_plan(stack, values)


_PLANS: dict[str, StackPlan] = {}
_MADE_HERE: set[str] = set()  # the plans this process made, not read from another


def _plan_name(stack: str, values: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
    return f"{stack}-{digest[:16]}"


def _shared_plan(stack: str, values: dict[str, Any]) -> StackPlan:
    """The plan of these settings, made once per run: the first process to ask
    plans it, the others (pytest-xdist workers) wait for it and read it.
    Settings that do not load raise here, in every process that asks."""
    name = _plan_name(stack, values)
    if name not in _PLANS:
        _PLANS[name] = _plan_once(name, stack, values)
    return _PLANS[name]


def _plan_once(name: str, stack: str, values: dict[str, Any]) -> StackPlan:
    from tools.plan import plan_values, tune_collector

    tune_collector()  # a test process plans as `make plan` does
    shared = os.environ.get(SHARED_PLANS)
    if not shared or not Path(shared).is_dir():
        _MADE_HERE.add(name)
        return plan_values(stack, values)
    stored = Path(shared, f"{name}.pickle")
    with Path(shared, f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stored.exists():
            return pickle.loads(stored.read_bytes())
        plan = plan_values(stack, values)
        _MADE_HERE.add(name)
        stored.write_bytes(pickle.dumps(plan))
        return plan


# Serving, operations (alerts, audit) and pool components: tests/test_*_endpoints.py,
# tests/test_operations.py and tests/test_*pools.py hold those; the platform's
# own tests count the rest.
SERVING_COMPONENTS = (
    "mlops:gcp:Serving",
    "mlops:gcp:ModelEndpoint",
    "mlops:azure:MlWorkspace",
    "mlops:azure:ModelEndpoint",
    "mlops:aws:AlertRoute",
    "mlops:gcp:AlertRoute",
    "mlops:azure:AlertRoute",
    "mlops:aws:AuditTrail",
    "mlops:gcp:AuditLogs",
    "mlops:azure:AuditLogs",
    "mlops:aws:AcceleratorPool",
    "mlops:gcp:AcceleratorPool",
    "mlops:gcp:PoolAgents",
    "mlops:azure:AcceleratorPool",
    "mlops:gcp:CiIdentities",
    "mlops:azure:CiIdentities",
)


def platform_base(plan: StackPlan) -> list[Registration]:
    """The stack's resources but its serving and operations components and their
    children (a URN names every component above the resource)."""
    return [
        r
        for r in plan.registrations
        if not any(c in r.urn.split("::")[2] for c in SERVING_COMPONENTS)
        and r.type not in SERVING_COMPONENTS
    ]


def of_type(plan: StackPlan, type_: str) -> list[Registration]:
    return sorted((r for r in plan.registrations if r.type == type_), key=lambda r: r.urn)


def one(plan: StackPlan, type_: str, name_suffix: str = "") -> Registration:
    found = [r for r in of_type(plan, type_) if r.name.endswith(name_suffix)]
    assert len(found) == 1, (
        f"expected one {type_} named *{name_suffix}, found {[r.name for r in found]}"
    )
    return found[0]


def configuring(
    plan: StackPlan, type_: str, target: Registration, prop: str = "bucket"
) -> Registration:
    """The one resource of `type_` whose `prop` input came from `target`."""
    found = [r for r in of_type(plan, type_) if target.urn in r.property_dependencies.get(prop, [])]
    assert len(found) == 1, f"expected one {type_} for {target.name}, found {len(found)}"
    return found[0]


def created_as(reg: Registration) -> str:
    """The logical name a resource was created under: its alias's, if it was renamed.
    The offline plan derives cloud names and ids from it, as the engine keeps them."""
    return reg.aliases[0].rsplit("::", 1)[-1] if reg.aliases else reg.name


def policy_doc(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


def names(registrations: Iterable[Registration]) -> list[str]:
    return [r.name for r in registrations]


@pytest.fixture(scope="session")
def shipped_stacks() -> list[str]:
    return stackfiles.stack_names()
