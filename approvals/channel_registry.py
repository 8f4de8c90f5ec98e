"""The registered channels (approvals/channels/), by the kind stored in OutboxMessage.kind.

Apart from the channels so that the model can take its choices from here: the channels import
the models, never the other way.
"""

from typing import Any

# kind -> an approvals.channels.base.Channel (not imported: it imports the models).
_channels: dict[str, Any] = {}


def register(channel: Any) -> Any:
    _channels[channel.kind] = channel
    return channel


def channel_for(kind: str) -> Any:
    return _channels[kind]


def choices() -> list[tuple[str, str]]:
    """OutboxMessage.kind's choices: every registered channel, in registration order."""
    return [(channel.kind, channel.label) for channel in _channels.values()]
