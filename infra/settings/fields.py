"""What every settings block is built from: the base model (immutable, camelCase
keys, no unknown keys) and the field checks the blocks share."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

NAME_RULE = (
    "3 to 20 lowercase letters, digits and single '-', starting with a letter, not ending with '-'"
)
# The strictest rule of the three clouds (Azure container names) so a name works on all.
NAME = re.compile(r"^(?=.{3,20}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def valid_name(kind: str):
    def check(value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r} is not a valid {kind} name ({NAME_RULE})")
        return value

    return AfterValidator(check)


def unique_items(kind: str):
    def check(values: list[str]) -> list[str]:
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise ValueError(f"{kind} {value!r} is listed twice")
            seen.add(value)
        return values

    return AfterValidator(check)


def matching(kind: str, pattern: str, rule: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"{value!r} is not a valid {kind} ({rule})")
        return value

    return AfterValidator(check)


ZoneName = Annotated[str, valid_name("zone")]
RepositoryName = Annotated[str, valid_name("repository")]
Days = Annotated[int, Field(ge=1, le=3650)]


class Model(BaseModel):
    """Base for every settings object: immutable, camelCase keys, no unknown keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        strict=False,
    )
