"""What each button will do now, in words a reviewer reads in a second."""

from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

from approvals.branch_table import Outcome
from approvals.models import PausePacket
from approvals.outcomes import AGENT_MUST_REFRESH, DEADLINE_PASSED, WRITE_MAY_HAVE_HAPPENED


def approve_consequence(packet: PausePacket, outcome: Outcome, *, votes: int) -> str:
    now = timezone.now()
    if outcome is Outcome.EXPIRED:
        return (
            f"{DEADLINE_PASSED.capitalize()} {timesince(packet.expires_at, now)} ago: "
            "approving now expires this packet and blocks the step."
        )
    if outcome is Outcome.TERMINATE:
        return (
            f"The execution's owner changed to {packet.execution.owner}: approving now "
            "terminates this branch and blocks the step."
        )
    if outcome is Outcome.RECONCILE:
        return (
            f"{WRITE_MAY_HAVE_HAPPENED.capitalize()} (side effect {packet.side_effect}): approving "
            "now sends this to reconcile, where someone records whether it happened."
        )
    if outcome is Outcome.RE_REVIEW:
        return (
            "Approving now sends this back to re-review: the context went stale "
            f"{timesince(packet.fresh_until, now)} ago, so {AGENT_MUST_REFRESH}."
        )
    if outcome is Outcome.RESUME:
        return (
            f"Approving now lets the agent run {packet.tool}"
            f"{' with the edited args' if packet.edited_args is not None else ''}. "
            f"The context stays fresh for {timeuntil(packet.fresh_until, now)}."
        )
    return (
        f"Approving now records your vote: {votes + 1} of {packet.required_approvals}. "
        "Another reviewer must approve before the agent may run it."
    )


def take_over_consequence(packet: PausePacket) -> str:
    return (
        f"Taking over makes you the owner of {packet.execution.thread_id}; every open approval "
        "of that execution ends as terminated, and the agent is told to stop."
    )
