"""The README's examples are planned and checked, so the docs cannot drift."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml
from conftest import planned

from infra.settings import SettingsError, load
from tools import stackfiles
from tools.plan import plan_values

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _block(after_heading: str, language: str) -> str:
    section = README.split(after_heading, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_stack_file_example_plans_cleanly() -> None:
    example = yaml.safe_load(_block("## The stack file", "yaml"))["config"]
    values = {**stackfiles.project_defaults(), **example}
    plan = plan_values("aws-prod", values)
    assert plan.settings.environment == "prod"
    assert plan.mandatory == []
    assert sorted(plan.outputs["lakeBucketNames"]) == ["curated", "features", "raw"]


def test_endpoint_example_plans_cleanly() -> None:
    example = yaml.safe_load("config:\n" + _block("### Endpoints", "yaml"))["config"]
    values = {**stackfiles.stack_values("aws-prod"), **example}
    plan = plan_values("aws-prod", values)
    assert plan.mandatory == []
    assert plan.outputs["endpointNames"] == {"churn": "mlops-aws-prod-churn"}


def _message(stack: str, **changes: object) -> str:
    values = copy.deepcopy(stackfiles.stack_values(stack))
    values.update(changes)
    try:
        load(stack, stackfiles.as_engine_strings(values))
    except SettingsError as error:
        return str(error)
    raise AssertionError(f"{changes} loaded without an error")


def test_error_examples_are_what_the_settings_say() -> None:
    block = _block("every problem of the file at once", "")
    expected = [
        _message("aws-dev", **{"mlops:lake": {"zones": ["raw", "Raw Data"]}}),
        _message("aws-dev", **{"mlops:lake": {"zonez": ["raw"]}}),
        _message("gcp-dev", **{"aws:region": "eu-west-1"}),
        _message("azure-dev", **{"mlops:registries": {"containers": {"keepLastImages": 5}}}),
        _message(
            "aws-dev", **{"mlops:acceleratorPools": {"tpu-pool": {"kind": "tpu", "type": "v5e"}}}
        ),
        _message("aws-dev", **{"mlops:network": {"cidr": "8.8.0.0/16"}}),
    ]
    assert block.strip().splitlines() == [line for m in expected for line in m.splitlines()]


def test_the_sample_plan_output_counts_what_the_shipped_stacks_plan() -> None:
    sample = re.findall(r"^([a-z]+-[a-z]+): (\d+) resources, 0 mandatory", README, re.M)
    assert len(sample) == len(stackfiles.stack_names())
    assert {stack: int(count) for stack, count in sample} == {
        stack: len(planned(stack).registrations) for stack in stackfiles.stack_names()
    }
