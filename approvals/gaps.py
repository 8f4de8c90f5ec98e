"""Gaps in an execution's record (DESIGN section 8). Pure: no database.

- ungated: an outcome was recorded for a step index that was never gated;
- no_outcome: a step finally allowed (by policy or approval) has no outcome yet;
- skipped_index: an index missing between the lowest and highest gated index (the first
  MAX_SKIPPED_LISTED of them: the range may be as wide as the index space).
"""

from collections.abc import Iterable, Mapping


def find_gaps(final_decisions: Mapping[int, str], outcome_steps: Iterable[int]) -> list[dict]:
    """`final_decisions` maps each gated step index to its final decision."""
    outcome_steps = set(outcome_steps)
    gaps = [{"step": step, "kind": "ungated"} for step in outcome_steps - set(final_decisions)]
    gaps += [
        {"step": step, "kind": "no_outcome"}
        for step, decision in final_decisions.items()
        if decision == "allow" and step not in outcome_steps
    ]
    gaps += [{"step": step, "kind": "skipped_index"} for step in _skipped(final_decisions)]
    return sorted(gaps, key=lambda gap: (gap["step"], gap["kind"]))


# An agent may gate step 0 and step 2**31-1: listing every index between would exhaust memory.
MAX_SKIPPED_LISTED = 1000


def _skipped(gated: Iterable[int]):
    """Indices missing between consecutive gated ones, the first MAX_SKIPPED_LISTED of them."""
    listed = 0
    indices = sorted(gated)
    for low, high in zip(indices, indices[1:], strict=False):
        for step in range(low + 1, high):
            if listed == MAX_SKIPPED_LISTED:
                return
            listed += 1
            yield step
