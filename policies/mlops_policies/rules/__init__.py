"""Every rule of the pack, in the order reports list them."""

from mlops_policies.model import Rule
from mlops_policies.rules import iam, keys, protection, storage, tags

RULES: tuple[Rule, ...] = (
    *storage.RULES,
    *keys.RULES,
    *iam.RULES,
    *tags.RULES,
    *protection.RULES,
)
