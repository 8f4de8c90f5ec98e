"""Validation of a gate request (DESIGN section 6) into a typed value. Pure: no database.

Used by the API and by the admin's dry run. Every problem is collected, each naming its field,
so a caller fixes its request in one round trip. Unknown keys are refused: a misspelt
`side_efect` must not silently become "not_started".
"""

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from approvals.errors import ValidationFailed
from approvals.identity import identity_problem
from gatekeeper.text_input import text_problem

THREAD_ID_PATTERN = r"[A-Za-z0-9._:-]{1,200}"
THREAD_ID = re.compile(THREAD_ID_PATTERN)
MAX_INDEX = 2**31 - 1
MAX_DEPTH = 32
SIDE_EFFECTS = ("not_started", "landed", "indeterminate")
# An owner names a group (or user:<name>) that sees its approvals: no longer than a
# Django group name can be.
MAX_OWNER = 150
MAX_CALLBACK_BYTES = 4096  # a task token (2 KB at most on AWS) and a few names
# RFC 3339 date-time: a zone is mandatory (Z or an offset).
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class ContextInput:
    name: str
    value: Any
    observed_at: str  # normalised ISO 8601, UTC

    def as_json(self) -> dict:
        return {"name": self.name, "value": self.value, "observed_at": self.observed_at}


@dataclass(frozen=True)
class GateRequest:
    idempotency_key: str
    thread_id: str
    workflow: str
    owner: str
    parent_thread_id: str | None
    on_behalf_of: str
    step_index: int
    step_name: str
    tool: str
    args: dict
    side_effect: str
    context: tuple[ContextInput, ...]
    risk_score: float | None
    risk_labels: tuple[str, ...]
    callback: dict | None = None

    @property
    def context_json(self) -> list[dict]:
        return [item.as_json() for item in self.context]


class _Errors:
    def __init__(self):
        self.items: list[dict] = []

    def add(self, field: str, message: str) -> None:
        self.items.append({"field": field, "message": message})


def _text_problems(value: str, path: str) -> list[dict]:
    problem = text_problem(value)
    return [{"field": path, "message": problem}] if problem else []


def _clean_text(value: str) -> bool:
    return "\x00" not in value and (value.isascii() or not _text_problems(value, ""))


