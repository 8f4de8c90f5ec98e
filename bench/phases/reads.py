"""The read figures: the queue, the timeline, the export and verify_audit."""

import os
import time

from bench.harness import (
    ALLOWED_HOST,
    PG_HOST,
    PG_PORT,
    PG_USER,
    PYTHON,
    Figure,
    _latencies,
    _median_by,
    _reset_peak,
    _RssSampler,
    _status_kb,
    load,
    run_child,
)


class ReadsPhase:
    def queue(self) -> None:
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        s = self.sizes
        open_count = self._scalar(
            "SELECT count(*) FROM approvals_pausepacket p WHERE p.status = 'pending' AND EXISTS"
            " (SELECT 1 FROM approvals_pausepacketgroupobjectpermission g"
            " JOIN auth_permission a ON a.id = g.permission_id"
            " WHERE g.content_object_id = p.id AND g.group_id = %s"
            " AND a.codename = 'view_pausepacket')",
            [self.groups["reviewers"].id],
        )
        cookie, _ = self.session_cookie(self.users["reviewer"])

        def count():
            client = Client(HTTP_HOST=ALLOWED_HOST)
            name, _, value = cookie.partition(";")[0].partition("=")
            client.cookies[name] = value
            client.get("/approvals/")  # caches warm, as in a running server
            with CaptureQueriesContext(connection) as captured:
                answer = client.get("/approvals/")
            if answer.status_code != 200:
                raise RuntimeError(f"queue page answered {answer.status_code}")
            shown = answer.content.count(b"/approvals/") - 1
            self.queue_sql = [q["sql"] for q in captured.captured_queries]
            self.record(
                Figure(
                    "queue_queries",
                    "limit",
                    len(captured.captured_queries),
                    12,
                    f"SQL statements of one GET /approvals/ by a reviewer whose group may view "
                    f"{open_count:,} open packets (Django test client in the bench process, "
                    "production settings, counted with CaptureQueriesContext, caches warm).",
                    f"{len(captured.captured_queries)} statements; page links seen: {shown}",
                )
            )

        self.guarded("queue_queries", "limit", 12, "", count)

        def latency():
            server = self.start_server()
            result = load(
                {
                    "kind": "sequential",
                    "url": server.url,
                    "path": "/approvals/",
                    "headers": {"Cookie": cookie},
                    "warmup": 5,
                    "count": s.page_requests,
                    "max_seconds": s.page_seconds,
                },
                env=self.env,
                timeout=s.page_seconds + 300,
            )
            self._expect_ok(result, "queue page")
            self.record(
                Figure(
                    "queue_p95_ms",
                    "limit",
                    result["p95_ms"],
                    150,
                    f"GET /approvals/ over HTTP by the reviewer, one request at a time, up to "
                    f"{s.page_requests} requests (or {s.page_seconds:.0f} s) after 5 "
                    f"unmeasured, with {open_count:,} open packets visible to the reviewer and "
                    f"{self.audit_rows:,} audit events in the database.",
                    _latencies(result),
                )
            )

        self.guarded("queue_p95_ms", "limit", 150, "", latency)

    def timeline(self) -> None:
        from django.urls import Resolver404, resolve

        path = f"/executions/{self.timeline_id}/"
        try:
            resolve(path)
        except Resolver404:
            self.record(
                Figure("timeline_p95_ms", "limit", None, 300, "", skipped="page not built yet")
            )
            return

        def latency():
            events = self._scalar(
                "SELECT count(*) FROM audit_auditevent WHERE execution_id = %s", [self.timeline_id]
            )
            cookie, _ = self.session_cookie(self.users["auditor"])
            server = self.start_server()
            result = load(
                {
                    "kind": "sequential",
                    "url": server.url,
                    "path": path,
                    "headers": {"Cookie": cookie},
                    "warmup": 3,
                    "count": max(3, self.sizes.page_requests // 2),
                    "max_seconds": self.sizes.page_seconds,
                },
                env=self.env,
                timeout=400,
            )
            self._expect_ok(result, "timeline page")
            self.record(
                Figure(
                    "timeline_p95_ms",
                    "limit",
                    result["p95_ms"],
                    300,
                    f"GET /executions/<uuid>/ over HTTP, one at a time, for an execution with "
                    f"{events:,} record events ({self.sizes.timeline_steps:,} steps, each gated "
                    "and with its outcome), by a user holding audit.view_auditevent.",
                    _latencies(result),
                )
            )

        self.guarded("timeline_p95_ms", "limit", 300, "", latency)

    def export(self) -> None:
        from django.urls import Resolver404, resolve

        try:
            resolve("/audit/export.csv")
        except Resolver404:
            for name, kind, target in (
                ("export_vs_copy", "ratio", 0.5),
                ("export_peak_rss_mb", "limit", 150),
            ):
                self.record(Figure(name, kind, None, target, "", skipped="page not built yet"))
            return

        def measure():
            server = self.start_server()
            cookie, _ = self.session_cookie(self.users["auditor"])
            rows = self._scalar("SELECT count(*) FROM audit_auditevent")
            pids = server.worker_pids()
            baseline = {pid: _status_kb(pid, "VmRSS") for pid in pids}
            for pid in pids:
                _reset_peak(pid)
            sampler = _RssSampler(pids)
            sampler.start()
            http, copies = [], []
            try:
                # Each side warms the cache for the other: they take turns to go first.
                for sample in range(self.sizes.export_samples):
                    for side in ("http", "copy") if sample % 2 == 0 else ("copy", "http"):
                        if side == "copy":
                            copies.append(self._copy_seconds())
                        else:
                            http.append(self._export_over_http(server, cookie))
            finally:
                sampler.stop()
            result = _median_by(http, "elapsed_s")
            copy = _median_by(copies, "seconds")
            peaks = {pid: max(_status_kb(pid, "VmHWM") or 0, sampler.peak[pid]) for pid in pids}
            growth = max((peaks[pid] - (baseline[pid] or 0)) for pid in pids) / 1024
            http_rate = rows / result["elapsed_s"]
            copy_rate = rows / copy["seconds"]
            self.record(
                Figure(
                    "export_vs_copy",
                    "ratio",
                    http_rate / copy_rate,
                    0.5,
                    f"GET /audit/export.csv (no filter: all {rows:,} rows) read to the end by the "
                    "load generator, rows/s, divided by rows/s of psql running COPY (the same "
                    "rows and columns) TO STDOUT into /dev/null; the median of "
                    f"{len(http)} runs of each, the two sides taking turns to go first.",
                    f"HTTP {http_rate:,.0f} rows/s (median {result['elapsed_s']:.2f} s of "
                    + ", ".join(f"{r['elapsed_s']:.2f}" for r in http)
                    + f"; {result['bytes'] / 1e6:,.0f} MB, first byte after "
                    f"{result['first_byte_s']:.2f} s); COPY {copy_rate:,.0f} rows/s (median "
                    f"{copy['seconds']:.2f} s of "
                    + ", ".join(f"{c['seconds']:.2f}" for c in copies)
                    + f"); COPY query: `{copy['sql']}`",
                )
            )
            self.record(
                Figure(
                    "export_peak_rss_mb",
                    "limit",
                    growth,
                    150,
                    "Peak resident memory of a gunicorn worker serving the exports (every HTTP "
                    "run of export_vs_copy), minus its resident memory before them (VmHWM reset "
                    "through /proc/<pid>/clear_refs, and VmRSS sampled every 50 ms), the largest "
                    "over the server's workers, MiB.",
                    "per worker (kB before -> peak): "
                    + ", ".join(f"{baseline[p]} -> {peaks[p]}" for p in pids),
                )
            )

        try:
            measure()
        except Exception as error:  # noqa: BLE001
            for name, kind, target in (
                ("export_vs_copy", "ratio", 0.5),
                ("export_peak_rss_mb", "limit", 150),
            ):
                self.record(Figure(name, kind, None, target, "", skipped=f"failed: {error}"[:300]))
                self.failures.append(name)

    def _export_over_http(self, server, cookie: str) -> dict:
        result = load(
            {
                "kind": "fetch",
                "url": server.url,
                "path": "/audit/export.csv",
                "headers": {"Cookie": cookie},
                "timeout": 900,
            },
            env=self.env,
            timeout=950,
        )
        if result["status"] != 200:
            raise RuntimeError(f"export answered {result['status']}")
        return result

    def _copy_seconds(self) -> dict:
        """psql running COPY of the rows the export writes: the export's own COPY statement
        (audit.csv_export.export_query, no filter) when it has one."""
        from django.db import connection

        try:
            from audit.csv_export import export_query
            from audit.selectors import AuditFilters

            connection.ensure_connection()
            sql = export_query(AuditFilters()).as_string(connection.connection)
        except ImportError:
            sql = (
                "COPY (SELECT id, at, kind, actor, execution_id, packet_id, data, prev_hash, hash"
                " FROM audit_auditevent ORDER BY id) TO STDOUT (FORMAT csv, HEADER)"
            )
        psql = f'psql -h {PG_HOST} -p {PG_PORT} -U {PG_USER} -d {self.db} -Atc "$0" > /dev/null'
        t0 = time.perf_counter()
        code, _, err = run_child(["sh", "-c", psql, sql], env=dict(os.environ), timeout=600)
        if code != 0:
            raise RuntimeError(f"COPY failed: {err}")
        return {"seconds": time.perf_counter() - t0, "sql": sql}

    def verify(self, *, figure: bool) -> bool:
        rows = self._scalar("SELECT count(*) FROM audit_auditevent")
        t0 = time.perf_counter()
        code, out, err = run_child([PYTHON, "manage.py", "verify_audit"], env=self.env, timeout=900)
        elapsed = time.perf_counter() - t0
        if not figure:
            return code == 0
        if code != 0:
            raise RuntimeError(f"verify_audit failed ({code}): {(out + err).strip()[-500:]}")
        self.record(
            Figure(
                "verify_rows_per_s",
                "ratio",
                rows / elapsed,
                100_000,
                f"`manage.py verify_audit` over the whole record ({rows:,} rows, a valid chain "
                "seeded in bulk), rows divided by the wall time of the whole command, Django's "
                "start included.",
                f"{elapsed:.2f} s wall; the command says: {out.strip().splitlines()[0]}",
            )
        )
        return True
