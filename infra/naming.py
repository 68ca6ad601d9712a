"""Resource names: one prefix per stack, each cloud's length and character rules.

Pulumi autonames what must be replaced on change (it appends a random suffix
at create time); these helpers produce the logical names it starts from, and
the few physical names a service needs up front. No timestamps, no randomness.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# name -> (max length, characters allowed, separator)
_RULES: dict[str, tuple[int, str, str]] = {
    # Logical names: Pulumi appends 8 characters to autonamed resources.
    "logical": (48, "a-z0-9-", "-"),
    "kms-alias": (250, "a-zA-Z0-9/_-", "-"),
    "ecr-repository": (256, "a-z0-9._/-", "-"),
    "gcp-id": (63, "a-z0-9-", "-"),
    "azure-storage-account": (24, "a-z0-9", ""),
    "azure-registry": (50, "a-zA-Z0-9", ""),
    "azure-resource": (80, "a-zA-Z0-9._-", "-"),
}


@dataclass(frozen=True)
class Namer:
    """Names for one stack: `<project>-<stack>-<entity>[-<part>...]`."""

    project: str
    stack: str

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def name(self, *parts: str, kind: str = "logical") -> str:
        limit, allowed, separator = _RULES[kind]
        joined = separator.join((self.project, self.stack, *parts))
        cleaned = re.sub(f"[^{allowed}]", "", joined.lower() if "A-Z" not in allowed else joined)
        if len(cleaned) > limit:
            raise ValueError(f"name {cleaned!r} is longer than {limit} characters ({kind})")
        return cleaned
