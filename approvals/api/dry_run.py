"""POST /api/v1/gate/dry-run: what the gate would answer for each of a list of gate checks.

A service account asks before it plans (the MCP gateway, at `tools/list`, to tell the model
which tools need a human). Each check is the body of POST /gate, decided by the same
`policy_verdict` over the same rules, so an answer here is the gate's answer for the same
facts. Nothing is written: no check, no execution, no packet, no audit event, no idempotency
key claimed. Reads: the policies once, and whether each distinct owner named exists (the gate
refuses an unknown owner, so the dry run does too). It looks at no execution: a thread that
runs another workflow (409 at the gate) or an unknown parent thread (400) is not reported.
"""

from approvals.errors import ValidationFailed
from approvals.gate_request import GateRequest, parse_gate_request
from approvals.permissions import UNKNOWN_OWNER, owner_exists
from approvals.services.policies import policy_rules, policy_verdict

MAX_CHECKS = 100
# What a dry run leaves out of a gate body stands in as this: they name no policy fact.
_NO_THREAD = "dry-run"
_NO_STEP = {"index": 0}


def dry_run(body: dict) -> dict:
    """The gate's decision for each check in `body["checks"]`, in order; writes nothing."""
    requests = _parse_checks(body)
    problems = [
        {"field": f"checks[{position}].execution.owner", "message": UNKNOWN_OWNER}
        for position in _unknown_owners(requests)
    ]
    if problems:
        raise ValidationFailed.of(problems)
    rules = policy_rules()
    results = []
    for request in requests:
        verdict = policy_verdict(request, rules)
        rule = verdict.rule
        results.append(
            {
                "tool": request.tool,
                "decision": verdict.decision,
                "reason": verdict.reason,
                "policy": {"name": rule.name, "version": rule.version} if rule else None,
            }
        )
    return {"results": results}


def _parse_checks(body: dict) -> list[GateRequest]:
    unknown = sorted(set(body) - {"checks"})
    problems = [{"field": key, "message": "is not a known field"} for key in unknown]
    checks = body.get("checks")
    if not isinstance(checks, list) or not 1 <= len(checks) <= MAX_CHECKS:
        problems.append({"field": "checks", "message": f"must be a list of 1 to {MAX_CHECKS}"})
        raise ValidationFailed.of(problems)
    requests = []
    for position, check in enumerate(checks):
        try:
            requests.append(parse_gate_request(_filled(check), require_key=False))
        except ValidationFailed as failure:
            problems.extend(
                {**item, "field": f"checks[{position}].{item['field']}"}
                for item in failure.details["errors"]
            )
    if problems:
        raise ValidationFailed.of(problems)
    return requests


def _filled(check):
    """A check with a thread and a step when it names none: a dry run needs no execution."""
    if not isinstance(check, dict):
        return check
    execution = check.get("execution")
    if isinstance(execution, dict) and execution.get("thread_id") is None:
        check = {**check, "execution": {**execution, "thread_id": _NO_THREAD}}
    return check if check.get("step") is not None else {**check, "step": _NO_STEP}


def _unknown_owners(requests: list[GateRequest]):
    """The position of each check naming an owner that does not exist; one read per name."""
    known: dict[str, bool] = {}
    for position, request in enumerate(requests):
        if not request.owner:
            continue
        if request.owner not in known:
            known[request.owner] = owner_exists(request.owner)
        if not known[request.owner]:
            yield position
