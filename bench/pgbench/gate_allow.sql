-- The SQL of one allowed gate check (POST /api/v1/gate), as Django emits it, for pgbench.
-- bench/run captures the product's statements with CaptureQueriesContext and records them in
-- bench/RESULTS.md; this script makes the same round trips in the same order, in one
-- transaction. Where the product computes something in Python (uuid4, the request hash, the
-- chain hash), the value is made by PostgreSQL here, inside a statement the product sends anyway.
-- Variables: -D acct=<service account id> -D prefix=<token prefix>. Each pgbench client gates
-- steps of its own execution, thread_id 'pg-<client_id>', made by bench/run beforehand.

-- The bearer token's account (approvals.api.auth), before the transaction.
SELECT id, name, token_prefix, token_hash, callback_url, webhook_secret, is_active, created_at,
       last_used_at, token_expires_at
  FROM approvals_serviceaccount WHERE token_prefix = :prefix::text AND is_active;

BEGIN;
-- The idempotency key's advisory lock; the key and the check id are new per transaction.
SELECT pg_advisory_xact_lock(:acct::int, hashtext(k.key)) AS locked, k.key AS key,
       gen_random_uuid() AS check_id, md5(k.key) || md5(k.key || 'x') AS request_hash
  FROM (SELECT 'pg-' || gen_random_uuid() AS key) AS k \gset
SELECT id, service_account_id, execution_id, idempotency_key, request_hash, request, step_index,
       step_name, tool, side_effect, decision, reason, policy_name, policy_version, response,
       created_at
  FROM approvals_gatecheck
 WHERE service_account_id = :acct::bigint AND idempotency_key = :key::text
 ORDER BY created_at DESC LIMIT 1;
SAVEPOINT bench_s1;
SELECT id AS execution_id, service_account_id, thread_id, workflow, owner, owner_changed_at,
       parent_id, created_at
  FROM approvals_execution
 WHERE service_account_id = :acct::bigint AND thread_id = 'pg-' || :client_id::text LIMIT 21 \gset
RELEASE SAVEPOINT bench_s1;
SELECT id, name, priority, enabled, match, effect, approvers, escalate_to, required_approvals,
       forbid_self_approval, allow_edit, fresh_for_seconds, expires_after_seconds,
       remind_before_seconds, version, updated_at
  FROM approvals_policy ORDER BY priority ASC, name ASC;
\set step random(0, 2000000000)
INSERT INTO approvals_gatecheck
       (id, service_account_id, execution_id, idempotency_key, request_hash, request, step_index,
        step_name, tool, side_effect, decision, reason, policy_name, policy_version, response,
        created_at)
VALUES (:check_id::uuid, :acct::bigint, :execution_id::uuid, :key::text, :request_hash::text,
        jsonb_build_object('idempotency_key', :key::text,
          'execution', jsonb_build_object('thread_id', 'pg-' || :client_id::text, 'workflow', 'bench-flow'),
          'step', jsonb_build_object('index', :step::int, 'name', 'step'),
          'action', jsonb_build_object('tool', 'bench.allow',
                                       'args', jsonb_build_object('user', 'new.hire', 'n', :step::int),
                                       'side_effect', 'not_started'),
          'context', jsonb_build_array(jsonb_build_object('name', 'ticket',
                       'value', jsonb_build_object('id', :step::int), 'observed_at', '2026-11-22T09' || chr(58) || '00' || chr(58) || '00Z')),
          'risk', jsonb_build_object('score', 0.1, 'labels', jsonb_build_array())),
        :step::int, 'step', 'bench.allow', 'not_started', 'allow',
        'policy bench-allow v1 (priority 10): allow', 'bench-allow', 1, NULL, now());
-- audit.services.record_events: the chain lock, the head, a seq, the row's document, the row.
SELECT pg_advisory_xact_lock(1786661683);
SELECT hash AS prev FROM audit_auditevent ORDER BY id DESC LIMIT 1 \gset
SELECT nextval(pg_get_serial_sequence('audit_auditevent', 'id')) AS seq
  FROM generate_series(1, 1) \gset
SELECT jsonb_build_object('seq', t.id,
         'at', to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.US"Z"'),
         'kind', t.kind, 'actor', t.actor, 'execution_id', t.execution_id,
         'packet_id', t.packet_id, 'data', t.data)::text AS doc
  FROM unnest(ARRAY[:seq::bigint]::bigint[], ARRAY[now()]::timestamptz[], ARRAY['gate.checked']::text[],
              ARRAY['service' || chr(58) || 'bench']::text[], ARRAY[:execution_id::uuid]::uuid[], ARRAY[NULL]::uuid[],
              ARRAY[jsonb_build_object('check_id', :check_id::uuid, 'step', :step::int,
                      'step_name', 'step', 'tool', 'bench.allow', 'side_effect', 'not_started',
                      'decision', 'allow', 'reason', 'policy bench-allow v1 (priority 10): allow',
                      'policy', jsonb_build_object('name', 'bench-allow', 'version', 1),
                      'idempotency_key', :key::text)]::jsonb[])
       AS t(id, at, kind, actor, execution_id, packet_id, data) ORDER BY t.id \gset
INSERT INTO audit_auditevent (id, at, kind, actor, execution_id, packet_id, data, prev_hash, hash)
SELECT t.id, t.at, t.kind, t.actor, t.execution_id, t.packet_id, t.data, h.prev_hash, h.hash
  FROM unnest(ARRAY[:seq::bigint]::bigint[], ARRAY[now()]::timestamptz[], ARRAY['gate.checked']::text[],
              ARRAY['service' || chr(58) || 'bench']::text[], ARRAY[:execution_id::uuid]::uuid[], ARRAY[NULL]::uuid[],
              ARRAY[jsonb_build_object('check_id', :check_id::uuid, 'step', :step::int,
                      'step_name', 'step', 'tool', 'bench.allow', 'side_effect', 'not_started',
                      'decision', 'allow', 'reason', 'policy bench-allow v1 (priority 10): allow',
                      'policy', jsonb_build_object('name', 'bench-allow', 'version', 1),
                      'idempotency_key', :key::text)]::jsonb[])
       AS t(id, at, kind, actor, execution_id, packet_id, data)
  JOIN unnest(ARRAY[:seq::bigint]::bigint[], ARRAY[:prev::text]::text[],
              ARRAY[encode(sha256(convert_to(:prev::text || :doc::text, 'UTF8')), 'hex')])
       AS h(id, prev_hash, hash) ON h.id = t.id;
UPDATE approvals_gatecheck
   SET response = jsonb_build_object('decision', 'allow',
         'reason', 'policy bench-allow v1 (priority 10): allow', 'check_id', :check_id::uuid,
         'policy', jsonb_build_object('name', 'bench-allow', 'version', 1), 'approval', NULL)
 WHERE id = :check_id::uuid;
COMMIT;
