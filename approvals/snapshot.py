"""The snapshot hash that binds an approval to exactly what was reviewed (DESIGN section 3)."""

import hashlib

from audit.chain import canonical_json


def snapshot_hash(*, tool: str, args: dict, context: list, policy_name: str, policy_version) -> str:
    # side_effect is left out on purpose: learning that the write landed must not void votes.
    document = {
        "tool": tool,
        "args": args,
        "context": context,
        "policy": {"name": policy_name, "version": policy_version},
    }
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()
