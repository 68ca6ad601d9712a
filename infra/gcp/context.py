"""Project facts and label rules every GCP component shares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline

# GCP label keys and values: lowercase letters, digits, '_' and '-', at most 63 characters.
_LABEL_INVALID = re.compile(r"[^a-z0-9_-]")
_LABEL_MAX = 63


def _label(value: str) -> str:
    return _LABEL_INVALID.sub("_", value.lower())[:_LABEL_MAX]


def labels(baseline: Baseline, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The stack's tags as GCP labels, plus `extra`; values outside GCP's rules are rewritten
    the same way every time, so a label never makes a plan fail or change between runs."""
    merged = {**baseline.tags, **(extra or {})}
    return {_label(key): _label(value) for key, value in sorted(merged.items())}


@dataclass(frozen=True)
class GcpProject:
    """The stack's project, as the provider block (`gcp:project`, `gcp:region`) names it."""

    project_id: str
    region: str

    def network_path(self, network_name: pulumi.Input[str]) -> pulumi.Output[str]:
        """`projects/<number>/global/networks/<name>`: the form Vertex AI's Private
        Service Connect automation documents (a project number, not its id)."""
        number = gcp.organizations.get_project_output(project_id=self.project_id).number
        return pulumi.Output.concat("projects/", number, "/global/networks/", network_name)

    def storage_agent(self) -> pulumi.Output[str]:
        """The Cloud Storage service agent as an IAM member. The lookup also creates the
        agent if the project has none yet, so a grant to it can never name a missing account."""
        email = gcp.storage.get_project_service_account_output(project=self.project_id)
        return pulumi.Output.concat("serviceAccount:", email.email_address)
