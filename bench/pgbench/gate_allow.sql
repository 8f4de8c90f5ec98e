-- The SQL of one allowed gate check (POST /api/v1/gate), as the product sends it, for pgbench.
-- bench/run captures the product's statements with CaptureQueriesContext and records them in
-- bench/RESULTS.md; this script makes the same statements in the same order, in one
-- transaction, grouped into the same round trips. Where the product computes something in
-- Python (uuid4, the request hash), the value is made by PostgreSQL here, inside a statement the
-- product sends anyway. Run it with `-M simple`: Django's psycopg backend binds parameters on
-- the client and sends simple queries, which is what lets the product send several statements
-- as one query; `\;` joins them here the same way, and pgbench then pastes each variable into
-- the text as the client does (quoted where the product's value is a string).
-- Variables: -D acct=<service account id> -D prefix=<token prefix>. Each pgbench client gates
-- steps of its own execution, thread_id 'pg-<client_id>', made by bench/run beforehand.
-- (chr(58) is ':' where pgbench would otherwise read a variable.)

-- The bearer token's account (approvals.services.service_accounts), before the transaction.
SELECT id, name, token_prefix, token_hash, callback_url, webhook_secret, is_active, created_at,
       last_used_at, token_expires_at
  FROM approvals_serviceaccount WHERE token_prefix = ':prefix' AND is_active;

BEGIN;
-- One round trip: the policies (approvals.services.policies.RULES_SQL), then the execution,
-- made on its first step (approvals.services.gate._EXECUTION_UPSERT); the key, the check id
-- and the request hash are new per transaction.
SELECT name, priority, effect, version, match, enabled FROM approvals_policy \;
WITH made AS (
    INSERT INTO approvals_execution
           (id, service_account_id, thread_id, workflow, owner, parent_id, created_at)
    VALUES (gen_random_uuid(), :acct::bigint, 'pg-' || :client_id::text, 'bench-flow', 'reviewers',
            NULL, now())
    ON CONFLICT (service_account_id, thread_id) DO NOTHING
    RETURNING id, workflow)
SELECT e.id AS execution_id, e.workflow, 'pg-' || gen_random_uuid() AS key,
       gen_random_uuid() AS check_id, md5(random()::text) || md5(random()::text) AS request_hash
  FROM (SELECT id, workflow FROM made
        UNION ALL
        SELECT id, workflow FROM approvals_execution
         WHERE service_account_id = :acct::bigint AND thread_id = 'pg-' || :client_id::text
        LIMIT 1) AS e \gset
\set step random(0, 2000000000)
-- One round trip: the check with its answer, claiming the idempotency key; its gate.checked
-- event (audit.services.lock_and_append_one_sql), only if the INSERT claimed the key: the
-- chain lock, then one statement that appends the row and hashes it (audit.chain.HASH_SQL);
-- and the transaction set to commit without waiting for its flush under the chain lock
-- (audit.services.COMMIT_WITHOUT_WAITING_SQL).
INSERT INTO approvals_gatecheck
       (id, service_account_id, execution_id, idempotency_key, request_hash, request, step_index,
        step_name, tool, side_effect, decision, reason, policy_name, policy_version, response,
        created_at)
VALUES (':check_id'::uuid, :acct::bigint, ':execution_id'::uuid, ':key'::text, ':request_hash'::text,
        jsonb_build_object('idempotency_key', ':key'::text,
          'execution', jsonb_build_object('thread_id', 'pg-' || :client_id::text, 'workflow', 'bench-flow', 'owner', 'reviewers'),
          'step', jsonb_build_object('index', :step::int, 'name', 'step'),
          'action', jsonb_build_object('tool', 'bench.allow',
                                       'args', jsonb_build_object('user', 'new.hire', 'n', :step::int),
                                       'side_effect', 'not_started'),
          'context', jsonb_build_array(jsonb_build_object('name', 'ticket',
                       'value', jsonb_build_object('id', :step::int), 'observed_at', '2026-11-22T09' || chr(58) || '00' || chr(58) || '00Z')),
          'risk', jsonb_build_object('score', 0.1, 'labels', jsonb_build_array())),
        :step::int, 'step', 'bench.allow', 'not_started', 'allow',
        'policy bench-allow v1 (priority 10): allow', 'bench-allow', 1,
        jsonb_build_object('decision', 'allow',
          'reason', 'policy bench-allow v1 (priority 10): allow', 'check_id', ':check_id'::uuid,
          'policy', jsonb_build_object('name', 'bench-allow', 'version', 1), 'approval', NULL),
        now())
ON CONFLICT (service_account_id, idempotency_key) DO NOTHING
RETURNING id \;
SELECT pg_advisory_xact_lock(1786661683)
 WHERE EXISTS (SELECT FROM approvals_gatecheck WHERE id = ':check_id'::uuid) \;
INSERT INTO audit_auditevent (id, at, kind, actor, execution_id, packet_id, data, prev_hash, hash)
SELECT r.id, r.at, r.kind, r.actor, r.execution_id, r.packet_id, r.data, r.prev_hash,
       encode(sha256(convert_to(r.prev_hash || jsonb_build_object('seq', r.id,
         'at', to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.US"Z"'),
         'kind', r.kind, 'actor', r.actor, 'execution_id', r.execution_id,
         'packet_id', r.packet_id, 'data', r.data)::text, 'UTF8')), 'hex')
  FROM (SELECT nextval('audit_auditevent_id_seq') AS id, now() AS at,
               'gate.checked'::text AS kind, 'service' || chr(58) || 'bench' AS actor,
               ':execution_id'::uuid AS execution_id, NULL::uuid AS packet_id,
               jsonb_build_object('check_id', ':check_id'::uuid, 'step', :step::int,
                 'step_name', 'step', 'tool', 'bench.allow', 'side_effect', 'not_started',
                 'decision', 'allow', 'reason', 'policy bench-allow v1 (priority 10): allow',
                 'policy', jsonb_build_object('name', 'bench-allow', 'version', 1),
                 'idempotency_key', ':key'::text) AS data,
               coalesce((SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1),
                        '0000000000000000000000000000000000000000000000000000000000000000') AS prev_hash
         WHERE EXISTS (SELECT FROM approvals_gatecheck WHERE id = ':check_id'::uuid)) AS r
RETURNING id, prev_hash, hash \;
SET LOCAL synchronous_commit = off;
COMMIT;
-- The flush, waited for outside the chain lock in a transaction of its own
-- (audit.services.WAIT_FOR_FLUSH_SQL).
SELECT pg_logical_emit_message(true, 'gatekeeper.flush', '');
