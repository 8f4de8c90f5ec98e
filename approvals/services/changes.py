"""One hook for every change of packets: who waits on them wakes, and who must be told is."""

from collections.abc import Iterable

from approvals.models import PausePacket
from approvals.services.outbox import outbox_packets_changed
from approvals.wakeups import wake_waiters


def packets_changed(packets: list[PausePacket], *, untold_ids: Iterable = ()) -> None:
    """In the transaction of the change: long-polls wake when it commits, and the webhooks and
    outcome emails of these packets are queued. `untold_ids` changed too but concern nobody
    who is sent anything (no callback URL, no requester): they only wake their waiters.
    """
    wake_waiters([*untold_ids, *(packet.id for packet in packets)])
    outbox_packets_changed(packets)
