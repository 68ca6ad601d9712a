"""The program: load settings -> build the stack's cloud platform -> export outputs."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from infra.settings import PlatformSettings, SettingsError, load


def config_values() -> dict[str, Any]:
    """Every config value the engine handed this program, as `{"ns:key": str}`.

    The Python language host passes config with `set_all_config`; a process can
    also receive it as PULUMI_CONFIG. Both are read so no key escapes validation.
    """
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def build(settings: PlatformSettings) -> dict[str, Any]:
    """Build the stack's platform and return its stack outputs."""
    if settings.cloud == "aws":
        from infra.aws.platform import build_aws

        return build_aws(settings)
    if settings.cloud == "gcp":
        from infra.gcp.platform import build_gcp

        return build_gcp(settings)
    from infra.azure.platform import build_azure

    return build_azure(settings)


def run() -> None:
    try:
        settings = load(pulumi.get_stack(), config_values())
    except SettingsError as error:
        # RunError ends the program with this one line and no traceback.
        raise pulumi.RunError(str(error)) from None
    for name, value in sorted(build(settings).items()):
        pulumi.export(name, value)
