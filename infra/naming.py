"""Resource names: one prefix per stack, each cloud's length and character rules.

Pulumi autonames what must be replaced on change (it appends a random suffix
at create time); these helpers produce the logical names it starts from, and
the few physical names a service needs up front. No timestamps, no randomness.
"""

from __future__ import annotations

import hashlib
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
    # Azure ML online endpoints: unique in their region, part of the scoring URL.
    "azure-ml-endpoint": (32, "a-z0-9-", ""),
}


TOKEN_LENGTH = 6


def unique_token(*parts: str) -> str:
    """A short digest for names that must be unique across a whole cloud.

    Azure storage accounts, key vaults and registries share one global DNS
    namespace, so `<project><stack><role>` alone would collide with any other
    tenant deploying the same stack name. A digest of the scope (the
    subscription) and the stack, like Bicep's `uniqueString`, is stable for
    one stack in one subscription and distinct across them.
    """
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:TOKEN_LENGTH]


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

    def global_name(self, role: str, scope: str, kind: str) -> str:
        """`<project><stack><role><token>` with no separator, within `kind`'s length:
        the stack part is shortened to fit; the token (scope and full stack) keeps
        shortened names of different stacks apart."""
        limit, allowed, _ = _RULES[kind]
        token = unique_token(scope, self.stack)
        stack = re.sub(f"[^{allowed}]", "", self.stack.lower())
        room = limit - len(self.project) - len(role) - len(token)
        return f"{self.project}{stack[:room]}{role}{token}"
