"""Shared test helpers: plan a stack (or any config values) on mocks, once per session."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

import pytest

from tools import stackfiles
from tools.mockcloud import Registration
from tools.plan import StackPlan, plan_stack, plan_values


@functools.cache
def planned(stack: str) -> StackPlan:
    """The shipped stack's plan; computed once per test session."""
    return plan_stack(stack)


def plan_with(stack: str, **overrides: Any) -> StackPlan:
    """Plan a shipped stack with some `mlops:*` keys replaced (keyword = key without namespace)."""
    values = stackfiles.stack_values(stack)
    values.update({f"mlops:{key}": value for key, value in overrides.items()})
    return plan_values(stack, values)


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
