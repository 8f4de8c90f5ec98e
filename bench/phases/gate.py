"""The gate figures: checks per second and their SQL."""

from bench.harness import (
    ALLOWED_HOST,
    BENCH,
    Figure,
    _latencies,
    _mean,
    _round_trip_heads,
    load,
    pgbench,
)

# Present in the gate phase (issue 20): each matches every bench check, as a shadow policy being
# watched on live traffic would, so every check stores three would-be answers.
SHADOW_POLICIES = [
    {"name": "shadow-block-bench", "priority": 5, "match": {"tool": "bench.*"}, "effect": "block"},
    {
        "name": "shadow-ask-risky",
        "priority": 6,
        "match": {"workflow": "bench-*", "min_risk": 0.05},
        "effect": "require_approval",
    },
    {
        "name": "shadow-ask-steps",
        "priority": 7,
        "match": {"conditions": [{"path": "n", "op": "gte", "value": 0}]},
        "effect": "require_approval",
    },
]


class GatePhase:
    def gate(self) -> None:
        for count in self.shadow_policies:
            self._shadow_policies(count)
            self.say(f"gate phase with {count} shadow policies")
            # Threads of this pass are new executions: a pass must not replay another's keys.
            self.gate_tag = f"s{count}"
            self._gate()
            if count:
                stored = self._scalar(
                    "SELECT count(*) FROM approvals_gatecheck WHERE shadow IS NOT NULL"
                )
                self.say(f"checks stored with shadow verdicts so far: {stored:,}")

    def _gate(self) -> None:
        s = self.sizes
        server = self.start_server()
        clients = 2 * self.workers * self.threads
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        totals = {"gate": [], "floor": []}
        results = {"gate": [], "floor": []}
        for side in ("gate", "floor"):  # warm every worker on both paths, unmeasured
            load(
                self._gate_job(server, side, f"warm{side}", clients, s.warmup_seconds, headers),
                env=self.env,
                timeout=120,
            )
        for r in range(s.rounds):
            for side in ("gate", "floor") if r % 2 == 0 else ("floor", "gate"):
                result = load(
                    self._gate_job(
                        server, side, f"r{r}{side}", clients, s.gate_seconds / s.rounds, headers
                    ),
                    env=self.env,
                    timeout=s.gate_seconds + 300,
                )
                self._expect_ok(result, side)
                totals[side].append(result["requests"])
                results[side].append(result)
        duration = s.gate_seconds
        gate_rate = sum(totals["gate"]) / duration
        floor_rate = sum(totals["floor"]) / duration
        self.gate_rate = gate_rate
        self.record(
            Figure(
                "gate_vs_floor",
                "ratio",
                gate_rate / floor_rate,
                0.7,
                f"Allowed gate checks per second (POST /api/v1/gate, a policy allows the tool; "
                f"every request a new step) divided by the floor's rate: bench/floor_app.py on "
                f"the same gunicorn, same body, writing the same rows (execution, gate check, "
                "chained gate.checked event) in one transaction, in the round trips the gate "
                "uses (the execution; the check, the chain lock, the append), committed as the "
                "gate commits (not waiting for the flush under the chain lock, then waiting for "
                "it). "
                f"{clients} closed-loop clients in the load generator, {s.rounds} alternating "
                f"rounds of {s.gate_seconds / s.rounds:.0f} s per side after "
                f"{s.warmup_seconds:.0f} s of warm-up.",
                f"gate {gate_rate:,.0f}/s (p50 {_mean(results['gate'], 'p50_ms')} ms), floor "
                f"{floor_rate:,.0f}/s (p50 {_mean(results['floor'], 'p50_ms')} ms)",
            )
        )

        def versus_pg():
            from bench import data

            pg_clients = self.workers * self.threads
            data.execute(
                "INSERT INTO approvals_execution (id, service_account_id, thread_id, workflow,"
                " owner, created_at) SELECT gen_random_uuid(), %s, 'pg-' || c, 'bench-flow', '',"
                " now() FROM generate_series(0, %s) AS c ON CONFLICT DO NOTHING",
                [self.account.id, pg_clients],
            )
            bench = pgbench(
                self.db,
                BENCH / "pgbench" / "gate_allow.sql",
                clients=pg_clients,
                seconds=s.pg_seconds,
                defines={"acct": self.account.id, "prefix": self.account.token_prefix},
            )
            self.record(
                Figure(
                    "gate_vs_pg",
                    "ratio",
                    gate_rate / bench["tps"],
                    0.15,
                    "The gate's rate (as in gate_vs_floor) divided by pgbench running the SQL of "
                    "an allowed gate check (bench/pgbench/gate_allow.sql: the statements Django "
                    "sends, in order, in one transaction, grouped into the same round trips) "
                    f"with {pg_clients} clients, one per server thread.",
                    f"pgbench {bench['tps']:,.0f} tps (latency {bench['latency']}, "
                    f"{bench['failed']} failed): `pgbench {bench['argv']}`; the gate's SQL: "
                    f"{self.gate_sql_summary}",
                )
            )

        def p99():
            from bench import data

            # What the closed-loop rounds wrote is on disk before the measurement starts. No
            # CHECKPOINT: right after one, every page's first change logs a whole page image,
            # and WAL segment files are removed rather than kept for reuse, so the run would
            # pay for new segments (16 MB written and synced under the WAL lock) mid-way.
            data.quiet_disk(checkpoint=False)
            result = load(
                {
                    **self._gate_job(server, "gate", "p99", 64, s.p99_seconds, headers),
                    "kind": "rate",
                    "rate": s.p99_rate,
                    "threads": 64,
                },
                env=self.env,
                timeout=s.p99_seconds + 300,
            )
            self._expect_ok(result, "gate at a fixed rate")
            self.record(
                Figure(
                    "gate_p99_ms",
                    "limit",
                    result["p99_ms"],
                    50,
                    f"p99 latency of allowed gate checks sent open-loop at {s.p99_rate:.0f} "
                    f"requests/s for {s.p99_seconds:.0f} s (latency counted from each request's "
                    "scheduled moment, so queueing shows; requests still unsent 10 s after the "
                    "last was due are given up and count with the wait so far), on the server "
                    "the closed-loop rounds warmed, after os.sync and before pgbench runs.",
                    _latencies(result)
                    + f", answered {result['per_s']:.0f}/s, {result['unsent']} given up unsent;"
                    f" worst latency of each second (ms): {result['max_ms_by_second']}",
                )
            )

        self.guarded("gate_p99_ms", "limit", 50, "", p99)
        self.guarded("gate_vs_pg", "ratio", 0.15, "", versus_pg)

    def _shadow_policies(self, count: int) -> None:
        """The gate's figures hold with shadow policies present (issue 20): these three match
        every bench check, so each check evaluates all three and stores three verdicts."""
        from approvals.services.policies import policy_save

        for document in SHADOW_POLICIES[:count]:
            policy_save(document={**document, "mode": "shadow"}, actor="bench")
        if count:
            self.notes.append(
                f"The gate phase ran with {count} shadow policies matching every check "
                "(bench/run.py SHADOW_POLICIES): each check stores what they would answer."
            )

    def _gate_job(self, server, side, tag, clients, seconds, headers) -> dict:
        body = (
            '{"idempotency_key": "{client}:{n}", "execution": {"thread_id": "{client}", '
            '"workflow": "bench-flow", "owner": "reviewers"}, "step": {"index": {n}, '
            '"name": "step"}, "action": {"tool": "bench.allow", "args": {"user": "new.hire", '
            '"n": {n}}, "side_effect": "not_started"}, "context": [{"name": "ticket", "value": '
            '{"id": {n}}, "observed_at": "2026-11-22T09:00:00Z"}], "risk": {"score": 0.1, '
            '"labels": []}}'
        )
        return {
            "kind": "closed",
            "url": server.url,
            "method": "POST",
            "path": "/api/v1/gate" if side == "gate" else "/bench/floor",
            "headers": headers,
            "body": body,
            "tag": self.gate_tag + tag,
            "threads": clients,
            "seconds": seconds,
        }

    def capture_gate_sql(self) -> None:
        """The SQL of one allowed gate check, as the API makes it: what gate_allow.sql mirrors."""
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client(HTTP_HOST=ALLOWED_HOST)
        payload = {
            "idempotency_key": "capture:1",
            "execution": {"thread_id": "capture", "workflow": "bench-flow"},
            "step": {"index": 1, "name": "step"},
            "action": {"tool": "bench.allow", "args": {"n": 1}, "side_effect": "not_started"},
        }
        auth = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        client.post(
            "/api/v1/gate",
            {**payload, "idempotency_key": "capture:0", "step": {"index": 0, "name": "step"}},
            content_type="application/json",
            **auth,
        )
        with CaptureQueriesContext(connection) as captured:
            answer = client.post("/api/v1/gate", payload, content_type="application/json", **auth)
        if answer.status_code != 200 or answer.json()["decision"] != "allow":
            raise RuntimeError(f"gate answered {answer.status_code}: {answer.content[:300]!r}")
        trips = [_round_trip_heads(q["sql"]) for q in captured.captured_queries]
        self.gate_sql_summary = (
            f"{len(trips)} round trips, {sum(map(len, trips))} statements: "
            + "; ".join(" + ".join(heads) for heads in trips)
        )
