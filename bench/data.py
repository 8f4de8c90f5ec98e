"""The bench's own data, made in bulk with SQL: nothing here goes through the services.

Packets come with everything a real one has (execution, gate check, group permissions on
guardian's direct-foreign-key table), made by INSERT ... SELECT over generate_series. Their ids
are md5(name)::uuid, so pgbench scripts and worker processes can name a packet without asking.

The decision record is seeded with a valid hash chain: rows are staged in an unlogged table,
PostgreSQL renders each row's document with audit.chain.DOCUMENT_SQL (exactly what the writer
and verify_audit render), Python chains the SHA-256 hashes while streaming the documents out
with COPY, and one INSERT ... SELECT appends the rows in seq order after the existing head.
"""

import os

import psycopg
from django.db import connection

from audit.chain import DOCUMENT_SQL, GENESIS_HASH, chain_hash


def execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def scalar(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def settle() -> None:
    """Vacuum and analyze everything written in bulk, and checkpoint: the state autovacuum and
    the checkpointer would reach on their own, reached before anything is measured."""
    execute("VACUUM (ANALYZE)")
    quiet_disk(checkpoint=True)


def quiet_disk(*, checkpoint: bool) -> None:
    """Start a figure on a disk that is not still writing back what earlier phases wrote.

    The machine's disk is slow to absorb writes: seconds after a phase that wrote much (a bulk
    load, an export, a drop), commits wait behind the kernel's writeback (iowait of 30-80 %
    seen), and a latency figure would measure that. With `checkpoint`, PostgreSQL's own dirty
    buffers are written first too.
    """
    if checkpoint:
        execute("CHECKPOINT")
    os.sync()


def packet_id_sql(prefix: str, expression: str) -> str:
    """SQL for the id of packet number `expression` of a batch: md5('<prefix>-pk-<n>')::uuid."""
    return f"md5('{prefix}-pk-' || ({expression}))::uuid"


def packet_ids(prefix: str, count: int, start: int = 0) -> list[str]:
    import hashlib
    import uuid

    return [
        str(uuid.UUID(hashlib.md5(f"{prefix}-pk-{n}".encode()).hexdigest()))  # noqa: S324
        for n in range(start, start + count)
    ]


_EXECUTIONS = """
INSERT INTO approvals_execution
       (id, service_account_id, thread_id, workflow, owner, created_at)
SELECT md5(%(prefix)s || '-ex-' || e)::uuid, %(account)s, %(prefix)s || '-' || e,
       'wf-' || (e %% 5), %(owner)s, now() - interval '2 days'
  FROM generate_series(0, %(executions)s - 1) AS e
"""

_GATE_CHECKS = """
INSERT INTO approvals_gatecheck
       (id, service_account_id, execution_id, idempotency_key, request_hash, request, step_index,
        step_name, tool, side_effect, decision, reason, policy_name, policy_version, created_at)
SELECT md5(%(prefix)s || '-gc-' || i)::uuid, %(account)s,
       md5(%(prefix)s || '-ex-' || (i %% %(executions)s))::uuid,
       %(prefix)s || '-key-' || i, md5(i::text) || md5(%(prefix)s || i),
       jsonb_build_object('idempotency_key', %(prefix)s || '-key-' || i,
                          'action', jsonb_build_object('tool', 'crm.update', 'args',
                                                       jsonb_build_object('record', i))),
       %(first_step)s + i / %(executions)s, 'step-' || (i / %(executions)s),
       (ARRAY['crm.update', 'iam.grant', 'mail.send', 'db.write'])[1 + i %% 4],
       'not_started', 'require_approval', 'no policy matched', '', NULL,
       now() - interval '1 hour' * (i %% 20)
  FROM generate_series(0, %(count)s - 1) AS i
"""

_PACKETS = """
INSERT INTO approvals_pausepacket
       (id, execution_id, gate_check_id, step_index, step_name, tool, args, side_effect, context,
        owner, workflow, approvers, escalate_to, requested_by_id, on_behalf_of, policy_name,
        policy_version, reason, required_approvals, forbid_self_approval, allow_edit,
        fresh_for_seconds, expires_after_seconds, remind_before_seconds, created_at, fresh_until,
        expires_at, snapshot_hash, status, decided_by, comment)
SELECT md5(%(prefix)s || '-pk-' || i)::uuid,
       md5(%(prefix)s || '-ex-' || (i %% %(executions)s))::uuid,
       md5(%(prefix)s || '-gc-' || i)::uuid,
       %(first_step)s + i / %(executions)s, 'step-' || (i / %(executions)s),
       (ARRAY['crm.update', 'iam.grant', 'mail.send', 'db.write'])[1 + i %% 4],
       jsonb_build_object('record', i, 'role', 'viewer', 'note', 'bulk packet ' || i),
       'not_started',
       jsonb_build_array(jsonb_build_object('name', 'ticket', 'value', jsonb_build_object('id', i),
                                            'observed_at', '2026-11-20T09:00:00Z')),
       %(owner)s, 'wf-' || ((i %% %(executions)s) %% 5), %(owner)s, '', %(account)s, '', '',
       NULL, 'no policy matched: fail closed', %(required)s + (i %% %(required_mod)s), true, false,
       %(fresh)s, %(expires)s, %(expires)s / 4,
       c.created, c.created + %(fresh)s * interval '1 second',
       c.created + %(expires)s * interval '1 second' + (i %% 997) * interval '1 minute',
       md5(%(prefix)s || i) || md5(i::text), 'pending', '[]'::jsonb, ''
  FROM generate_series(0, %(count)s - 1) AS i
 CROSS JOIN LATERAL (SELECT now() - interval '1 minute' * (i %% 50) AS created) AS c
"""

_GRANTS = """
INSERT INTO approvals_pausepacketgroupobjectpermission (content_object_id, group_id, permission_id)
SELECT md5(%(prefix)s || '-pk-' || i)::uuid, %(group)s, p.id
  FROM generate_series(0, %(count)s - 1) AS i
 CROSS JOIN (SELECT p.id FROM auth_permission p
               JOIN django_content_type ct ON ct.id = p.content_type_id
              WHERE ct.app_label = 'approvals' AND p.codename = ANY(%(codenames)s)) AS p
"""


def bulk_packets(
    *,
    prefix: str,
    count: int,
    executions: int,
    account: int,
    group_id: int,
    owner: str,
    codenames=("view_pausepacket", "resume_pausepacket"),
    expires_seconds: int = 3600,
    fresh_seconds: int = 30 * 86400,
    required: int = 1,
    required_mod: int = 1,
    first_step: int = 0,
) -> None:
    """`count` pending packets over `executions` executions, visible to one group.

    required_approvals is `required + i % required_mod` (so 1, or alternately 1 and 2).
    """
    params = {
        "prefix": prefix,
        "count": count,
        "executions": executions,
        "account": account,
        "group": group_id,
        "owner": owner,
        "codenames": list(codenames),
        "expires": expires_seconds,
        "fresh": fresh_seconds,
        "required": required,
        "required_mod": required_mod,
        "first_step": first_step,
    }
    if first_step == 0:
        execute(_EXECUTIONS, params)
    execute(_GATE_CHECKS, params)
    execute(_PACKETS, params)
    execute(_GRANTS, params)


# Staged events, in the order they will be chained; the final INSERT numbers them after the head.
_STAGE = """
CREATE UNLOGGED TABLE bench_events (
    n bigint, at timestamptz, kind text, actor text, execution_id uuid, packet_id uuid, data jsonb
)
"""

_STAGE_PACKETS = """
INSERT INTO bench_events
SELECT 2 * i + k, now() - interval '3 days' + interval '1 second' * i / 10,
       CASE k WHEN 0 THEN 'gate.checked' ELSE 'packet.created' END,
       'service:bench', md5(%(prefix)s || '-ex-' || (i %% %(executions)s))::uuid,
       CASE k WHEN 0 THEN NULL ELSE md5(%(prefix)s || '-pk-' || i)::uuid END,
       CASE k WHEN 0 THEN jsonb_build_object(
                 'check_id', md5(%(prefix)s || '-gc-' || i)::uuid, 'step', i / %(executions)s,
                 'step_name', 'step-' || (i / %(executions)s), 'tool', 'crm.update',
                 'side_effect', 'not_started', 'decision', 'require_approval',
                 'reason', 'no policy matched', 'policy', NULL,
                 'idempotency_key', %(prefix)s || '-key-' || i)
              ELSE jsonb_build_object(
                 'step', i / %(executions)s, 'tool', 'crm.update',
                 'args', jsonb_build_object('record', i, 'role', 'viewer'),
                 'side_effect', 'not_started', 'owner', 'reviewers', 'approvers', 'reviewers',
                 'policy', jsonb_build_object('name', '', 'version', NULL),
                 'reason', 'no policy matched: fail closed', 'required_approvals', 1,
                 'snapshot_hash', md5(%(prefix)s || i) || md5(i::text)) END
  FROM generate_series(0, %(count)s - 1) AS i CROSS JOIN generate_series(0, 1) AS k
"""

# A long execution for the timeline: alternating gate checks and outcomes, step after step.
_STAGE_TIMELINE = """
INSERT INTO bench_events
SELECT %(base)s + 2 * s + k, now() - interval '2 days' + interval '1 second' * s,
       CASE k WHEN 0 THEN 'gate.checked' ELSE 'step.outcome' END, 'service:bench',
       %(execution)s::uuid, NULL,
       CASE k WHEN 0 THEN jsonb_build_object(
                 'check_id', md5('timeline-gc-' || s)::uuid, 'step', s, 'step_name', 'step-' || s,
                 'tool', 'crm.update', 'side_effect', 'not_started', 'decision', 'allow',
                 'reason', 'policy bench-allow v1 (priority 10): allow',
                 'policy', jsonb_build_object('name', 'bench-allow', 'version', 1),
                 'idempotency_key', 'timeline-' || s)
              ELSE jsonb_build_object('step', s, 'side_effect', 'landed', 'gated', true,
                                      'detail', jsonb_build_object('rows', s)) END
  FROM generate_series(0, %(steps)s - 1) AS s CROSS JOIN generate_series(0, 1) AS k
"""

_STAGE_FILLER = """
INSERT INTO bench_events
SELECT %(base)s + i, now() - interval '40 days' + interval '1 second' * i / 2, 'gate.checked',
       'service:bench', md5('filler-ex-' || (i %% 1000))::uuid, NULL,
       jsonb_build_object('check_id', md5('filler-gc-' || i)::uuid, 'step', i / 1000,
                          'step_name', 'step-' || (i / 1000), 'tool', 'mail.send',
                          'side_effect', 'not_started', 'decision', 'allow',
                          'reason', 'policy bench-allow v1 (priority 10): allow',
                          'policy', jsonb_build_object('name', 'bench-allow', 'version', 1),
                          'idempotency_key', 'filler-' || i)
  FROM generate_series(0, %(count)s - 1) AS i
"""

_TIMELINE_ROWS = """
INSERT INTO approvals_gatecheck
       (id, service_account_id, execution_id, idempotency_key, request_hash, request, step_index,
        step_name, tool, side_effect, decision, reason, policy_name, policy_version, created_at)
SELECT md5('timeline-gc-' || s)::uuid, %(account)s, %(execution)s::uuid, 'timeline-' || s,
       md5(s::text) || md5('t' || s), '{}'::jsonb, s, 'step-' || s, 'crm.update',
       'not_started', 'allow', 'policy bench-allow v1 (priority 10): allow', 'bench-allow', 1,
       now() - interval '2 days' + interval '1 second' * s
  FROM generate_series(0, %(steps)s - 1) AS s;
INSERT INTO approvals_stepoutcome
       (execution_id, step_index, side_effect, detail, gated, reported_by, created_at)
SELECT %(execution)s::uuid, s, 'landed', jsonb_build_object('rows', s), true, 'service:bench',
       now() - interval '2 days' + interval '1 second' * s
  FROM generate_series(0, %(steps)s - 1) AS s
"""


def timeline_execution(*, account: int, steps: int) -> str:
    """An execution with `steps` allowed steps, each with its outcome; returns its id."""
    execution = scalar("SELECT md5('timeline-ex')::uuid")
    execute(
        "INSERT INTO approvals_execution (id, service_account_id, thread_id, workflow, owner,"
        " created_at) VALUES (%s, %s, 'bench-timeline', 'wf-timeline', 'reviewers',"
        " now() - interval '2 days')",
        [execution, account],
    )
    execute(_TIMELINE_ROWS, {"account": account, "execution": execution, "steps": steps})
    return str(execution)


def filler_executions(*, account: int) -> None:
    execute(
        "INSERT INTO approvals_execution (id, service_account_id, thread_id, workflow, owner,"
        " created_at) SELECT md5('filler-ex-' || e)::uuid, %s, 'bench-hist-' || e,"
        " 'wf-' || (e %% 5), 'reviewers', now() - interval '41 days'"
        " FROM generate_series(0, 999) AS e",
        [account],
    )


def seed_audit(
    *,
    total: int,
    packets_prefix: str,
    packets: int,
    executions: int,
    timeline_execution_id: str,
    timeline_steps: int,
) -> int:
    """Append about `total` audit events with a valid chain; returns how many were added.

    Two per bulk packet (gate.checked, packet.created), two per timeline step, and gate.checked
    filler for the rest. The filler is the oldest, then the packets, then the timeline.
    """
    execute("DROP TABLE IF EXISTS bench_events, bench_hashes")
    execute(_STAGE)
    filler = max(0, total - 2 * packets - 2 * timeline_steps)
    execute(_STAGE_FILLER, {"base": 0, "count": filler})
    execute(
        _STAGE_PACKETS.replace("SELECT 2 * i + k", "SELECT %(base)s + 2 * i + k"),
        {"base": filler, "prefix": packets_prefix, "count": packets, "executions": executions},
    )
    execute(
        _STAGE_TIMELINE,
        {
            "base": filler + 2 * packets,
            "execution": timeline_execution_id,
            "steps": timeline_steps,
        },
    )
    execute("CREATE UNLOGGED TABLE bench_hashes (n bigint, prev_hash text, hash text)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, hash FROM audit_auditevent ORDER BY id DESC LIMIT 1")
        head = cursor.fetchone()
    first_seq = (head[0] + 1) if head else 1
    prev = head[1] if head else GENESIS_HASH
    # COPY takes no parameters: composed from audit.chain's constants and an integer only.
    documents = (
        f"COPY (SELECT n, {DOCUMENT_SQL.format(p='e.')} FROM ("  # noqa: S608
        f"SELECT n + {int(first_seq)} AS id, n, at, kind, actor, execution_id, packet_id, data"
        " FROM bench_events) AS e ORDER BY n) TO STDOUT"
    )
    connection.ensure_connection()
    reader = connection.connection
    settings = connection.settings_dict
    with (
        psycopg.connect(
            dbname=settings["NAME"],
            user=settings["USER"],
            password=settings["PASSWORD"],
            host=settings["HOST"],
            port=settings["PORT"] or 5432,
            autocommit=True,
        ) as writer,
        reader.cursor() as rcur,
        writer.cursor() as wcur,
        wcur.copy("COPY bench_hashes (n, prev_hash, hash) FROM STDIN") as sink,
        rcur.copy(documents) as source,
    ):
        source.set_types(["int8", "text"])
        for n, document in source.rows():
            digest = chain_hash(prev, document)
            sink.write_row((n, prev, digest))
            prev = digest
    execute(
        "INSERT INTO audit_auditevent (id, at, kind, actor, execution_id, packet_id, data,"
        " prev_hash, hash) SELECT e.n + %s, e.at, e.kind, e.actor, e.execution_id, e.packet_id,"
        " e.data, h.prev_hash, h.hash FROM bench_events e JOIN bench_hashes h USING (n)"
        " ORDER BY e.n",
        [first_seq],
    )
    added = scalar("SELECT count(*) FROM bench_events")
    execute(
        "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'),"
        " (SELECT max(id) FROM audit_auditevent))"
    )
    execute("DROP TABLE bench_events, bench_hashes")
    execute("ANALYZE")
    return added
