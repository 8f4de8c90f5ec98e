"""Gaps in an execution's record (DESIGN section 8). Pure: no database.

- ungated: an outcome was recorded for a step index that was never gated;
- no_outcome: a step finally allowed (by policy or approval) has no outcome yet;
- skipped_index: an index missing between the lowest and highest gated index.
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
    if final_decisions:
        low, high = min(final_decisions), max(final_decisions)
        gaps += [
            {"step": step, "kind": "skipped_index"}
            for step in range(low, high + 1)
            if step not in final_decisions
        ]
    return sorted(gaps, key=lambda gap: (gap["step"], gap["kind"]))
