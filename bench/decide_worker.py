"""One reviewer process approving packets through the service, for decide_vs_pg.

Started by bench/run as a separate process with the production environment. Argument: a JSON
job {"worker", "workers", "prefix", "count", "seconds", "username"}. Worker w approves packets
md5('<prefix>-pk-' || (w + workers * k))::uuid for k = 0, 1, ... through
approvals.services.review.packet_approve. It prints `ready` once Django is up and one packet is
approved, waits for a line on stdin (so every worker starts together), approves for `seconds`,
and prints {"approved", "other", "elapsed_s", "exhausted"}.
"""

import hashlib
import json
import os
import sys
import time
import uuid


def main() -> None:
    job = json.loads(sys.argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatekeeper.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from approvals.branch_table import Outcome
    from approvals.services.review import packet_approve

    user = get_user_model().objects.get(username=job["username"])
    ids = [
        uuid.UUID(
            hashlib.md5(  # noqa: S324 (a name, not a secret)
                f"{job['prefix']}-pk-{job['worker'] + job['workers'] * k}".encode()
            ).hexdigest()
        )
        for k in range(job["count"])
    ]
    # One approval before the clock starts: connections, caches and imports are warm.
    approved = other = 0
    packet_approve(packet_id=ids[0], user=user)
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    stop_at = started + job["seconds"]
    exhausted = True
    for packet_id in ids[1:]:
        if time.perf_counter() >= stop_at:
            exhausted = False
            break
        result = packet_approve(packet_id=packet_id, user=user)
        if result.outcome is Outcome.RESUME:
            approved += 1
        else:
            other += 1
    elapsed = time.perf_counter() - started
    json.dump(
        {"approved": approved, "other": other, "elapsed_s": elapsed, "exhausted": exhausted},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