def _clean(value: Any, depth: int) -> bool:
    """json_problems(value) == [], without building a path for every node on the way."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return (depth < MAX_DEPTH or not value) and all(
            _clean_text(key) and _clean(item, depth + 1) for key, item in value.items()
        )
    if isinstance(value, list):
        return (depth < MAX_DEPTH or not value) and all(_clean(item, depth + 1) for item in value)
    return not isinstance(value, float) or math.isfinite(value)


def json_problems(value: Any) -> list[dict]:
    """Nesting deeper than MAX_DEPTH and NUL characters anywhere, keys included."""
    if _clean(value, 0):  # every request body: the common case, made cheap
        return []
    return _problems(value, "body", 0)


def _problems(value: Any, path: str, depth: int) -> list[dict]:
    if depth > MAX_DEPTH:
        return [{"field": path, "message": f"nested deeper than {MAX_DEPTH} levels"}]
    if isinstance(value, str):
        return _text_problems(value, path)
    if isinstance(value, float) and not math.isfinite(value):
        return [{"field": path, "message": "is not a finite number"}]
    problems: list[dict] = []
    if isinstance(value, dict):
        for key, item in value.items():
            problems.extend(
                {"field": path, "message": f"has a key that {p['message'].removeprefix('is ')}"}
                for p in _text_problems(key, path)
            )
            problems.extend(_problems(item, f"{path}.{key}", depth + 1))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            problems.extend(_problems(item, f"{path}[{position}]", depth + 1))
    return problems


def _object(errors: _Errors, value: Any, field: str, allowed: set[str], *, required=True) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        errors.add(field, "must be a JSON object")
        return {}
    for key in sorted(set(value) - allowed):
        errors.add(f"{field}.{key}" if field != "body" else key, "is not a known field")
    return value


def _text(errors: _Errors, value: Any, field: str, *, required=True, max_length=200) -> str:
    if value is None or value == "":
        if required:
            errors.add(field, "is required")
        return ""
    if not isinstance(value, str):
        errors.add(field, "must be a string")
        return ""
    if len(value) > max_length:
        errors.add(field, f"must be at most {max_length} characters")
        return ""
    return value


def _identity(errors: _Errors, value: Any, field: str, *, required=False, max_length: int) -> str:
    """A name of a person or role: text with nothing invisible that could make a lookalike."""
    text = _text(errors, value, field, required=required, max_length=max_length)
    problem = identity_problem(text)
    if problem:
        errors.add(field, problem)
        return ""
    return text


def parse_rfc3339(value: Any) -> datetime | None:
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        return None
    normalised = value.replace("z", "Z").replace("Z", "+00:00").replace("t", "T").replace(" ", "T")
    # Python keeps microseconds only: cut longer fractions before parsing.
    normalised = re.sub(r"(\.\d{6})\d+", r"\1", normalised)
    try:
        return datetime.fromisoformat(normalised)
    except ValueError:
        return None


def parse_context(errors: _Errors, value: Any, field: str = "context") -> tuple[ContextInput, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.add(field, "must be a list")
        return ()
    items = []
    for position, raw in enumerate(value):
        where = f"{field}[{position}]"
        item = _object(errors, raw, where, {"name", "value", "observed_at"})
        if not item:
            continue
        name = _text(errors, item.get("name"), f"{where}.name")
        observed = parse_rfc3339(item.get("observed_at"))
        if observed is None:
            errors.add(f"{where}.observed_at", "must be an RFC 3339 time with a zone")
            continue
        if "value" not in item:
            errors.add(f"{where}.value", "is required")
            continue
        items.append(ContextInput(name=name, value=item["value"], observed_at=observed.isoformat()))
    return tuple(items)


def parse_side_effect(errors: _Errors, value: Any, field: str) -> str:
    if value is None:
        return "not_started"
    if value not in SIDE_EFFECTS:
        errors.add(field, f"must be one of {', '.join(SIDE_EFFECTS)}")
        return "not_started"
    return value


def _risk(errors: _Errors, value: Any) -> tuple[float | None, tuple[str, ...]]:
    risk = _object(errors, value, "risk", {"score", "labels"}, required=False)
    score = risk.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
    ):
        errors.add("risk.score", "must be a number from 0 to 1")
        score = None
    labels = risk.get("labels")
    if labels is None:
        labels = []
    elif not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        errors.add("risk.labels", "must be a list of strings")
        labels = []
    return (float(score) if score is not None else None), tuple(labels)


def _callback(errors: _Errors, value: Any) -> dict | None:
    """The caller's routing data: a small JSON object, stored and echoed, never interpreted."""
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add("callback", "must be a JSON object")
        return None
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_CALLBACK_BYTES:
        errors.add("callback", f"must be at most {MAX_CALLBACK_BYTES} bytes of JSON, not {size}")
        return None
    return value


