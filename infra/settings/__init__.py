"""One typed, validated model of a stack's settings, the same for every cloud.

`load(stack, values)` turns the flat Pulumi config of a stack (what the Pulumi
CLI hands the program, or what the offline planner hands it the same way) into
`PlatformSettings`. Every check happens there, before a resource is registered;
a bad value raises `SettingsError`, whose text is one line naming the stack
file, the key path and what is wrong.

- `errors.py`: `SettingsError` and the stack file's name.
- `models.py`: the schema, one pydantic model per block, with per-field checks;
  `endpoints.py` holds the endpoint block, `fields.py` the base model and the
  field checks the blocks share.
- `checks.py`: checks across keys, clouds and catalogs.
- `loader.py`: `load`, which runs the schema and the checks and reports every
  problem at once.
"""

from infra.settings.endpoints import BaselineRef
from infra.settings.errors import SettingsError, stack_file
from infra.settings.loader import load
from infra.settings.models import (
    CLOUDWATCH_RETENTION_DAYS,
    NAME_RULE,
    AcceleratorPoolSettings,
    AlertSettings,
    AuditSettings,
    CiSettings,
    ContainerRegistrySettings,
    EndpointSettings,
    LakeSettings,
    NetworkSettings,
    PlatformSettings,
    ProjectSettings,
)

__all__ = [
    "CLOUDWATCH_RETENTION_DAYS",
    "NAME_RULE",
    "AcceleratorPoolSettings",
    "AlertSettings",
    "AuditSettings",
    "BaselineRef",
    "CiSettings",
    "ContainerRegistrySettings",
    "EndpointSettings",
    "LakeSettings",
    "NetworkSettings",
    "PlatformSettings",
    "ProjectSettings",
    "SettingsError",
    "load",
    "stack_file",
]
