"""The `<approval>` JSON of DESIGN section 6."""

from django.conf import settings

from approvals.models import PausePacket


def _time(value):
    return value.isoformat() if value else None


def current_votes(packet: PausePacket) -> int:
    return packet.current_votes().count()


def approval_json(packet: PausePacket, *, votes: int | None = None) -> dict:
    return {
        "id": str(packet.id),
        "status": packet.status,
        "branch": packet.branch,
        "decision": packet.decision,
        "action": {"tool": packet.tool, "args": packet.effective_args},
        "edited": packet.edited_args is not None,
        "comment": packet.comment,
        "decided_by": list(packet.decided_by),
        "decided_at": _time(packet.decided_at),
        "fresh_until": _time(packet.fresh_until),
        "expires_at": _time(packet.expires_at),
        "required_approvals": packet.required_approvals,
        "approvals": current_votes(packet) if votes is None else votes,
        "execution": {"thread_id": packet.execution.thread_id, "owner": packet.execution.owner},
        "step": {"index": packet.step_index, "name": packet.step_name},
        "superseded_by": str(packet.superseded_by_id) if packet.superseded_by_id else None,
        "callback": packet.callback,
        "url": f"{settings.GATEKEEPER_BASE_URL}{packet.get_absolute_url()}",
    }
