"""The replay figure: recorded gate checks decided again under a policy file (issue 20)."""

import json
import time

from bench.harness import Figure

# What replay_100k_s replays over the bulk checks: globs, a risk threshold, conditions.
REPLAY_POLICIES = [
    {
        "name": "iam-privileged",
        "priority": 10,
        "match": {"workflow": "wf-*", "tool": "iam.*", "min_risk": 0.5},
        "effect": "require_approval",
    },
    {
        "name": "crm-small",
        "priority": 20,
        "match": {"tool": "crm.*", "conditions": [{"path": "record", "op": "lt", "value": 50000}]},
        "effect": "allow",
    },
    {"name": "mail-ok", "priority": 30, "match": {"tool": "mail.send"}, "effect": "allow"},
    {
        "name": "db-first",
        "priority": 40,
        "match": {
            "tool": "db.*",
            "conditions": [{"path": "record", "op": "in", "value": [0, 4, 8]}],
        },
        "effect": "block",
    },
]


class ReplayPhase:
    def replay(self) -> None:
        from io import StringIO

        from django.core.management import call_command

        from bench import data

        policy_file = self.work / "replay-policies.json"
        policy_file.write_text(json.dumps(REPLAY_POLICIES), encoding="utf-8")
        checks = self._scalar("SELECT count(*) FROM approvals_gatecheck")
        data.quiet_disk(checkpoint=False)
        out = StringIO()
        t0, cpu0 = time.perf_counter(), time.process_time()
        call_command("replay_policies", str(policy_file), since=30, stdout=out)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        summary = out.getvalue().splitlines()
        self.record(
            Figure(
                "replay_100k_s",
                "limit",
                elapsed,
                10,
                f"Seconds for `manage.py replay_policies FILE --since 30` (called in the bench "
                f"process) to decide again every gate check recorded in the bulk data "
                f"({checks:,}: the 100,000 of the open packets and the timeline's) under "
                f"{len(REPLAY_POLICIES)} policies of a file (bench/run.py REPLAY_POLICIES) over "
                "the stored one, streaming the checks and evaluating each with the gate's own "
                "evaluation; before the gate phase writes more.",
                f"{checks / elapsed:,.0f} checks/s, {cpu:.1f} s of CPU in the bench process "
                "(the rest: PostgreSQL streaming the rows, and waiting for a core); the command "
                "says: "
                + " / ".join(line.strip() for line in summary if not line.startswith("    ")),
            )
        )
