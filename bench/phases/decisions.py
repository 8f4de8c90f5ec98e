"""The write figures: decisions, the race, the sweep and the waiters."""

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta

from bench import waiters
from bench.harness import (
    BASE,
    BENCH,
    CHILDREN,
    PYTHON,
    Figure,
    Server,
    load,
    pgbench,
    race_problems,
)


class DecisionsPhase:
    def decide(self) -> None:
        from bench import data

        s = self.sizes
        workers = self.workers
        # More packets than any rate seen here could use up: running out is reported, not hidden.
        per_worker = int(600 * s.decide_seconds / workers) + 50
        pg_per_client = int(1500 * s.pg_seconds / workers) + 50
        common = {
            "executions": workers,
            "account": self.account.id,
            "group_id": self.groups["deciders"].id,
            "owner": "deciders",
            "expires_seconds": 30 * 86400,
        }
        data.bulk_packets(prefix="svc", count=per_worker * workers, **common)
        data.bulk_packets(prefix="pgd", count=pg_per_client * workers, **common)
        data.execute("ANALYZE approvals_pausepacket, approvals_pausepacketgroupobjectpermission")
        processes = [
            CHILDREN.spawn(
                [
                    PYTHON,
                    str(BENCH / "decide_worker.py"),
                    json.dumps(
                        {
                            "worker": w,
                            "workers": workers,
                            "prefix": "svc",
                            "count": per_worker,
                            "seconds": s.decide_seconds,
                            "username": "decider",
                        }
                    ),
                ],
                env=self.env,
                cwd=BASE,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w in range(workers)
        ]
        for process in processes:
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"decide worker failed: {process.stderr.read()[-1500:]}")
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=s.decide_seconds + 120)
            CHILDREN.end(process)
            if process.returncode != 0:
                raise RuntimeError(f"decide worker failed: {err.strip()[-1500:]}")
            results.append(json.loads(out))
        approved = sum(r["approved"] for r in results)
        elapsed = max(r["elapsed_s"] for r in results)
        service_rate = approved / elapsed
        exhausted = any(r["exhausted"] for r in results)
        bench = pgbench(
            self.db,
            BENCH / "pgbench" / "approve.sql",
            clients=workers,
            seconds=s.pg_seconds,
            defines={
                "uid": self.users["decider"].id,
                "ct": self.packet_ct,
                "clients": workers,
                "n": 0,
            },
        )
        self.record(
            Figure(
                "decide_vs_pg",
                "ratio",
                service_rate / bench["tps"],
                0.15,
                f"Approvals per second through approvals.services.review.packet_approve (row "
                f"lock, authority, compare-and-set, vote, two chained audit events) in "
                f"{workers} separate reviewer processes for {s.decide_seconds:.0f} s, each on "
                f"its own pending packets, divided by pgbench running the same SQL in the same "
                f"round trips (bench/pgbench/approve.sql) with {workers} clients.",
                f"service {service_rate:,.0f}/s ({approved:,} approvals"
                + (", RAN OUT OF PACKETS: rate is a lower bound" if exhausted else "")
                + f"); pgbench {bench['tps']:,.0f} tps (latency {bench['latency']}, "
                f"{bench['failed']} failed): `pgbench {bench['argv']}`",
            )
        )

    def race(self) -> None:
        from bench import data

        s = self.sizes
        data.bulk_packets(
            prefix="race",
            count=s.race_packets,
            executions=max(1, s.race_packets // 10),
            account=self.account.id,
            group_id=self.groups["racers"].id,
            owner="racers",
            expires_seconds=30 * 86400,
            required=1,
            required_mod=2,
        )
        ids = data.packet_ids("race", s.race_packets)
        reviewers = []
        for user in self.racers:
            cookie, csrf = self.session_cookie(user)
            reviewers.append({"cookie": cookie, "csrf": csrf})
        server_a = self.start_server()
        server_b = Server(
            "gunicorn-b", self.env, self.work, workers=self.workers, threads=self.threads
        ).start()
        try:
            result = load(
                {
                    "kind": "race",
                    "servers": [server_a.url, server_b.url],
                    "packets": ids,
                    "reviewers": reviewers,
                    "clients": s.race_clients,
                    "seconds": s.race_seconds,
                },
                env=self.env,
                timeout=s.race_seconds + 300,
            )
        finally:
            server_b.stop()
        problems, closed, summary = race_problems(ids)
        if closed == 0:
            raise RuntimeError(f"no packet was decided: {result['statuses']}")
        self.record(
            Figure(
                "race_duplicates",
                "limit",
                len(problems),
                0,
                f"{s.race_clients} reviewers (each its own session) approving (3 in 4) or "
                f"rejecting random packets among {s.race_packets} (half need 2 approvals) for "
                f"{s.race_seconds:.0f} s through the browser endpoints POST "
                "/approvals/<id>/approve/ and /reject/, half of them on each of two independent "
                "gunicorn servers on the one database; then counted: packets with more than "
                "one closing audit event, decided_by not matching the votes or the closing "
                "event, votes past quorum or after the decision.",
                f"{closed} of {s.race_packets} packets closed ({summary}); "
                f"{result['requests']:,} actions in {s.race_seconds:.0f} s "
                f"({result['per_s']:.0f}/s, p50 {result['p50_ms']:.0f} ms), answers "
                f"{result['statuses']}, {result['errors']} transport errors"
                + (f"; problems: {problems[:5]}" if problems else ""),
            )
        )

    def sweep(self) -> None:
        from approvals.services.expiry import packets_expire_overdue

        overdue_at = datetime.now(UTC) + timedelta(days=2)
        overdue = self._scalar(
            "SELECT count(*) FROM approvals_pausepacket WHERE status IN ('pending', 're_review',"
            " 'reconciling') AND expires_at <= %s",
            [overdue_at],
        )
        from bench import data

        data.quiet_disk(checkpoint=False)
        t0 = time.perf_counter()
        expired = packets_expire_overdue(now=overdue_at)
        elapsed = time.perf_counter() - t0
        self.record(
            Figure(
                "sweep_100k_s",
                "limit",
                elapsed,
                10,
                f"Seconds for approvals.services.expiry.packets_expire_overdue (the sweeper "
                f"beat runs) to expire {overdue:,} overdue open packets, called in the bench "
                "process with `now` two days ahead, once the disk has written back what the "
                "phases before wrote (os.sync).",
                f"expired {expired:,} packets ({expired / elapsed:,.0f}/s)",
            )
        )

    def waiters(self) -> None:
        # The layout docs/deployment.md recommends for a node holding thousands of waiting
        # agents: the waits on the ASGI service, gate checks and pages on gthread beside it.
        # `python -m bench.waiters --layouts one,split` measures the single service too.
        waiters.run(self, split=True)
