-- The SQL of one approval that resumes a packet (approvals.services.review.packet_approve), as
-- Django emits it, for pgbench: the row lock, guardian's permission reads (one checker
-- answers may-view and may-resume), the current votes, the vote, the compare-and-set on the
-- packet, the long-poll notification, and the two audit events (packet.voted,
-- packet.approved) chained under the lock by one INSERT (audit.services.record_events, the
-- audit_chain aggregate of audit/migrations/0004). Run it with `-M simple`, as Django's psycopg
-- backend talks: the product sends the lock and that INSERT as one simple query, and `\;` joins
-- them here the same way; pgbench pastes each variable into the text as the client does
-- (quoted where the value is a string).
-- Django's ContentType lookup is cached per process after the first request and is left out.
-- Literal colons are written chr(58): pgbench reads every colon followed by a name as a
-- variable.
-- Variables: -D uid=<user id> -D ct=<content type id of PausePacket> -D clients=<pgbench -c>
-- -D n=0. Client c approves packets md5('pgd-pk-' || (c + clients * k))::uuid, k = 0, 1, ...,
-- made pending by bench/run beforehand.

\set n :n + 1
BEGIN;
SELECT p.id AS packet_id, p.execution_id AS execution_id, p.gate_check_id, p.step_index,
       p.step_name, p.tool, p.args AS args, p.side_effect, p.context, p.owner AS packet_owner,
       p.workflow AS packet_workflow, p.approvers, p.escalate_to, p.requested_by_id,
       p.on_behalf_of, p.policy_name, p.policy_version, p.reason, p.required_approvals,
       p.forbid_self_approval, p.allow_edit, p.fresh_for_seconds, p.expires_after_seconds,
       p.remind_before_seconds, p.created_at AS packet_created_at, p.fresh_until, p.expires_at,
       p.snapshot_hash AS snap, p.status, p.branch, p.decision, p.decided_by, p.decided_at,
       p.comment, p.edited_args, p.superseded_by_id, p.reminded_at, p.escalated_at,
       e.id AS e_id, e.service_account_id, e.thread_id, e.workflow AS e_workflow,
       e.owner AS e_owner, e.owner_changed_at, e.parent_id, e.created_at AS e_created_at,
       s.id AS s_id, s.name, s.token_prefix, s.token_hash, s.callback_url, s.webhook_secret,
       s.is_active, s.created_at AS s_created_at, s.last_used_at, s.token_expires_at
  FROM approvals_pausepacket p
  JOIN approvals_execution e ON p.execution_id = e.id
  JOIN approvals_serviceaccount s ON p.requested_by_id = s.id
 WHERE p.id = md5('pgd-pk-' || (:client_id::int + :clients::int * (:n::int - 1)))::uuid
 ORDER BY p.expires_at ASC LIMIT 1 FOR UPDATE OF p \gset
SELECT ap.codename FROM auth_permission ap
  JOIN django_content_type ct ON ap.content_type_id = ct.id
  JOIN approvals_pausepacketuserobjectpermission up ON ap.id = up.permission_id
 WHERE ap.content_type_id = :ct::int AND up.content_object_id = ':packet_id'::uuid
   AND up.user_id = :uid::int
 ORDER BY ct.app_label, ct.model, 1;
SELECT ap.codename FROM auth_permission ap
  JOIN django_content_type ct ON ap.content_type_id = ct.id
  JOIN approvals_pausepacketgroupobjectpermission gp ON ap.id = gp.permission_id
 WHERE ap.content_type_id = :ct::int AND gp.content_object_id = ':packet_id'::uuid
   AND gp.group_id IN (SELECT u0.id FROM auth_group u0 JOIN auth_user_groups u1
                          ON u0.id = u1.group_id WHERE u1.user_id = :uid::int)
 ORDER BY ct.app_label, ct.model, 1;
SELECT u.username FROM approvals_vote v JOIN auth_user u ON v.user_id = u.id
 WHERE v.packet_id = ':packet_id'::uuid AND v.snapshot_hash = ':snap'::text
 ORDER BY v.created_at ASC;
INSERT INTO approvals_vote (packet_id, user_id, snapshot_hash, comment, created_at)
VALUES (':packet_id'::uuid, :uid::int, ':snap'::text, '', now()) RETURNING id;
UPDATE approvals_pausepacket
   SET status = 'approved', branch = 'resume', decision = 'allow',
       decided_by = '["decider"]'::jsonb, decided_at = now(), comment = ''
 WHERE id = ':packet_id'::uuid;
SELECT pg_notify(c, '')
  FROM unnest(ARRAY['approval_' || replace(':packet_id'::text, '-', '')]::text[]) AS c;
SELECT pg_advisory_xact_lock(1786661683) \;
WITH events AS (
  SELECT now() AS at, t.kind, t.actor, t.execution_id, t.packet_id, t.data, t.ord
    FROM unnest(ARRAY['packet.voted', 'packet.approved']::text[],
                ARRAY['user' || chr(58) || 'decider', 'user' || chr(58) || 'decider']::text[],
                ARRAY[':execution_id'::uuid, ':execution_id'::uuid]::uuid[],
                ARRAY[':packet_id'::uuid, ':packet_id'::uuid]::uuid[],
                ARRAY[jsonb_build_object('votes', 1, 'required', 1, 'comment', '',
                                         'snapshot_hash', ':snap'::text),
                      jsonb_build_object('status', 'approved', 'branch', 'resume',
                                         'decision', 'allow', 'decided_by', '["decider"]'::jsonb,
                                         'comment', '', 'args', ':args'::jsonb)]::jsonb[])
         WITH ORDINALITY AS t(kind, actor, execution_id, packet_id, data, ord)),
head AS (
  SELECT coalesce((SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1),
                  '0000000000000000000000000000000000000000000000000000000000000000') AS hash),
numbered AS (
  SELECT nextval('audit_auditevent_id_seq') AS id, s.*
    FROM (SELECT * FROM events ORDER BY ord) AS s),
chained AS (
  SELECT n.*, head.hash AS head_hash,
         audit_chain(head.hash, jsonb_build_object('seq', n.id,
             'at', to_char(n.at AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24' || chr(58) || 'MI' || chr(58) || 'SS.US"Z"'),
             'kind', n.kind, 'actor', n.actor, 'execution_id', n.execution_id,
             'packet_id', n.packet_id, 'data', n.data)::text) OVER (ORDER BY n.id) AS hash
    FROM numbered AS n CROSS JOIN head),
appended AS (
  INSERT INTO audit_auditevent (id, at, kind, actor, execution_id, packet_id, data, prev_hash,
                                hash)
  SELECT id, at, kind, actor, execution_id, packet_id, data,
         coalesce(lag(hash) OVER (ORDER BY id), head_hash), hash
    FROM chained
  RETURNING id, prev_hash, hash)
SELECT id, prev_hash, hash FROM appended ORDER BY id;
COMMIT;
