"""Where an engine's paused step stands on its approval: shared by the engine adapters that
wake a run and then ask Gatekeeper what happened (Prefect, Airflow, Dagster)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import Expired
from .models import Approval
from .verdicts import STALE, Verdict, blocked_verdict, verdict_of


def settle(
    gk: Any,
    approval: Approval,
    args: Mapping[str, Any],
    refresh_context: Callable[[], Any] | None = None,
) -> Approval | Verdict:
    """The verdict once the approval is decided, or the open approval the run waits on now.

    A superseded approval is followed to its successor (an earlier run refreshed it); one sent
    back to review gets `refresh_context()` (the facts read again) and its successor is waited
    on; without `refresh_context` the step ends with the stale verdict and its reason.
    """
    while True:
        if approval.status == "superseded" and approval.superseded_by:
            approval = gk.approval(approval.superseded_by)
        elif approval.status == STALE:
            if refresh_context is None:
                return verdict_of(approval.raw)
            try:
                approval = gk.refresh(approval.id, refresh_context())
            except Expired:
                return blocked_verdict("expired before its facts were read again", args)
        elif not approval.is_open:
            return verdict_of(approval.raw)
        else:
            return approval
