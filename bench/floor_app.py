"""The floor: a bare Django view making the database writes of an allow decision, and no more.

gate_vs_floor divides the gate API's rate by this view's rate on the same gunicorn server. The
view takes the same JSON body and, in one transaction, writes what an allow decision leaves
behind: the execution (on its first step), the gate check row with its answer, and the
`gate.checked` audit event chained to the head under the same advisory lock the product takes
(its hash computed by PostgreSQL from audit.chain.HASH_SQL, so the chain stays valid), committed
as the product commits (not waiting for the flush under the lock, then waiting for it). No
authentication, validation, policy evaluation or idempotency lookup: those are what the ratio
measures.

Served only by bench.settings (bench/urls.py); gatekeeper.settings never routes to it.
"""

import hashlib
import json
import uuid

from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from audit.chain import GENESIS_HASH, HASH_SQL
from audit.services import (
    COMMIT_WITHOUT_WAITING_SQL,
    ID_SEQUENCE,
    LOCK_CHAIN_SQL,
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
_GATE_CHECK = """
INSERT INTO approvals_gatecheck
       (id, service_account_id, execution_id, idempotency_key, request_hash, request, step_index,
        step_name, tool, side_effect, decision, reason, policy_name, policy_version, response,
        created_at)
VALUES (%(id)s, %(account)s, %(execution)s, %(key)s, %(hash)s, %(request)s, %(step)s,
        %(step_name)s, %(tool)s, %(side_effect)s, 'allow', 'floor', 'floor', 1, %(response)s,
        now())
"""
# Composed from audit's constants only; every value travels as a parameter.
_AUDIT = (
    "INSERT INTO audit_auditevent (id, at, kind, actor, execution_id, packet_id, data, prev_hash,"  # noqa: S608
    " hash) SELECT r.id, r.at, r.kind, r.actor, r.execution_id, r.packet_id, r.data, r.prev_hash, "
    + HASH_SQL.format(p="r.")
    + f" FROM (SELECT nextval('{ID_SEQUENCE}') AS id,"  # noqa: S608
    " now() AS at, 'gate.checked'::text AS kind, %(actor)s::text AS actor,"
    " %(execution)s::uuid AS execution_id, NULL::uuid AS packet_id, %(data)s::jsonb AS data,"
    " coalesce((SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1), %(genesis)s)"
    " AS prev_hash) AS r"
)

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
        cursor.execute(
            _GATE_CHECK,
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
            },
        )
        cursor.execute(LOCK_CHAIN_SQL)
        cursor.execute(
            _AUDIT,
            {
                "actor": "service:bench",
                "execution": execution,
                "data": json.dumps(
                    {
                        "check_id": str(check_id),
                        "step": body["step"]["index"],
                        "step_name": body["step"]["name"],
                        "tool": body["action"]["tool"],
                        "side_effect": body["action"]["side_effect"],
                        "decision": "allow",
                        "reason": "floor",
                        "policy": {"name": "floor", "version": 1},
                        "idempotency_key": body["idempotency_key"],
                    }
                ),
                "genesis": GENESIS_HASH,
            },
        )
        # As the product commits: without waiting under the chain lock, then for the flush.
        cursor.execute(COMMIT_WITHOUT_WAITING_SQL)
        wait_until_durable_on_commit()
    return JsonResponse(response)
