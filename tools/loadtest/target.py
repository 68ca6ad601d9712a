"""Which URL a load test calls and how it signs: the stack file gives the cloud
and region, the stack's outputs the deployed endpoint.

Invocation URLs:

- AWS: `https://runtime.sagemaker.<region>.amazonaws.com/endpoints/<name>/invocations`
  (`endpointNames` output), SigV4 for service `sagemaker`.
- GCP: `https://<region>-aiplatform.googleapis.com/v1/<endpointId>:rawPredict`
  (`endpointIds` output). `rawPredict` hands the payload to the custom
  container's predict route as it is, any content type; `predict` would insist
  on `{"instances": [...]}`. The stack's endpoints are Private Service Connect
  only, which serves `rawPredict` on the same path at the endpoint's forwarding
  rule: give that address as `URL=https://<address>` and the path is kept.
- Azure: `https://<endpointNames>.<region>.inference.ml.azure.com/score`, an
  Entra token (the endpoints use `AADToken` auth).

`URL=` overrides the address: a URL with a path is used as it is (the stack's
outputs are not read), one without a path (`https://10.30.16.5`) takes the
cloud's path above. Either way the request is signed the cloud's way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from tools import pulumi_cli, stackfiles
from tools.loadtest import signing
from tools.loadtest.options import LoadTestError

OUTPUT_KEYS = {"aws": "endpointNames", "gcp": "endpointIds", "azure": "endpointNames"}
VERTEX_ENDPOINT = re.compile(r"^projects/[^/]+/locations/[^/]+/endpoints/[^/]+$")

Outputs = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True)
class Target:
    stack: str
    endpoint: str
    cloud: str
    region: str
    url: str
    signer: dict[str, Any]


def cloud_url(cloud: str, region: str, deployed: str) -> str:
    """The invocation URL of a deployed endpoint, by the id its stack exports."""
    if cloud == "aws":
        return (
            f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/"
            f"{quote(deployed, safe='')}/invocations"
        )
    if cloud == "gcp":
        return f"https://{region}-aiplatform.googleapis.com/v1/{deployed}:rawPredict"
    if cloud == "azure":
        return f"https://{deployed}.{region}.inference.ml.azure.com/score"
    raise ValueError(f"unknown cloud {cloud!r}")


def redacted(url: str) -> str:
    """The URL as a report may show it: no user or password, no query values."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _checked_url(url: str) -> tuple[str, bool]:
    """The override and whether it carries its own path."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(f"URL (--url): {redacted(url)!r} is not an http(s) URL with a host")
    return url, parts.path not in ("", "/")


def stack_outputs(
    stack: str,
    run: Callable[..., subprocess.CompletedProcess[str]] | None = None,
) -> dict[str, Any]:
    """`pulumi stack output --json` against the backend `make preview` uses."""
    if shutil.which("pulumi") is None:
        raise LoadTestError(
            f"{stack}: reading the endpoint from the stack's outputs needs the Pulumi CLI, "
            "which is not installed: install it (https://www.pulumi.com/docs/install/) "
            "or give the endpoint's address as URL=<invocation URL>"
        )
    env = dict(os.environ)
    env["PULUMI_BACKEND_URL"] = pulumi_cli.backend_url(env)
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    result = (run or subprocess.run)(
        command, cwd=pulumi_cli.ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in (result.stderr or "").splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise LoadTestError(f"{stack}: `{' '.join(command)}` failed: {why}")
    try:
        outputs = json.loads(result.stdout or "{}")
    except json.JSONDecodeError as error:
        raise LoadTestError(f"{stack}: `{' '.join(command)}` printed no JSON: {error}") from None
    return outputs if isinstance(outputs, dict) else {}


def _settings(stack: str) -> Any:
    from infra.settings import SettingsError, load

    try:
        values = stackfiles.as_engine_strings(stackfiles.stack_values(stack))
        return load(stack, values)
    except (SettingsError, FileNotFoundError) as error:
        raise LoadTestError(str(error)) from None


def _deployed(cloud: str, settings: Any, outputs: Mapping[str, Any], stack: str, name: str) -> str:
    key = OUTPUT_KEYS[cloud]
    exported = outputs.get(key)
    value = exported.get(name) if isinstance(exported, dict) else None
    if not isinstance(value, str) or not value:
        raise LoadTestError(
            f"{stack}: the stack's outputs have no {key}.{name}: deploy it first "
            f"(make up STACK={stack}) or give its address as URL=<invocation URL>"
        )
    if cloud == "gcp" and not VERTEX_ENDPOINT.match(value):
        # A bare numeric id: the endpoint lives in the stack's project and region.
        value = f"projects/{settings.gcp_project}/locations/{settings.region}/endpoints/{value}"
    return value


def resolve(
    stack: str,
    endpoint: str,
    url: str | None = None,
    outputs: Outputs = stack_outputs,
) -> Target:
    from infra.settings import stack_file

    settings = _settings(stack)
    if endpoint not in settings.endpoints:
        known = ", ".join(sorted(settings.endpoints)) or "none"
        raise LoadTestError(
            f"{stack_file(stack)}: mlops:endpoints: no endpoint {endpoint!r} (endpoints: {known})"
        )
    cloud, region = settings.cloud, settings.region
    signer = signing.spec_for(cloud, region)
    if url:
        url, has_path = _checked_url(url)
        if has_path:
            return Target(stack, endpoint, cloud, region, url, signer)
    default = cloud_url(cloud, region, _deployed(cloud, settings, outputs(stack), stack, endpoint))
    if url:
        given, cloud_parts = urlsplit(url), urlsplit(default)
        default = urlunsplit((given.scheme, given.netloc, cloud_parts.path, "", ""))
    return Target(stack, endpoint, cloud, region, default, signer)
