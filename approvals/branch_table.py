"""The branch table (DESIGN section 4): one pure function decides what an action leads to.

Precedence, top to bottom, first row that holds wins:
  1. expired                          -> expired, block
  2. owner changed / takeover started -> terminate, block
  3. side effect landed/indeterminate -> reconcile
  4. context stale                    -> re_review
  5. quorum reached                   -> resume, allow
  6. otherwise                        -> vote recorded, still pending
A dead branch (2) makes every other fact moot; an unknown side effect (3) must be settled before
anything continues, or a replay duplicates the write; only a live, clean branch is worth
re-reviewing (4). Rows 1 and 2 guard every reviewer action, not only approve.
"""

import enum
from dataclasses import dataclass
from datetime import datetime


class Outcome(enum.Enum):
    # value: (branch, packet status, decision to the orchestrator, records the vote)
    EXPIRED = (None, "expired", "block", False)
    TERMINATE = ("terminate", "terminated", "block", False)
    RECONCILE = ("reconcile", "reconciling", None, False)
    RE_REVIEW = ("re_review", "re_review", None, False)
    RESUME = ("resume", "approved", "allow", True)
    VOTE_RECORDED = (None, "pending", None, True)

    @property
    def branch(self) -> str | None:
        return self.value[0]

    @property
    def status(self) -> str:
        return self.value[1]

    @property
    def decision(self) -> str | None:
        return self.value[2]

    @property
    def records_vote(self) -> bool:
        return self.value[3]


@dataclass(frozen=True)
class Facts:
    now: datetime
    expires_at: datetime
    fresh_until: datetime
    owner_changed: bool
    side_effect: str
    # Distinct approving users on the current snapshot, counting the one acting now.
    votes_with_this_one: int
    required_approvals: int


def guard(facts: Facts) -> Outcome | None:
    """Rows 1 and 2, which end the packet whatever the reviewer is trying to do."""
    if facts.now >= facts.expires_at:
        return Outcome.EXPIRED
    if facts.owner_changed:
        return Outcome.TERMINATE
    return None


def decide_approval(facts: Facts) -> Outcome:
    """What approving does now."""
    guarded = guard(facts)
    if guarded is not None:
        return guarded
    if facts.side_effect != "not_started":
        return Outcome.RECONCILE
    if facts.now >= facts.fresh_until:
        return Outcome.RE_REVIEW
    if facts.votes_with_this_one >= facts.required_approvals:
        return Outcome.RESUME
    return Outcome.VOTE_RECORDED