def parse_gate_request(body: Any, *, require_key: bool = True) -> GateRequest:
    """Validate a decoded JSON body; raise ValidationFailed listing every problem."""
    if not isinstance(body, dict):
        raise ValidationFailed.of([{"field": "body", "message": "must be a JSON object"}])
    problems = json_problems(body)
    if problems:
        raise ValidationFailed.of(problems)
    errors = _Errors()
    top = _object(
        errors,
        body,
        "body",
        {"idempotency_key", "execution", "step", "action", "context", "risk", "callback"},
    )
    key = _text(errors, top.get("idempotency_key"), "idempotency_key", required=require_key)
    execution = _object(
        errors,
        top.get("execution"),
        "execution",
        {"thread_id", "workflow", "owner", "parent_thread_id", "on_behalf_of"},
    )
    thread_id = _text(errors, execution.get("thread_id"), "execution.thread_id")
    if thread_id and not THREAD_ID.fullmatch(thread_id):
        errors.add("execution.thread_id", f"must match {THREAD_ID_PATTERN}")
    parent = execution.get("parent_thread_id")
    if parent is not None and not (isinstance(parent, str) and THREAD_ID.fullmatch(parent)):
        errors.add("execution.parent_thread_id", f"must match {THREAD_ID_PATTERN}")
        parent = None
    step = _object(errors, top.get("step"), "step", {"index", "name"})
    index = step.get("index")
    if isinstance(index, float) and index.is_integer():
        index = int(index)  # JSON has one kind of number: 3.0 is the whole number 3
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
        errors.add("step.index", f"must be a whole number from 0 to {MAX_INDEX}")
        index = 0
    action = _object(errors, top.get("action"), "action", {"tool", "args", "side_effect"})
    args = action.get("args", {})
    if not isinstance(args, dict):
        errors.add("action.args", "must be a JSON object")
        args = {}
    score, labels = _risk(errors, top.get("risk"))
    request = GateRequest(
        idempotency_key=key,
        thread_id=thread_id,
        workflow=_text(errors, execution.get("workflow"), "execution.workflow"),
        owner=_identity(errors, execution.get("owner"), "execution.owner", max_length=MAX_OWNER),
        parent_thread_id=parent,
        on_behalf_of=_identity(
            errors, execution.get("on_behalf_of"), "execution.on_behalf_of", max_length=150
        ),
        step_index=index,
        step_name=_text(errors, step.get("name"), "step.name", required=False),
        tool=_text(errors, action.get("tool"), "action.tool"),
        args=args,
        side_effect=parse_side_effect(errors, action.get("side_effect"), "action.side_effect"),
        context=parse_context(errors, top.get("context")),
        risk_score=score,
        risk_labels=labels,
        callback=_callback(errors, top.get("callback")),
    )
    if errors.items:
        raise ValidationFailed.of(errors.items)
    return request


@dataclass(frozen=True)
class RefreshRequest:
    context: tuple[ContextInput, ...]
    args: dict | None
    side_effect: str | None
    callback: dict | None = None


def parse_refresh_request(body: dict) -> RefreshRequest:
    """POST /approvals/{id}/refresh: new context, and optionally new args, side effect or
    callback (the run that now waits, when it is another than the stale approval's)."""
    errors = _Errors()
    top = _object(errors, body, "body", {"context", "action", "callback"})
    if top.get("context") is None:
        errors.add("context", "is required")
    context = parse_context(errors, top.get("context"))
    action = _object(errors, top.get("action"), "action", {"args", "side_effect"}, required=False)
    args = action.get("args")
    if args is not None and not isinstance(args, dict):
        errors.add("action.args", "must be a JSON object")
    side_effect = action.get("side_effect")
    if side_effect is not None:
        side_effect = parse_side_effect(errors, side_effect, "action.side_effect")
    callback = _callback(errors, top.get("callback"))
    if errors.items:
        raise ValidationFailed.of(errors.items)
    return RefreshRequest(context=context, args=args, side_effect=side_effect, callback=callback)


OUTCOMES = ("landed", "not_landed", "indeterminate", "failed")


def parse_outcome_request(body: dict) -> tuple[str, dict]:
    """POST .../steps/{index}/outcome: (side_effect, detail)."""
    errors = _Errors()
    top = _object(errors, body, "body", {"side_effect", "detail"})
    side_effect = top.get("side_effect")
    if side_effect not in OUTCOMES:
        errors.add("side_effect", f"must be one of {', '.join(OUTCOMES)}")
    detail = top.get("detail", {})
    if not isinstance(detail, dict):
        errors.add("detail", "must be a JSON object")
    if errors.items:
        raise ValidationFailed.of(errors.items)
    return side_effect, detail


def parse_owner_request(body: dict) -> tuple[str, str]:
    """POST .../owner: (owner, reason)."""
    errors = _Errors()
    top = _object(errors, body, "body", {"owner", "reason"})
    owner = _identity(errors, top.get("owner"), "owner", required=True, max_length=MAX_OWNER)
    reason = _text(errors, top.get("reason"), "reason", required=False, max_length=1000)
    if errors.items:
        raise ValidationFailed.of(errors.items)
    return owner, reason
