"""Request bodies of the API, built from plain Python values: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

MAX_KEY = 200  # the server's bound on idempotency_key
UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+, this package runs on 3.10

Context = Mapping[str, Any] | Iterable[Mapping[str, Any]]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _rfc3339(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("observed_at must carry a time zone (RFC 3339)")
    return value.astimezone(UTC).isoformat()


def context_items(context: Context | None) -> list[dict]:
    """The API's context list, from `{name: value}` or from `[{"name", "value", "observed_at"}]`.

    An item without `observed_at` is stamped with the current time. Say when each input was
    really read when you can: it is what reviewers judge freshness by, and a body with the same
    timestamps gets the same default idempotency key after a restart.
    """
    if context is None:
        return []
    if isinstance(context, Mapping):
        items = [{"name": name, "value": value} for name, value in context.items()]
    else:
        items = [dict(item) for item in context]
    now = datetime.now(UTC)
    for item in items:
        item["observed_at"] = _rfc3339(item.get("observed_at") or now)
    return items


def idempotency_key_for(body: Mapping[str, Any]) -> str:
    """The default idempotency key of a gate request: thread, step index and a body hash.

    Deterministic, so sending the same request again (a retry after a lost answer, a restarted
    agent with the same inputs) replays the first answer instead of making a second check; a
    different request for the same step gets a different key, not an idempotency conflict.
    """
    content = {key: value for key, value in body.items() if key != "idempotency_key"}
    digest = hashlib.sha256(_canonical(content).encode()).hexdigest()[:32]
    thread_id = body["execution"]["thread_id"]
    index = body["step"]["index"]
    key = f"{thread_id}:{index}:{digest}"
    if len(key) > MAX_KEY:
        key = f"{hashlib.sha256(thread_id.encode()).hexdigest()[:32]}:{index}:{digest}"
    return key


def _risk(risk: float | Mapping[str, Any]) -> dict:
    if isinstance(risk, Mapping):
        return dict(risk)
    return {"score": float(risk)}


def gate_body(
    thread_id: str,
    workflow: str,
    step_index: int,
    step_name: str | None,
    tool: str,
    args: Mapping[str, Any] | None,
    *,
    side_effect: str,
    context: Context | None,
    risk: float | Mapping[str, Any] | None,
    owner: str | None,
    parent_thread_id: str | None,
    on_behalf_of: str | None,
    idempotency_key: str | None,
    callback: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """POST /gate's body; without `idempotency_key`, the one `idempotency_key_for` derives."""
    execution: dict[str, Any] = {"thread_id": thread_id, "workflow": workflow}
    for key, value in (
        ("owner", owner),
        ("parent_thread_id", parent_thread_id),
        ("on_behalf_of", on_behalf_of),
    ):
        if value is not None:
            execution[key] = value
    step: dict[str, Any] = {"index": step_index}
    if step_name is not None:
        step["name"] = step_name
    body: dict[str, Any] = {
        "execution": execution,
        "step": step,
        "action": {"tool": tool, "args": dict(args or {}), "side_effect": side_effect},
        "context": context_items(context),
    }
    if risk is not None:
        body["risk"] = _risk(risk)
    if callback is not None:
        body["callback"] = dict(callback)
    body["idempotency_key"] = idempotency_key or idempotency_key_for(body)
    return body


def dry_run_body(
    workflow: str, actions: Iterable[str | Mapping[str, Any]], owner: str | None
) -> dict[str, Any]:
    """POST /gate/dry-run's body: one check per action of `workflow`, no thread or step."""
    execution: dict[str, Any] = {"workflow": workflow}
    if owner is not None:
        execution["owner"] = owner
    checks = []
    for action in actions:
        item = {"tool": action} if isinstance(action, str) else dict(action)
        check: dict[str, Any] = {
            "execution": execution,
            "action": {
                "tool": item.pop("tool"),
                "args": dict(item.pop("args", None) or {}),
                "side_effect": item.pop("side_effect", "not_started"),
            },
        }
        risk = item.pop("risk", None)
        if risk is not None:
            check["risk"] = _risk(risk)
        if item:
            raise TypeError(f"an action has tool, args, side_effect and risk, not {sorted(item)}")
        checks.append(check)
    return {"checks": checks}


def refresh_body(
    context: Context,
    args: Mapping[str, Any] | None,
    side_effect: str | None,
    callback: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """POST /approvals/{id}/refresh's body: new context, and new args, side effect or callback
    if given."""
    body: dict[str, Any] = {"context": context_items(context)}
    if callback is not None:
        body["callback"] = dict(callback)
    action: dict[str, Any] = {}
    if args is not None:
        action["args"] = dict(args)
    if side_effect is not None:
        action["side_effect"] = side_effect
    if action:
        body["action"] = action
    return body
