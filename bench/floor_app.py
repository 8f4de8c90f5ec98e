"""The floor: a bare Django view making the database writes of an allow decision, and no more.

gate_vs_floor divides the gate API's rate by this view's rate on the same gunicorn server. The
view takes the same JSON body and, in one transaction, writes what an allow decision leaves
behind: the execution (on its first step), the gate check row with its answer, and the
`gate.checked` audit event chained to the head under the chain lock. It writes them as well as
a bare view can, which is the product's own way: the execution in one round trip; the check,
the chain lock, the append (audit.services.lock_and_append_one_sql, hashed by PostgreSQL) and
the commit mode in the next; committed without waiting under the lock, then waiting for the
flush (audit.services.wait_until_durable_on_commit). No authentication, validation, policy
evaluation or idempotency: those are what the ratio measures.

Served only by bench.settings (bench/urls.py); gatekeeper.settings never routes to it.
"""

import hashlib
import json
import uuid

from django.db import connection, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from approvals.events import EventKind
from audit.services import (
    COMMIT_WITHOUT_WAITING_SQL,
    Event,
    event_parameters,
    lock_and_append_one_sql,
    wait_until_durable_on_commit,
)

_EXECUTION = """
WITH new AS (
    INSERT INTO approvals_execution
           (id, service_account_id, thread_id, workflow, owner, created_at)
    VALUES (%(id)s, %(account)s, %(thread_id)s, %(workflow)s, '', now())
    ON CONFLICT (service_account_id, thread_id) DO NOTHING
    RETURNING id)
SELECT id FROM new
UNION ALL
SELECT id FROM approvals_execution
 WHERE service_account_id = %(account)s AND thread_id = %(thread_id)s
LIMIT 1
"""
_CHECK = """
INSERT INTO approvals_gatecheck
       (id, service_account_id, execution_id, idempotency_key, request_hash, request, step_index,
        step_name, tool, side_effect, decision, reason, policy_name, policy_version, response,
        created_at)
VALUES (%(id)s, %(account)s, %(execution)s, %(key)s, %(hash)s, %(request)s, %(step)s,
        %(step_name)s, %(tool)s, %(side_effect)s, 'allow', 'floor', 'floor', 1, %(response)s,
        now())
"""
# One round trip, as the product sends it (Django's client-side binding makes it one query).
_CHECK_AND_EVENT = f"{_CHECK}; {lock_and_append_one_sql()}; {COMMIT_WITHOUT_WAITING_SQL}"

_account_id: int | None = None


def _account() -> int:
    global _account_id
    if _account_id is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM approvals_serviceaccount WHERE name = 'bench'")
            _account_id = cursor.fetchone()[0]
    return _account_id


@csrf_exempt
def floor(request):
    body = json.loads(request.body)
    account = _account()
    check_id = uuid.uuid4()
    response = {"decision": "allow", "reason": "floor", "check_id": str(check_id)}
    with transaction.atomic(), connection.cursor() as cursor:
        wait_until_durable_on_commit()
        cursor.execute(
            _EXECUTION,
            {
                "id": uuid.uuid4(),
                "account": account,
                "thread_id": body["execution"]["thread_id"],
                "workflow": body["execution"]["workflow"],
            },
        )
        execution = cursor.fetchone()[0]
        event = Event(
            EventKind.GATE_CHECKED,
            actor="service:bench",
            execution_id=execution,
            data={
                "check_id": str(check_id),
                "step": body["step"]["index"],
                "step_name": body["step"]["name"],
                "tool": body["action"]["tool"],
                "side_effect": body["action"]["side_effect"],
                "decision": "allow",
                "reason": "floor",
                "policy": {"name": "floor", "version": 1},
                "idempotency_key": body["idempotency_key"],
            },
        )
        cursor.execute(
            _CHECK_AND_EVENT,
            {
                "id": check_id,
                "account": account,
                "execution": execution,
                "key": body["idempotency_key"],
                "hash": hashlib.sha256(request.body).hexdigest(),
                "request": request.body.decode(),
                "step": body["step"]["index"],
                "step_name": body["step"]["name"],
                "tool": body["action"]["tool"],
                "side_effect": body["action"]["side_effect"],
                "response": json.dumps(response),
                **event_parameters(event, timezone.now()),
            },
        )
    return JsonResponse(response)
